"""Export a Hugging Face cross-encoder to ONNX: fused transformer graph, optional int8, checked against torch.

One call writes a self-contained folder that :class:`~rankwise.rerankers.onnx.OnnxReranker` runs with onnxruntime and
tokenizers only (no torch at inference time)::

    >>> from rankwise.onnx_export import export_onnx                                     # doctest: +SKIP
    >>> folder = export_onnx("cross-encoder/ms-marco-MiniLM-L-6-v2", "minilm-onnx", quantize="int8")  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())                                           # doctest: +SKIP
    ['config.json', 'model.onnx', 'model_int8.onnx', 'rankwise_onnx.json', 'special_tokens_map.json',
     'tokenizer.json', 'tokenizer_config.json']

The steps, each recorded in ``rankwise_onnx.json`` (the folder's manifest):

1. **export** with torch's TorchScript exporter (eager attention, dynamic batch and sequence axes, opset 17), the form
   onnxruntime's transformer optimizer recognises; torch's dynamo exporter is the fallback.
2. **optimize** (``optimize=True``): onnxruntime's transformer optimizer fuses embeddings + LayerNorm, attention,
   bias + GELU and skip + LayerNorm into single kernels (BERT-family models). Inputs must be right-padded, as rankwise
   pads them.
3. **quantize** (``quantize="int8"``): dynamic int8 quantization of the weights of every MatMul and fused Attention
   (:data:`INT8_OPTIONS`); ``model.onnx`` stays fp32 next to ``model_int8.onnx``.
4. **check**: the fp32 graph must reproduce torch's logits on sample pairs (max abs difference below 1e-3); when the
   fused graph does not, the unfused one is kept and the manifest says why. The int8 difference is recorded.

Exporting needs ``rankwise[onnx-export]`` (torch, transformers, onnx, onnxruntime). :mod:`rankwise.onnx_cache` wraps
this in an on-disk cache keyed by the source model.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import logging
import shutil
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError, require

MANIFEST = "rankwise_onnx.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
EXPORT_FORMAT = 1
QUANTIZE_CHOICES = (None, "int8")
OPSET = 17
CHECK_TOLERANCE = 1e-3

# Dynamic int8: uint8 activations x int8 weights, per-channel weight scales, full 8-bit range (docs/onnx.md).
INT8_OPTIONS: Mapping[str, Any] = {
    "op_types": ("MatMul", "Attention"),
    "per_channel": True,
    "reduce_range": False,
    "weight_type": "QInt8",
}

# model_type -> the onnxruntime.transformers optimizer type that fuses it.
_OPTIMIZER_TYPES = {
    "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "camembert": "bert", "electra": "bert",
    "distilbert": "bert", "mpnet": "bert",
}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                    "sentencepiece.bpe.model", "spiece.model", "merges.txt", "vocab.json")
_SAMPLE_PAIRS = (
    ("how do lstm networks remember long-term dependencies?",
     "Long short-term memory networks use gates to keep information over many time steps."),
    ("what is bm25", "BM25 is a ranking function."),
    ("capital of france", "Paris is the capital and most populous city of France. " * 12),
    ("a", "b"),
)


def check_quantize(quantize: str | None) -> str | None:
    """Validate a ``quantize`` option.

    >>> check_quantize("int8")
    'int8'
    >>> check_quantize("fp16")
    Traceback (most recent call last):
    ...
    rankwise.errors.InvalidInputError: quantize must be None or 'int8', got 'fp16'.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise InvalidInputError(f"quantize must be None or 'int8', got {quantize!r}.")
    return quantize


def int8_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`INT8_OPTIONS` with ``overrides`` applied (unknown keys are an error)."""
    opts = dict(INT8_OPTIONS)
    for key, value in (overrides or {}).items():
        if key not in opts:
            raise InvalidInputError(f"unknown int8 option {key!r}; valid: {', '.join(opts)}.")
        opts[key] = tuple(value) if key == "op_types" else value
    if opts["weight_type"] not in ("QInt8", "QUInt8"):
        raise InvalidInputError(f"weight_type must be 'QInt8' or 'QUInt8', got {opts['weight_type']!r}.")
    return opts


def library_versions() -> dict[str, str]:
    """Versions of the packages an export depends on (``"absent"`` when not installed); never imports them."""
    out = {}
    for pkg in ("onnxruntime", "onnx", "torch", "transformers", "tokenizers"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def export_onnx(
    model: str | Path,
    out_dir: str | Path,
    *,
    quantize: str | None = None,
    optimize: bool = True,
    int8: Mapping[str, Any] | None = None,
    first_token: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
    overwrite: bool = False,
) -> Path:
    """Export a sequence-classification re-ranker to an ONNX folder that runs without torch.

    Args:
        model: Hugging Face hub name or local folder of the cross-encoder.
        out_dir: folder to write; it must not exist (or be empty) unless ``overwrite=True``.
        quantize: ``None`` (fp32 only) or ``"int8"`` (also write ``model_int8.onnx``).
        optimize: fuse attention / LayerNorm / GELU with onnxruntime's transformer optimizer (BERT family).
        int8: overrides of :data:`INT8_OPTIONS` (advanced; for measuring variants).
        first_token: compute the last layer for the first token only (:func:`first_token_last_layer`; exact).
        revision, trust_remote_code: passed to transformers.

    Returns:
        ``Path(out_dir)``, holding ``model.onnx``, maybe ``model_int8.onnx``, the tokenizer, ``config.json`` and
        the manifest ``rankwise_onnx.json``.

    Example:
        >>> export_onnx("my-cross-encoder", "my-cross-encoder-onnx", quantize="int8")  # doctest: +SKIP
        PosixPath('my-cross-encoder-onnx')
    """
    check_quantize(quantize)
    opts = int8_options(int8) if quantize else None
    out = _prepare_out_dir(Path(out_dir), overwrite)
    torch = require("torch", "onnx-export", "Exporting a cross-encoder to ONNX")
    torch_model, config, hf_tok = _load_source(str(model), revision, trust_remote_code)
    hf_tok.save_pretrained(str(out))
    config.save_pretrained(str(out))
    input_names = _input_names(torch_model, config)
    sample = _sample_batch(hf_tok, input_names)
    with torch.inference_mode():
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in sample.items()}).logits.float().numpy()
    raw = out / "raw.onnx"
    graph = _export_checked(torch, torch_model, hf_tok, input_names, raw, sample, expected, first_token)
    fusion = _optimize_checked(raw, out / FP32_FILE, config, sample, expected) if optimize else None
    if fusion is None or not fusion["kept"]:
        raw.replace(out / FP32_FILE)
    raw.unlink(missing_ok=True)
    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "source": str(model),
        "revision": revision,
        "files": {"fp32": FP32_FILE},
        "inputs": input_names,
        "max_length": _window(config, hf_tok),
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "num_labels": int(config.num_labels),
        "graph": graph,
        "optimization": fusion,
        "check": {"max_abs_diff_fp32": _max_diff(out / FP32_FILE, sample, expected), "pairs": len(expected)},
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if quantize == "int8":
        manifest["quantization"] = quantize_int8(out / FP32_FILE, out / INT8_FILE, opts)
        manifest["files"]["int8"] = INT8_FILE
        manifest["check"]["max_abs_diff_int8"] = _max_diff(out / INT8_FILE, sample, expected)
    write_manifest(out, manifest)
    return out


def quantize_int8(src: Path, dst: Path, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Dynamic int8 quantization of ``src`` into ``dst`` (needs ``onnx`` and ``onnxruntime``); returns the options used.

    Fused graphs carry com.microsoft ops that ONNX shape inference cannot type, hence ``DefaultTensorType`` = float.
    """
    onnx = require("onnx", "onnx-export", "int8 quantization")
    quantization = require("onnxruntime.quantization", "onnx", "int8 quantization")
    opts = int8_options(options)
    with _quiet("root"):  # onnxruntime logs a "consider pre-processing" warning on the root logger
        quantization.quantize_dynamic(
            str(src),
            str(dst),
            op_types_to_quantize=list(opts["op_types"]),
            per_channel=bool(opts["per_channel"]),
            reduce_range=bool(opts["reduce_range"]),
            weight_type=getattr(quantization.QuantType, opts["weight_type"]),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return {"method": "dynamic", "activations": "QUInt8", **{k: list(v) if k == "op_types" else v
                                                            for k, v in opts.items()}}


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The folder's ``rankwise_onnx.json``, or ``{}`` for ONNX folders written by other tools."""
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def copy_tokenizer_files(src: Path, dst: Path) -> None:
    """Copy the tokenizer and ``config.json`` of one model folder to another."""
    for name in (*_TOKENIZER_FILES, "config.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


# --- steps -----------------------------------------------------------------------------------------------------


def _prepare_out_dir(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"out_dir {str(out)!r} is a file; give a folder path.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InvalidInputError(f"out_dir {str(out)!r} is not empty; pass overwrite=True or choose another folder.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _load_source(source: str, revision: str | None, trust_remote_code: bool):  # noqa: ANN202
    transformers = require("transformers", "onnx-export", "Exporting a cross-encoder to ONNX")
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    bars = transformers.utils.logging
    bars_were_on = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()  # no "Loading weights" bar from library code
    try:
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        # eager attention exports to the MatMul/Softmax pattern the onnxruntime optimizer fuses
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source, config=config, attn_implementation="eager", **kwargs
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True, **kwargs)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot load {source!r} as a cross-encoder: it is neither a local model folder nor a reachable hub "
            f"model ({exc})"
        ) from exc
    finally:
        if bars_were_on:
            bars.enable_progress_bar()
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(f"{source!r} has no fast (Rust) tokenizer; the ONNX backend needs tokenizer.json.")
    return model.eval(), config, tokenizer


def _input_names(model: Any, config: Any) -> list[str]:
    params = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in params and getattr(config, "type_vocab_size", 0) > 1:
        names.append("token_type_ids")
    return names


def _logits_wrapper(torch: Any, model: Any, names: list[str]) -> Any:
    """The model as a module taking positional tensors (in ``names`` order) and returning only the logits."""

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(**dict(zip(names, tensors))).logits

    return LogitsOnly().eval()


def _export_graph(torch: Any, model: Any, tokenizer: Any, names: list[str], path: Path) -> str:
    """Write the fp32 graph with dynamic batch and sequence axes; returns which exporter produced it."""
    sample = _sample_batch(tokenizer, names, n=2)
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    wrapper = _logits_wrapper(torch, model, names)
    try:
        with _quiet("torch"), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript tracer warnings about the mask's Python conditionals
            torch.onnx.export(
                wrapper, args, str(path), dynamo=False, opset_version=OPSET, input_names=names,
                output_names=["logits"], do_constant_folding=True,
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
            )
        return f"torchscript(opset {OPSET})"
    except Exception:  # noqa: BLE001 - the legacy exporter is gone or failed: try torch.export
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        program = torch.onnx.export(
            wrapper, args, dynamo=True, input_names=names, output_names=["logits"],
            dynamic_shapes=tuple({0: batch, 1: seq} for _ in names),
        )
        program.save(str(path))
        return "dynamo"


def _export_checked(torch: Any, model: Any, tokenizer: Any, names: list[str], path: Path,
                    sample: dict[str, np.ndarray], expected: np.ndarray, first_token: bool) -> dict[str, Any]:
    """Export (first-token last layer when asked and possible) and check the graph against torch's logits."""
    tolerance = CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max()))
    info: dict[str, Any] = {"first_token_last_layer": False}
    if first_token:
        with first_token_last_layer(model) as applies:
            if applies:
                info["exporter"] = _export_graph(torch, model, tokenizer, names, path)
        if applies and _max_diff(path, sample, expected) <= tolerance:
            info["first_token_last_layer"] = True
            return info
        info["first_token_skipped"] = "not a BERT-family head" if not applies else "did not reproduce torch"
    info["exporter"] = _export_graph(torch, model, tokenizer, names, path)
    diff = _max_diff(path, sample, expected)
    if diff > tolerance:
        raise InvalidInputError(
            f"the ONNX export does not reproduce torch (max abs logit difference {diff:.3g}); this architecture may "
            "need a newer torch/onnxruntime. Use the torch backend (backend='cross-encoder')."
        )
    return info


def _optimize_checked(raw: Path, dst: Path, config: Any, sample: dict[str, np.ndarray],
                      expected: np.ndarray) -> dict[str, Any]:
    """Run the transformer optimizer; keep its graph only if it still reproduces torch."""
    model_type = _OPTIMIZER_TYPES.get(getattr(config, "model_type", ""))
    if model_type is None:
        return {"kept": False, "reason": f"no fusion rules for model_type {config.model_type!r}"}
    optimizer = require("onnxruntime.transformers.optimizer", "onnx-export", "Graph fusion")
    with _quiet("onnxruntime", "root"):
        fused = optimizer.optimize_model(
            str(raw), model_type=model_type, num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size), opt_level=0, use_gpu=False,
        )
    stats = {k: int(v) for k, v in fused.get_fused_operator_statistics().items() if v}
    fused.save_model_to_file(str(dst))
    diff = _max_diff(dst, sample, expected)
    if diff > CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max())):
        dst.unlink()
        return {"kept": False, "reason": f"fused graph differs from torch by {diff:.3g}", "fused": stats}
    return {"kept": True, "optimizer": f"onnxruntime.transformers ({model_type})", "fused": stats}


_FIRST_TOKEN_HEADS = ("bert", "roberta", "xlm-roberta", "camembert", "electra")


@contextmanager
def first_token_last_layer(model: Any) -> Iterator[bool]:
    """While active, the last encoder layer computes its output for the first token only.

    A sequence-classification head of the BERT family reads only the first token ([CLS] / <s>) of the last layer,
    so the last layer's attention-output projection and feed-forward block are wasted on every other token. A
    pre-hook on that layer's attention output keeps the first row of the attention context and of the residual:
    the logits are unchanged (the export checks it against the unhooked model) and about a tenth of a 6-layer
    model's work disappears. Yields whether the hook applies to this architecture.
    """
    layer_output = _last_attention_output(model)
    if layer_output is None:
        yield False
        return

    def first_row(_module: Any, args: tuple) -> tuple:
        return tuple(a[:, :1] for a in args[:2]) + tuple(args[2:])

    handle = layer_output.register_forward_pre_hook(first_row)
    try:
        yield True
    finally:
        handle.remove()


def _last_attention_output(model: Any) -> Any:
    if getattr(model.config, "model_type", "") not in _FIRST_TOKEN_HEADS:
        return None
    base = getattr(model, model.base_model_prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not layers:
        return None
    attention = getattr(layers[-1], "attention", None)
    output = getattr(attention, "output", None)
    return output if output is not None and hasattr(output, "LayerNorm") else None


def _sample_batch(tokenizer: Any, names: list[str], n: int | None = None) -> dict[str, np.ndarray]:
    pairs = _SAMPLE_PAIRS[: n or len(_SAMPLE_PAIRS)]
    enc = tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, truncation=True,
                    max_length=128, return_tensors="np")
    return {k: np.asarray(enc[k], dtype=np.int64) for k in names}


def _max_diff(path: Path, sample: dict[str, np.ndarray], expected: np.ndarray) -> float:
    ort = require("onnxruntime", "onnx", "Checking an ONNX export")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    got = session.run(None, {k: v for k, v in sample.items() if k in wanted})[0]
    return float(np.abs(np.asarray(got, dtype=np.float64) - expected).max())


def _window(config: Any, tokenizer: Any, cap: int = 512) -> int:
    """Usable tokens per pair: the tokenizer's limit or the position table (RoBERTa offset removed), at most ``cap``."""
    limit = getattr(tokenizer, "model_max_length", None)
    if not limit or limit >= 100_000:
        offset = 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
        limit = getattr(config, "max_position_embeddings", cap) - offset
    return int(min(cap, limit))


@contextmanager
def _quiet(*loggers: str):  # noqa: ANN202
    """Silence third-party loggers during a step (library code must not print)."""
    saved = []
    for name in loggers:
        logger = logging.getLogger(None if name == "root" else name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)

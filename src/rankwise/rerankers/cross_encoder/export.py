"""Export a Hugging Face cross-encoder to ONNX: fused transformer graph, optional int8, checked against torch.

One call writes a self-contained folder that :class:`~rankwise.rerankers.cross_encoder.onnx.OnnxReranker` runs with
onnxruntime and tokenizers only (no torch at inference time)::

    >>> from rankwise.rerankers.cross_encoder.export import export_onnx                    # doctest: +SKIP
    >>> folder = export_onnx("cross-encoder/ms-marco-MiniLM-L-6-v2", "minilm-onnx", quantize="int8")  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())                                           # doctest: +SKIP
    ['config.json', 'model.onnx', 'model_int8.onnx', 'rankwise_onnx.json', 'tokenizer.json', 'tokenizer_config.json']

The steps, each recorded in ``rankwise_onnx.json`` (the folder's manifest):

1. **export** with torch's TorchScript exporter (eager attention, dynamic batch and sequence axes, opset 17), the form
   onnxruntime's transformer optimizer recognises; torch's dynamo exporter is the fallback.
2. **first-token last layer** (BERT family): the last layer runs only for the token the head reads
   (:func:`first_token_last_layer`); exact.
3. **optimize** (``optimize=True``): onnxruntime's transformer optimizer fuses embeddings + LayerNorm, attention,
   bias + GELU and skip + LayerNorm into single kernels (BERT-family models). Inputs must be right-padded, as rankwise
   pads them.
4. **quantize** (``quantize="int8"``): dynamic int8 quantization of the weights of every MatMul and fused Attention
   (:data:`INT8_OPTIONS`); ``model.onnx`` stays fp32 next to ``model_int8.onnx``. ``quantize="int8-static"``
   writes ``model_int8_static.onnx`` instead: calibrated static QDQ int8 with SmoothQuant
   (:mod:`~rankwise.rerankers.cross_encoder.onnx_static`), calibrated on ``calibration`` pairs.
5. **check**: the fp32 graph must reproduce torch's logits on sample pairs (max abs difference below 1e-3); when the
   fused graph does not, the unfused one is kept and the manifest says why. The int8 difference is recorded.

Exporting needs ``rankwise[onnx-export]`` (torch, transformers, onnx, onnxruntime).
:mod:`rankwise.rerankers.cross_encoder.cache` wraps this in an on-disk cache keyed by the source model.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.calibration import check_calibration
from rankwise.rerankers.cross_encoder.engine import resolve_max_length
from rankwise.rerankers.cross_encoder.graph import (
    OPSET,
    export_checked,
    first_token_last_layer,
    input_names,
    load_source,
    max_diff,
    optimize_checked,
    quiet,
    sample_batch,
)
from rankwise.rerankers.cross_encoder.options import with_overrides

__all__ = [
    "FP32_FILE", "INT8_FILE", "INT8_OPTIONS", "MANIFEST", "OPSET", "STATIC_INT8_FILE", "check_quantize",
    "copy_tokenizer_files", "export_onnx", "first_token_last_layer", "int8_options", "quantize_int8",
    "quantize_options", "read_manifest", "write_manifest",
]

MANIFEST = "rankwise_onnx.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
EXPORT_FORMAT = 1
STATIC_INT8_FILE = "model_int8_static.onnx"
QUANTIZE_CHOICES = (None, "int8", "int8-static")

# Dynamic int8: uint8 activations x int8 weights, per-channel weight scales, full 8-bit range (docs/onnx.md).
# "keep_fp32": regular expressions; nodes whose name matches one stay fp32 (trade speed for agreement), e.g.
# r"output/dense/MatMul$" keeps every attention-output and feed-forward-output projection of a BERT graph in fp32.
# "last_layer_fp32": keep the last encoder layer ("/layer.<last>/" in node names) fp32: with the first-token last
# layer it costs nothing measurable and cuts int8's score noise by ~10%.
INT8_OPTIONS: Mapping[str, Any] = {
    "op_types": ("MatMul", "Attention"),
    "per_channel": True,
    "reduce_range": False,
    "weight_type": "QInt8",
    "keep_fp32": (),
    "last_layer_fp32": True,
}
_TUPLE_OPTIONS = ("op_types", "keep_fp32")

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                    "sentencepiece.bpe.model", "spiece.model", "merges.txt", "vocab.json")


def check_quantize(quantize: str | None) -> str | None:
    """Validate a ``quantize`` option.

    >>> check_quantize("int8")
    'int8'
    >>> check_quantize("fp16")
    Traceback (most recent call last):
    ...
    rankwise.errors.InvalidInputError: quantize must be None or 'int8' (dynamic), or 'int8-static' (calibrated), got 'fp16'.
    """
    if quantize not in QUANTIZE_CHOICES:
        raise InvalidInputError(
            f"quantize must be None or 'int8' (dynamic), or 'int8-static' (calibrated), got {quantize!r}."
        )
    return quantize


def quantize_options(quantize: str | None, overrides: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The checked int8 options of a ``quantize`` method (:data:`INT8_OPTIONS` for dynamic, the static ones for
    ``"int8-static"``), ``None`` for fp32."""
    if quantize == "int8-static":
        from rankwise.rerankers.cross_encoder.onnx_static import static_int8_options

        return static_int8_options(overrides)
    return int8_options(overrides) if quantize else None


def int8_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`INT8_OPTIONS` with ``overrides`` applied (unknown keys are an error)."""
    opts = with_overrides(INT8_OPTIONS, overrides, "int8 option", _TUPLE_OPTIONS)
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
    calibration: Sequence[tuple[str, Any]] | None = None,
) -> Path:
    """Export a sequence-classification re-ranker to an ONNX folder that runs without torch.

    Args:
        model: Hugging Face hub name or local folder of the cross-encoder.
        out_dir: folder to write; it must not exist (or be empty) unless ``overwrite=True``.
        quantize: ``None`` (fp32 only), ``"int8"`` (also write ``model_int8.onnx``, dynamic) or ``"int8-static"``
            (also write ``model_int8_static.onnx``, calibrated static QDQ).
        optimize: fuse attention / LayerNorm / GELU with onnxruntime's transformer optimizer (BERT family).
        int8: overrides of :data:`INT8_OPTIONS` (dynamic) or of
            :data:`~rankwise.rerankers.cross_encoder.onnx_static.STATIC_INT8_OPTIONS` (static); advanced.
        calibration: (query, document) pairs for ``"int8-static"`` (default: the built-in general set,
            :data:`~rankwise.rerankers.cross_encoder.calibration.DEFAULT_CALIBRATION`).
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
    opts = quantize_options(quantize, int8)
    pairs = check_calibration(calibration) if quantize == "int8-static" else None
    out = _prepare_out_dir(Path(out_dir), overwrite)
    torch = require("torch", "onnx-export", "Exporting a cross-encoder to ONNX")
    torch_model, config, hf_tok = load_source(str(model), revision, trust_remote_code)
    hf_tok.save_pretrained(str(out))
    config.save_pretrained(str(out))
    names = input_names(torch_model, config)
    sample = sample_batch(hf_tok, names)
    expected = _torch_logits(torch, torch_model, sample)
    graph, fusion = _write_fp32_graph(torch, torch_model, config, hf_tok, names, out, sample, expected,
                                      optimize=optimize, first_token=first_token)
    manifest = _manifest(str(model), revision, config, hf_tok, names, graph, fusion)
    manifest["check"] = {"max_abs_diff_fp32": max_diff(out / FP32_FILE, sample, expected), "pairs": len(expected)}
    if quantize is not None:
        _write_int8_graph(quantize, opts, pairs, out, sample, expected, manifest)
    write_manifest(out, manifest)
    return out


def _manifest(
    source: str, revision: str | None, config: Any, tokenizer: Any, names: list[str], graph: Any, fusion: Any
) -> dict[str, Any]:
    """What ``rankwise_onnx.json`` says of an export (the accuracy checks are added by the caller)."""
    return {
        "format": EXPORT_FORMAT,
        "source": source,
        "revision": revision,
        "files": {"fp32": FP32_FILE},
        "inputs": names,
        "max_length": resolve_max_length(None, config, getattr(tokenizer, "model_max_length", None)),
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "num_labels": int(config.num_labels),
        "graph": graph,
        "optimization": fusion,
        "versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def quantize_int8(src: Path, dst: Path, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Dynamic int8 quantization of ``src`` into ``dst`` (needs ``onnx`` and ``onnxruntime``); returns the options used.

    Fused graphs carry com.microsoft ops that ONNX shape inference cannot type, hence ``DefaultTensorType`` = float.
    """
    onnx = require("onnx", "onnx-export", "int8 quantization")
    quantization = require("onnxruntime.quantization", "onnx", "int8 quantization")
    opts = int8_options(options)
    nodes = [n.name for n in onnx.load(str(src), load_external_data=False).graph.node
             if n.op_type in opts["op_types"]]
    keep = [re.compile(p) for p in opts["keep_fp32"]]
    layers = [int(m.group(1)) for n in nodes if (m := re.search(r"/layer\.(\d+)/", n))]
    if opts["last_layer_fp32"] and layers:
        keep.append(re.compile(rf"/layer\.{max(layers)}/"))
    excluded = [n for n in nodes if any(p.search(n) for p in keep)]
    with quiet("root"):  # onnxruntime logs a "consider pre-processing" warning on the root logger
        quantization.quantize_dynamic(
            str(src),
            str(dst),
            op_types_to_quantize=list(opts["op_types"]),
            per_channel=bool(opts["per_channel"]),
            reduce_range=bool(opts["reduce_range"]),
            weight_type=getattr(quantization.QuantType, opts["weight_type"]),
            nodes_to_exclude=excluded,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    used = {k: list(v) if k in _TUPLE_OPTIONS else v for k, v in opts.items()}
    return {"method": "dynamic", "activations": "QUInt8", **used, "kept_fp32_nodes": len(excluded)}


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


def _write_fp32_graph(torch: Any, model: Any, config: Any, tokenizer: Any, names: list[str], out: Path,
                      sample: dict[str, Any], expected: Any, *, optimize: bool,
                      first_token: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Export (steps 1-2), fuse (step 3) and check into ``out/model.onnx``; the manifest's graph and optimization
    entries. The unfused graph is kept when fusion is off or does not reproduce torch."""
    raw = out / "raw.onnx"
    graph = export_checked(torch, model, tokenizer, names, raw, sample, expected, first_token)
    fusion = optimize_checked(raw, out / FP32_FILE, config, sample, expected) if optimize else None
    if fusion is None or not fusion["kept"]:
        raw.replace(out / FP32_FILE)
    raw.unlink(missing_ok=True)
    return graph, fusion


def _torch_logits(torch: Any, model: Any, sample: dict[str, Any]) -> Any:
    """The torch model's logits on the sample pairs: what every exported graph must reproduce."""
    with torch.inference_mode():
        return model(**{k: torch.from_numpy(v) for k, v in sample.items()}).logits.float().numpy()


def _write_int8_graph(quantize: str, opts: dict[str, Any] | None, pairs: Sequence[tuple[str, str]] | None,
                      out: Path, sample: dict[str, Any], expected: Any, manifest: dict[str, Any]) -> None:
    """Quantize ``out/model.onnx`` (step 4: dynamic ``"int8"`` or calibrated ``"int8-static"`` on ``pairs``)
    and check it against torch; the quantization, the file and the difference go into ``manifest``."""
    if quantize == "int8":
        manifest["quantization"] = quantize_int8(out / FP32_FILE, out / INT8_FILE, opts)
        manifest["files"]["int8"] = INT8_FILE
        manifest["check"]["max_abs_diff_int8"] = max_diff(out / INT8_FILE, sample, expected)
    elif quantize == "int8-static":
        from rankwise.rerankers.cross_encoder.onnx_static import quantize_static_int8

        manifest["quantization"] = quantize_static_int8(out / FP32_FILE, out / STATIC_INT8_FILE, out, pairs, opts,
                                                        max_length=manifest["max_length"],
                                                        pad_id=manifest["pad_token_id"])
        manifest["files"]["int8_static"] = STATIC_INT8_FILE
        manifest["check"]["max_abs_diff_int8_static"] = max_diff(out / STATIC_INT8_FILE, sample, expected)


def _prepare_out_dir(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"out_dir {str(out)!r} is a file; give a folder path.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InvalidInputError(f"out_dir {str(out)!r} is not empty; pass overwrite=True or choose another folder.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out

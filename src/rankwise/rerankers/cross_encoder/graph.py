"""The torch side of an ONNX export: load, export, first-token last layer, fusion, and checks against torch.

Private helpers of :func:`rankwise.rerankers.cross_encoder.export.export_onnx`; every step that changes the graph is checked against the
torch model's logits on sample pairs and undone when it does not reproduce them.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rankwise._hub import loading
from rankwise.errors import InvalidInputError, require

OPSET = 17
CHECK_TOLERANCE = 1e-3

# model_type -> the onnxruntime.transformers optimizer type that fuses it.
_OPTIMIZER_TYPES = {
    "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "camembert": "bert", "electra": "bert",
    "distilbert": "bert", "mpnet": "bert",
}
_SAMPLE_PAIRS = (
    ("how do lstm networks remember long-term dependencies?",
     "Long short-term memory networks use gates to keep information over many time steps."),
    ("what is bm25", "BM25 is a ranking function."),
    ("capital of france", "Paris is the capital and most populous city of France. " * 12),
    ("a", "b"),
)


def load_source(source: str, revision: str | None, trust_remote_code: bool) -> tuple[Any, Any, Any]:
    """``(model, config, fast tokenizer)`` of a sequence-classification model, eager attention, in eval mode."""
    transformers = require("transformers", "onnx-export", "Exporting a cross-encoder to ONNX")
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    with loading(source):  # one offline message for every backend (rankwise._hub), no "Loading weights" bar
        config = transformers.AutoConfig.from_pretrained(source, **kwargs)
        # eager attention exports to the MatMul/Softmax pattern the onnxruntime optimizer fuses
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source, config=config, attn_implementation="eager", **kwargs
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True, **kwargs)
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(f"{source!r} has no fast (Rust) tokenizer; the ONNX backend needs tokenizer.json.")
    return model.eval(), config, tokenizer


def input_names(model: Any, config: Any) -> list[str]:
    """Graph inputs: ids and mask, plus ``token_type_ids`` for models that take and use segment ids."""
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
    sample = sample_batch(tokenizer, names, n=2)
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    wrapper = _logits_wrapper(torch, model, names)
    try:
        with quiet("torch"), warnings.catch_warnings(), torch.no_grad():
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


def export_checked(torch: Any, model: Any, tokenizer: Any, names: list[str], path: Path,
                    sample: dict[str, np.ndarray], expected: np.ndarray, first_token: bool) -> dict[str, Any]:
    """Export (first-token last layer when asked and possible) and check the graph against torch's logits."""
    tolerance = CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max()))
    info: dict[str, Any] = {"first_token_last_layer": False}
    if first_token:
        with first_token_last_layer(model) as applies:
            if applies:
                info["exporter"] = _export_graph(torch, model, tokenizer, names, path)
        if applies and max_diff(path, sample, expected) <= tolerance:
            info["first_token_last_layer"] = True
            return info
        info["first_token_skipped"] = "not a BERT-family head" if not applies else "did not reproduce torch"
    info["exporter"] = _export_graph(torch, model, tokenizer, names, path)
    diff = max_diff(path, sample, expected)
    if diff > tolerance:
        raise InvalidInputError(
            f"the ONNX export does not reproduce torch (max abs logit difference {diff:.3g}); this architecture may "
            "need a newer torch/onnxruntime. Use the torch backend (backend='cross-encoder')."
        )
    return info


def optimize_checked(raw: Path, dst: Path, config: Any, sample: dict[str, np.ndarray],
                      expected: np.ndarray) -> dict[str, Any]:
    """Run the transformer optimizer; keep its graph only if it still reproduces torch."""
    model_type = _OPTIMIZER_TYPES.get(getattr(config, "model_type", ""))
    if model_type is None:
        return {"kept": False, "reason": f"no fusion rules for model_type {config.model_type!r}"}
    optimizer = require("onnxruntime.transformers.optimizer", "onnx-export", "Graph fusion")
    with quiet("onnxruntime", "root"):
        fused = optimizer.optimize_model(
            str(raw), model_type=model_type, num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size), opt_level=0, use_gpu=False,
        )
    stats = {k: int(v) for k, v in fused.get_fused_operator_statistics().items() if v}
    fused.save_model_to_file(str(dst))
    diff = max_diff(dst, sample, expected)
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


def sample_batch(tokenizer: Any, names: list[str], n: int | None = None) -> dict[str, np.ndarray]:
    """Right-padded int64 inputs for a few fixed pairs of different lengths (export example and checks)."""
    pairs = _SAMPLE_PAIRS[: n or len(_SAMPLE_PAIRS)]
    enc = tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, truncation=True,
                    max_length=128, return_tensors="np")
    return {k: np.asarray(enc[k], dtype=np.int64) for k in names}


def max_diff(path: Path, sample: dict[str, np.ndarray], expected: np.ndarray) -> float:
    """Largest absolute difference between the ONNX graph's logits and ``expected`` (torch's) on ``sample``."""
    ort = require("onnxruntime", "onnx", "Checking an ONNX export")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    got = session.run(None, {k: v for k, v in sample.items() if k in wanted})[0]
    return float(np.abs(np.asarray(got, dtype=np.float64) - expected).max())


@contextmanager
def quiet(*loggers: str) -> Iterator[None]:
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

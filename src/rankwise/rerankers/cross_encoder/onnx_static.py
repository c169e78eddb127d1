"""Calibrated int8 for ONNX graphs: SmoothQuant-style scaling and static (QDQ) quantization over real pairs.

Two tools, both fed by the calibration pairs of :mod:`~rankwise.rerankers.cross_encoder.calibration` (tokenized,
truncated and padded as inference does them):

* :func:`smooth_graph` -- SmoothQuant (Xiao et al., 2023) for the MatMuls with constant weights: activation channels
  with outliers are divided by ``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)`` and the weight rows multiplied by it,
  so ``X W`` is unchanged but the activations quantize with much less error. BERT's post-LayerNorm residual stream
  means the division cannot be folded into the LayerNorm exactly, so it stays an explicit ``Mul`` in front of each
  smoothed MatMul (one cheap elementwise op); the graph still reproduces the fp32 logits.
* :func:`quantize_static_int8` -- ``onnxruntime.quantization.quantize_static``: QDQ, uint8 activations x int8
  per-channel weights, activation ranges fixed by a calibration method (min-max, percentile or entropy) instead of
  measured on every batch at run time as dynamic int8 does.

``export_onnx(..., quantize="int8-static")`` and ``OnnxReranker(..., quantize="int8-static")`` use them; the options
are :data:`STATIC_INT8_OPTIONS`, what each does to agreement and speed is logged in docs/onnx.md.

Example:
    >>> from rankwise.rerankers.cross_encoder.onnx_static import static_int8_options
    >>> static_int8_options({"calibrate_method": "percentile"})["calibrate_method"]
    'percentile'
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.calibration import calibration_batches, calibration_digest
from rankwise.rerankers.cross_encoder.graph import quiet
from rankwise.rerankers.cross_encoder.options import with_overrides

# The best of the variants measured on SciFact (docs/onnx.md, lever log): min-max ranges are set by BERT's outlier
# channels (the GELU output feeding each feed-forward output projection); SmoothQuant (alpha 0.5) moves part of them
# into the weights and percentile calibration clips the rest. Even so, static int8 agreed less and ran slower than
# dynamic int8 on onnxruntime; the OpenVINO backend is the calibrated int8 that pays.
STATIC_INT8_OPTIONS: Mapping[str, Any] = {
    "calibrate_method": "percentile",  # "minmax" | "percentile" | "entropy"
    "percentile": 99.999,              # for "percentile"
    "smooth_quant_alpha": 0.5,         # SmoothQuant migration strength in [0, 1]; -1 turns it off
    "per_channel": True,               # per-output-channel weight scales
    "op_types": ("MatMul",),           # what QDQ covers (onnxruntime has no static path for the fused Attention)
    "last_layer_fp32": True,           # the first-token last layer stays fp32, as in dynamic int8
    "keep_fp32": (),                   # node-name regular expressions kept fp32
    "subset_size": 100,                # calibration pairs used at most (histograms of 512-token pairs: ~1 s each)
}
_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
_TUPLE_OPTIONS = ("op_types", "keep_fp32")


def static_int8_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`STATIC_INT8_OPTIONS` with ``overrides`` applied (unknown keys or values are an error)."""
    opts = with_overrides(STATIC_INT8_OPTIONS, overrides, "static int8 option", _TUPLE_OPTIONS)
    if opts["calibrate_method"] not in _METHODS:
        raise InvalidInputError(
            f"int8 option 'calibrate_method' must be one of {', '.join(_METHODS)}, got {opts['calibrate_method']!r}."
        )
    alpha = opts["smooth_quant_alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (alpha == -1 or 0 <= alpha <= 1):
        raise InvalidInputError(f"int8 option 'smooth_quant_alpha' must be in [0, 1], or -1 (off), got {alpha!r}.")
    size = opts["subset_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInputError(f"int8 option 'subset_size' must be a positive integer, got {size!r}.")
    return opts


def quantize_static_int8(
    src: Path,
    dst: Path,
    tokenizer_dir: Path,
    pairs: Sequence[tuple[str, str]],
    options: Mapping[str, Any] | None = None,
    *,
    max_length: int = 512,
    pad_id: int = 0,
) -> dict[str, Any]:
    """Static int8 of the fp32 graph ``src`` into ``dst``, calibrated on checked ``pairs``; the manifest entry.

    ``tokenizer_dir`` holds the model's ``tokenizer.json``. Needs ``onnx`` and ``onnxruntime`` (not torch).
    """
    onnx = require("onnx", "onnx-export", "Static int8 quantization")
    quantization = require("onnxruntime.quantization", "onnx", "Static int8 quantization")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    opts = static_int8_options(options)
    pairs = list(pairs)[: opts["subset_size"]]
    model = onnx.load(str(src))
    names = [i.name for i in model.graph.input]
    items = calibration_batches(tokenizer_dir, pairs, names, max_length=max_length, pad_id=pad_id, batch_size=1)
    excluded = _excluded_nodes(model, opts)
    smoothed = 0
    if opts["smooth_quant_alpha"] != -1:
        smoothed = smooth_graph(model, items, float(opts["smooth_quant_alpha"]), excluded)
    prepared = dst.with_name(dst.stem + ".prep.onnx")
    onnx.save(model, str(prepared))
    try:
        # symbolic shape inference types the fused com.microsoft ops' outputs: without it the quantizer cannot tell
        # that their outputs are float activations and quantizes only the weights (measured: no QuantizeLinear at all).
        # The histogram calibrators print() their settings: library code never prints, so stdout is swallowed.
        with quiet("root", "onnxruntime"), redirect_stdout(io.StringIO()):
            quant_pre_process(str(prepared), str(prepared), skip_optimization=True)
            quantization.quantize_static(
                str(prepared), str(dst), _Reader(_fixed_shape(items, opts["calibrate_method"])),
                quant_format=quantization.QuantFormat.QDQ,
                op_types_to_quantize=list(opts["op_types"]),
                per_channel=bool(opts["per_channel"]),
                activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
                calibrate_method=getattr(quantization.CalibrationMethod, _METHODS[opts["calibrate_method"]]),
                nodes_to_exclude=excluded,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT,
                               "CalibPercentile": float(opts["percentile"])},
            )
    finally:
        prepared.unlink(missing_ok=True)
    used = {k: list(v) if k in _TUPLE_OPTIONS else v for k, v in opts.items()}
    return {"method": "static", "format": "QDQ", "activations": "QUInt8", **used, "kept_fp32_nodes": len(excluded),
            "smoothed_matmuls": smoothed, "calibration_pairs": len(pairs),
            "calibration_digest": calibration_digest(pairs)}


def smooth_graph(model: Any, items: Sequence[Mapping[str, np.ndarray]], alpha: float,
                 skip: Sequence[str] = ()) -> int:
    """SmoothQuant, in place, for every MatMul whose second input is a 2-D constant weight (except ``skip``).

    The per-channel ``max|X|`` of each MatMul's activation input is measured by running ``items`` through
    onnxruntime; the weight's rows are scaled up and an explicit ``Mul`` scales the activation down. Returns how
    many MatMuls were smoothed.
    """
    onnx = require("onnx", "onnx-export", "SmoothQuant")
    numpy_helper = onnx.numpy_helper
    weights = {init.name: init for init in model.graph.initializer}
    targets = [n for n in model.graph.node if n.op_type == "MatMul" and n.name not in set(skip)
               and n.input[1] in weights and len(weights[n.input[1]].dims) == 2]
    amax = _activation_absmax(model, items, sorted({n.input[0] for n in targets}))
    for node in targets:
        weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        x_max = np.maximum(amax[node.input[0]], 1e-5)
        w_max = np.maximum(np.abs(weight).max(axis=1), 1e-5)
        scale = np.clip(x_max**alpha / w_max ** (1.0 - alpha), 1e-4, 1e4).astype(np.float32)
        weights[node.input[1]].CopyFrom(numpy_helper.from_array(weight * scale[:, None], node.input[1]))
        inverse = f"{node.name}/smooth_quant/inverse_scale"
        smoothed = f"{node.name}/smooth_quant/output"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse))
        model.graph.node.append(onnx.helper.make_node("Mul", [node.input[0], inverse], [smoothed],
                                                      name=f"{node.name}/smooth_quant/Mul"))
        node.input[0] = smoothed
    _topological_sort(model)
    return len(targets)


def _activation_absmax(model: Any, items: Sequence[Mapping[str, np.ndarray]],
                       tensors: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-channel (last axis) ``max|x|`` of each named tensor over the calibration items."""
    onnx = require("onnx", "onnx-export", "SmoothQuant")
    ort = require("onnxruntime", "onnx", "SmoothQuant")
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every probed tensor
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out: dict[str, np.ndarray] = {}
    for item in items:
        for name, value in zip(tensors, session.run(list(tensors), dict(item))):
            channel_max = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            out[name] = channel_max if name not in out else np.maximum(out[name], channel_max)
    return out


def _topological_sort(model: Any) -> None:
    """Reorder the graph's nodes so each comes after its inputs' producers (appended Mul nodes need it)."""
    nodes = list(model.graph.node)
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    ordered, pending = [], nodes
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:  # a cycle or a dangling input: leave the rest as they were
            ordered.extend(pending)
            break
        for n in ready:
            available.update(n.output)
        ordered.extend(ready)
        pending = [n for n in pending if n not in ready]
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def _excluded_nodes(model: Any, opts: Mapping[str, Any]) -> list[str]:
    """Nodes kept fp32: ``keep_fp32`` matches and, if asked, the last encoder layer."""
    nodes = [n.name for n in model.graph.node if n.op_type in opts["op_types"]]
    keep = [re.compile(p) for p in opts["keep_fp32"]]
    layers = [int(m.group(1)) for n in nodes if (m := re.search(r"/layer\.(\d+)/", n))]
    if opts["last_layer_fp32"] and layers:
        keep.append(re.compile(rf"/layer\.{max(layers)}/"))
    return [n for n in nodes if any(p.search(n) for p in keep)]


def _fixed_shape(items: list[dict[str, np.ndarray]], method: str) -> list[dict[str, np.ndarray]]:
    """Histogram calibrators (percentile, entropy) stack every batch, so they need one shape: right-pad to the
    longest pair (the padding is masked, as in a mixed-length inference batch). Min-max takes items as they are."""
    if method == "minmax" or not items:
        return items
    width = max(v.shape[1] for item in items for v in item.values())
    return [{k: np.pad(v, ((0, 0), (0, width - v.shape[1]))) for k, v in item.items()} for item in items]


class _Reader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over prepared calibration items."""

    def __init__(self, items: Sequence[Mapping[str, np.ndarray]]) -> None:
        self._items = iter(items)

    def get_next(self) -> Mapping[str, np.ndarray] | None:
        return next(self._items, None)

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> Mapping[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item

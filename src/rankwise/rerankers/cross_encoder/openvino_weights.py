"""OpenVINO int8 without calibration: int8 weights, activations quantized at run time in small groups.

``quantize="int8-dynamic"`` (OpenVINO backend) writes ``openvino_model_int8_dynamic.xml``: NNCF weight compression
stores every linear layer's weights in int8 with a scale *and a zero point* per output channel (asymmetric), and the
OpenVINO CPU plugin quantizes each activation row to int8 per group of ``group_size`` values as it runs, so the
matrix products run on int8 units (AMX / VNNI) without a calibration set::

    >>> import rankwise                                                                        # doctest: +SKIP
    >>> reranker = rankwise.load("my-cross-encoder", backend="openvino", quantize="int8-dynamic")  # doctest: +SKIP

Why this and not static int8 (``quantize="int8"``) or ONNX dynamic int8, on a fine-tuned MiniLM cross-encoder
(``benchmarks/results/learning.json``, section ``int8``): those quantize an activation tensor with one scale, and a
scale wide enough for BERT's outlier features leaves few levels for the rest, which moved documents across rank 10
(top-10 overlap with fp32 0.88-0.94 on SciFact). A scale per 32 values follows the outliers; what is left is the
weights' error, and asymmetric weights halve it against symmetric ones (the fine-tuned layers' weights are not
centred on zero). The group size is stored in the IR (``runtime_options``), so the file runs the same wherever it
is loaded; ``group_size=0`` turns the run-time quantization off (int8 weights, fp32 arithmetic: smaller, not faster).

Needs openvino and nncf only (no torch, no calibration pairs).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.graph import quiet
from rankwise.rerankers.cross_encoder.options import with_overrides

DYNAMIC_INT8_XML = "openvino_model_int8_dynamic.xml"

# "weights": "asymmetric" (scale + zero point per output channel) or "symmetric" (scale only; measured 0.95 vs 0.97
# top-10 overlap on the SciFact model); "group_size": activation values sharing one int8 scale at run time (the CPU
# plugin's DYNAMIC_QUANTIZATION_GROUP_SIZE), 0 = activations stay fp32; "keep_fp32": regular expressions of node
# names whose weights stay fp32.
OV_DYNAMIC_INT8_OPTIONS: Mapping[str, Any] = {
    "weights": "asymmetric",
    "group_size": 32,
    "keep_fp32": (),
}
_RUNTIME_GROUP_SIZE = ["runtime_options", "DYNAMIC_QUANTIZATION_GROUP_SIZE"]


def ov_dynamic_int8_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`OV_DYNAMIC_INT8_OPTIONS` with ``overrides`` applied (unknown keys or values are an error).

    >>> ov_dynamic_int8_options({"group_size": 64})["group_size"]
    64
    >>> ov_dynamic_int8_options({"preset": "mixed"})
    Traceback (most recent call last):
    ...
    rankwise.errors.InvalidInputError: unknown int8-dynamic option 'preset'; valid: weights, group_size, keep_fp32.
    """
    opts = with_overrides(OV_DYNAMIC_INT8_OPTIONS, overrides, "int8-dynamic option")
    if opts["weights"] not in ("asymmetric", "symmetric"):
        raise InvalidInputError(f"int8 option 'weights' must be 'asymmetric' or 'symmetric', got {opts['weights']!r}.")
    size = opts["group_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInputError(
            f"int8 option 'group_size' must be a non-negative integer (0 = fp32 activations), got {size!r}."
        )
    return opts


def compress_openvino(src: Path, dst: Path, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Int8 weights of the fp32 IR ``src`` into ``dst`` (an ``.xml`` path), with the run-time activation group size
    stored in the IR; returns the manifest entry. Needs openvino and nncf only."""
    ov = require("openvino", "openvino", "OpenVINO int8 weight compression")
    nncf = require("nncf", "openvino", "OpenVINO int8 weight compression")
    opts = ov_dynamic_int8_options(options)
    model = ov.Core().read_model(str(src))
    mode = nncf.CompressWeightsMode.INT8_ASYM if opts["weights"] == "asymmetric" else nncf.CompressWeightsMode.INT8_SYM
    keep = list(opts["keep_fp32"])
    # NNCF prints a bit-width table and a progress bar; library code never prints, so both are swallowed
    with quiet("nncf", "root"), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        compressed = nncf.compress_weights(
            model, mode=mode, ignored_scope=nncf.IgnoredScope(patterns=keep, validate=False) if keep else None
        )
    compressed.set_rt_info(str(opts["group_size"]), _RUNTIME_GROUP_SIZE)
    ov.save_model(compressed, str(dst), compress_to_fp16=False)
    used = {k: list(v) if k == "keep_fp32" else v for k, v in opts.items()}
    return {"method": "nncf int8 weight compression + run-time activation quantization", **used,
            "int8_weight_matrices": _int8_weight_matrices(ov, compressed)}


def ir_group_size(model: Any) -> int | None:
    """The run-time activation group size stored in an IR (``None`` when it has none)."""
    if not model.has_rt_info(_RUNTIME_GROUP_SIZE):
        return None
    return int(model.get_rt_info(_RUNTIME_GROUP_SIZE).astype(str))


def _int8_weight_matrices(ov: Any, model: Any) -> int:
    """How many weight matrices the compressed IR stores as 8-bit integers (zero points, [n, 1], are not counted)."""
    eight_bit = (ov.Type.u8, ov.Type.i8)
    return sum(1 for op in model.get_ops()
               if op.get_type_name() == "Constant" and op.get_element_type() in eight_bit
               and len(shape := op.get_output_shape(0)) == 2 and min(shape) > 1)

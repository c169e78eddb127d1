"""Export a Hugging Face cross-encoder to OpenVINO IR (fp32, and int8 through NNCF), checked against torch.

One call writes a folder that :class:`~rankwise.rerankers.cross_encoder.openvino.OpenVinoReranker` runs with
``openvino`` and ``tokenizers`` only::

    >>> from rankwise.rerankers.cross_encoder.openvino_export import export_openvino             # doctest: +SKIP
    >>> folder = export_openvino("cross-encoder/ms-marco-MiniLM-L-6-v2", "minilm-ov", quantize="int8",
    ...                          calibration=[("what is bm25?", "BM25 is a ranking function."), ...])  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())                                                  # doctest: +SKIP
    ['config.json', 'openvino_model.bin', 'openvino_model.xml', 'openvino_model_int8.bin', 'openvino_model_int8.xml',
     'rankwise_openvino.json', 'tokenizer.json', 'tokenizer_config.json', ...]

The steps, each recorded in ``rankwise_openvino.json`` (the folder's manifest):

1. **convert** the torch model with ``openvino.convert_model`` (PyTorch frontend), SDPA attention: the CPU plugin
   fuses the ``ScaledDotProductAttention`` op it yields (an eager-attention graph took 1.6x the CPU time in fp32 here).
   Batch and sequence axes are dynamic; weights stay fp32 on disk (``compress_to_fp16=False``).
2. **first-token last layer** (BERT family, :func:`~rankwise.rerankers.cross_encoder.graph.first_token_last_layer`):
   the last layer runs only for the token the head reads; exact, and undone if the check below fails.
3. **check**: compiled with ``INFERENCE_PRECISION_HINT=f32``, the IR must reproduce torch's logits on sample pairs
   (max abs difference below 1e-3 x the logit scale).
4. **int8** (``quantize="int8"``): NNCF post-training quantization (:func:`quantize_openvino`) calibrated on real
   (query, document) pairs (:mod:`~rankwise.rerankers.cross_encoder.calibration`), transformer mode (SmoothQuant on
   the MatMuls, attention's softmax and LayerNorms kept in floating point), the last encoder layer kept fp32.
   Or ``quantize="int8-dynamic"``: int8 weights with activations quantized at run time, no calibration
   (:mod:`~rankwise.rerankers.cross_encoder.openvino_weights`; agrees with fp32 best).

Exporting needs ``rankwise[openvino]`` (openvino, nncf, torch, transformers); int8 of an already exported fp32 IR
needs only openvino and nncf.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.calibration import (
    CalibrationPairs,
    calibration_batches,
    calibration_digest,
    check_calibration,
)
from rankwise.rerankers.cross_encoder.engine import read_json, resolve_max_length
from rankwise.rerankers.cross_encoder.export import _prepare_out_dir
from rankwise.rerankers.cross_encoder.graph import (
    CHECK_TOLERANCE,
    _logits_wrapper,
    first_token_last_layer,
    input_names,
    load_source,
    quiet,
    sample_batch,
)
from rankwise.rerankers.cross_encoder.openvino_weights import (
    DYNAMIC_INT8_XML,
    compress_openvino,
    ov_dynamic_int8_options,
)
from rankwise.rerankers.cross_encoder.options import with_overrides

OV_MANIFEST = "rankwise_openvino.json"
FP32_XML = "openvino_model.xml"
INT8_XML = "openvino_model_int8.xml"
OV_FORMAT = 1
OV_QUANTIZE_CHOICES = (None, "int8", "int8-dynamic")
# the IR each quantize method runs
IR_FILES = {None: FP32_XML, "int8": INT8_XML, "int8-dynamic": DYNAMIC_INT8_XML}

# NNCF post-training int8 (docs/onnx.md lever log):
# "preset": "mixed" = asymmetric activations (BERT activations after GELU are far from symmetric), symmetric weights;
# "smooth_quant_alpha": SmoothQuant's migration strength on MatMuls (NNCF's transformer default 0.95); -1 turns it off;
# "subset_size": calibration pairs used at most; "last_layer_fp32": the last encoder layer (first-token only, cheap)
# stays fp32, as in the ONNX int8 graph; "keep_fp32": regular expressions of node names kept fp32.
OV_INT8_OPTIONS: Mapping[str, Any] = {
    "preset": "mixed",
    "smooth_quant_alpha": 0.95,
    "subset_size": 300,
    "fast_bias_correction": True,
    "last_layer_fp32": True,
    "keep_fp32": (),
}


def check_ov_quantize(quantize: str | None) -> str | None:
    """Validate the OpenVINO backend's ``quantize`` option.

    >>> check_ov_quantize("int8")
    'int8'
    >>> check_ov_quantize("int4")
    Traceback (most recent call last):
    ...
    rankwise.errors.InvalidInputError: quantize must be None, 'int8' (static, calibrated) or 'int8-dynamic' (int8 weights, no calibration) for the OpenVINO backend, got 'int4'.
    """
    if quantize not in OV_QUANTIZE_CHOICES:
        raise InvalidInputError(
            "quantize must be None, 'int8' (static, calibrated) or 'int8-dynamic' (int8 weights, no calibration) "
            f"for the OpenVINO backend, got {quantize!r}."
        )
    return quantize


def ov_quantize_options(quantize: str | None, overrides: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The checked options of a ``quantize`` method (``int8`` overrides applied), ``None`` for fp32."""
    if quantize == "int8-dynamic":
        return ov_dynamic_int8_options(overrides)
    return ov_int8_options(overrides) if quantize else None


def ov_calibration(quantize: str | None, calibration: CalibrationPairs | None) -> tuple[tuple[str, str], ...] | None:
    """The checked calibration pairs static int8 uses (the default set when none are given); ``None`` for the other
    methods, which take none: pairs given with ``"int8-dynamic"`` are an error rather than silently unused."""
    if quantize == "int8":
        return check_calibration(calibration)
    if quantize == "int8-dynamic" and calibration is not None:
        raise InvalidInputError(
            "calibration pairs are for quantize='int8' (static); quantize='int8-dynamic' quantizes activations at run "
            "time and takes none: drop calibration=..."
        )
    return None


def ov_int8_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`OV_INT8_OPTIONS` with ``overrides`` applied (unknown keys or values are an error)."""
    opts = with_overrides(OV_INT8_OPTIONS, overrides, "OpenVINO int8 option")
    if opts["preset"] not in ("mixed", "performance"):
        raise InvalidInputError(f"int8 option 'preset' must be 'mixed' or 'performance', got {opts['preset']!r}.")
    alpha = opts["smooth_quant_alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (alpha == -1 or 0 <= alpha <= 1):
        raise InvalidInputError(f"int8 option 'smooth_quant_alpha' must be in [0, 1], or -1 (off), got {alpha!r}.")
    size = opts["subset_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInputError(f"int8 option 'subset_size' must be a positive integer, got {size!r}.")
    return opts


def ov_versions() -> dict[str, str]:
    """Versions an OpenVINO export depends on (``"absent"`` when not installed); never imports them."""
    out = {}
    for pkg in ("openvino", "nncf", "torch", "transformers", "tokenizers"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def export_openvino(
    model: str | Path,
    out_dir: str | Path,
    *,
    quantize: str | None = None,
    calibration: CalibrationPairs | None = None,
    int8: Mapping[str, Any] | None = None,
    first_token: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
    overwrite: bool = False,
) -> Path:
    """Export a sequence-classification re-ranker to an OpenVINO IR folder that runs without torch.

    Args:
        model: Hugging Face hub name or local folder of the cross-encoder.
        out_dir: folder to write; it must not exist (or be empty) unless ``overwrite=True``.
        quantize: ``None`` (fp32 IR only), ``"int8"`` (also ``openvino_model_int8.xml``, NNCF static int8) or
            ``"int8-dynamic"`` (also ``openvino_model_int8_dynamic.xml``: int8 weights, no calibration).
        calibration: (query, document) pairs for ``"int8"`` (default
            :data:`~rankwise.rerankers.cross_encoder.calibration.DEFAULT_CALIBRATION`; your own few hundred are better).
        int8: overrides of :data:`OV_INT8_OPTIONS` (``"int8"``) or of
            :data:`~rankwise.rerankers.cross_encoder.openvino_weights.OV_DYNAMIC_INT8_OPTIONS` (``"int8-dynamic"``).
        first_token: compute the last layer for the first token only (exact; BERT family).
        revision, trust_remote_code: passed to transformers.

    Example:
        >>> export_openvino("my-cross-encoder", "my-cross-encoder-ov", quantize="int8")  # doctest: +SKIP
        PosixPath('my-cross-encoder-ov')
    """
    check_ov_quantize(quantize)
    pairs = ov_calibration(quantize, calibration)
    opts = ov_quantize_options(quantize, int8)
    out = _prepare_out_dir(Path(out_dir), overwrite)
    torch = require("torch", "openvino", "Exporting a cross-encoder to OpenVINO")
    ov = require("openvino", "openvino", "Exporting a cross-encoder to OpenVINO")
    torch_model, config, tokenizer = load_source(str(model), revision, trust_remote_code)
    attention = _use_sdpa(torch_model)
    tokenizer.save_pretrained(str(out))
    config.save_pretrained(str(out))
    names = input_names(torch_model, config)
    sample = sample_batch(tokenizer, names)
    with torch.inference_mode():
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in sample.items()}).logits.float().numpy()
    graph = _convert_checked(torch, ov, torch_model, tokenizer, names, out / FP32_XML, sample, expected, first_token)
    manifest = {
        "format": OV_FORMAT, "source": str(model), "revision": revision, "files": {"fp32": FP32_XML},
        "inputs": names, "max_length": resolve_max_length(None, config, getattr(tokenizer, "model_max_length", None)),
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "num_labels": int(config.num_labels), "graph": {**graph, "attention": attention},
        "versions": ov_versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "check": {"max_abs_diff_fp32": ir_max_diff(out / FP32_XML, sample, expected), "pairs": len(expected)},
    }
    write_ov_manifest(out, manifest)  # quantize_openvino reads the window and inputs from it
    if quantize is not None:
        _add_int8_ir(out, quantize, pairs, opts, manifest, sample, expected)
        write_ov_manifest(out, manifest)
    return out


def _add_int8_ir(out: Path, quantize: str, pairs: Sequence[tuple[str, str]] | None, opts: Mapping[str, Any] | None,
                 manifest: dict[str, Any], sample: Mapping[str, np.ndarray], expected: np.ndarray) -> None:
    """Step 4: write the int8 IR ``quantize`` asks for next to the fp32 one; record it and its distance to torch."""
    manifest["quantization"] = quantize_ir(out, quantize, pairs, opts)
    manifest["files"][quantize] = IR_FILES[quantize]
    check = f"max_abs_diff_{quantize.replace('-', '_')}"
    manifest["check"][check] = ir_max_diff(out / IR_FILES[quantize], sample, expected)


def quantize_ir(folder: Path, quantize: str, pairs: Sequence[tuple[str, str]] | None,
                opts: Mapping[str, Any] | None, src: Path | None = None) -> dict[str, Any]:
    """Write the int8 IR of ``quantize`` ("int8": NNCF static, calibrated on ``pairs``; "int8-dynamic": int8 weights)
    into ``folder`` from the fp32 IR ``src`` (default ``folder``'s own); returns the manifest entry."""
    if quantize == "int8":
        return quantize_openvino(folder, pairs, opts, src=src)
    return compress_openvino(src or folder / FP32_XML, folder / IR_FILES[quantize], opts)


def quantize_openvino(
    folder: Path,
    calibration: Sequence[tuple[str, str]] | None,
    options: Mapping[str, Any] | None = None,
    src: Path | None = None,
) -> dict[str, Any]:
    """NNCF static int8 of ``folder``'s fp32 IR into ``folder/openvino_model_int8.xml``; returns the manifest entry.

    Calibration inputs are built from ``folder``'s tokenizer and manifest (window, pad id, inputs) exactly as
    inference builds them, one pair per item so no padding enters the statistics. Needs openvino and nncf only.
    """
    ov = require("openvino", "openvino", "OpenVINO int8 quantization")
    nncf = require("nncf", "openvino", "OpenVINO int8 quantization")
    pairs = check_calibration(calibration)
    opts = ov_int8_options(options)
    manifest = read_ov_manifest(folder)
    names = manifest.get("inputs") or ["input_ids", "attention_mask", "token_type_ids"]
    max_length = int(manifest.get("max_length") or 512)
    items = calibration_batches(folder, pairs, names, max_length=max_length,
                                pad_id=int(manifest.get("pad_token_id", 0)), batch_size=1)
    model = ov.Core().read_model(str(src or folder / FP32_XML))
    keep = _kept_fp32_patterns(model, opts)
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    # NNCF draws progress bars with rich on sys.stdout/sys.stderr; library code never prints, so both are swallowed
    with quiet("nncf", "root"), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        quantized = nncf.quantize(
            model,
            nncf.Dataset(items),
            preset=nncf.QuantizationPreset(opts["preset"]),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=min(int(opts["subset_size"]), len(items)),
            fast_bias_correction=bool(opts["fast_bias_correction"]),
            ignored_scope=nncf.IgnoredScope(patterns=keep, validate=False) if keep else None,
            advanced_parameters=AdvancedQuantizationParameters(
                smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=float(opts["smooth_quant_alpha"]))
            ),
        )
    ov.save_model(quantized, str(folder / INT8_XML), compress_to_fp16=False)
    used = {k: list(v) if k == "keep_fp32" else v for k, v in opts.items()}
    return {"method": "nncf static (post-training)", **used, "kept_fp32_patterns": keep,
            "calibration_pairs": len(pairs), "calibration_digest": calibration_digest(pairs)}


# ONEDNN_MAX_CPU_ISA values below AVX512_CORE_BF16: oneDNN has no bf16 kernel under them, and OpenVINO (which
# checks the CPU, not the mask) would still pick bf16 and run it in reference kernels (measured: 0.06x the reference
# under AVX512_CORE_VNNI).
_NO_BF16_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
# ... and those under which it has none for int8-dynamic's run-time activation quantization: OpenVINO (again checking
# the CPU) plans it and fails to create the layer (measured: AVX2 and SSE41 fail, AVX2_VNNI and AVX512_CORE run), so
# those IRs run with int8 weights and fp32 arithmetic instead (group size 0).
_NO_DYNAMIC_INT8_ISAS = ("SSE41", "AVX", "AVX2")


def compile_ir(path: str | Path, *, threads: int, streams: int = 1, precision: str = "f32") -> Any:
    """An OpenVINO CPU compiled model of ``path``: ``threads`` in all over ``streams`` streams, inference precision
    ``precision`` ("f32" or "bf16"; OpenVINO picks bf16 on its own on AMX / AVX-512-BF16 CPUs, so it is always set).
    "bf16" falls back to "f32" where the CPU has no bf16 arithmetic or ``ONEDNN_MAX_CPU_ISA`` masks it; under an AVX2
    (or older) mask, int8-dynamic IRs keep their activations fp32."""
    ov = require("openvino", "openvino", "The OpenVINO cross-encoder")
    core = ov.Core()
    if precision == "bf16" and not bf16_available(core):
        precision = "f32"
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": int(threads),
              "NUM_STREAMS": int(streams)}
    if _isa_mask() in _NO_DYNAMIC_INT8_ISAS:
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0  # overrides the group size an int8-dynamic IR carries
    return core.compile_model(str(path), "CPU", config)


def bf16_available(core: Any) -> bool:
    """Whether bf16 arithmetic is native here: OpenVINO sees it on the CPU and no oneDNN ISA mask hides it."""
    if _isa_mask() in _NO_BF16_ISAS:
        return False
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _isa_mask() -> str:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()


def ir_max_diff(path: Path, sample: Mapping[str, np.ndarray], expected: np.ndarray) -> float:
    """Largest absolute difference between the IR's fp32 logits and ``expected`` (torch's) on ``sample``."""
    compiled = compile_ir(path, threads=1)
    wanted = {i.get_any_name() for i in compiled.inputs}
    got = compiled.create_infer_request().infer({k: v for k, v in sample.items() if k in wanted})
    return float(np.abs(np.asarray(got[compiled.outputs[0]], dtype=np.float64) - expected).max())


def write_ov_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    (folder / OV_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_ov_manifest(folder: str | Path) -> dict[str, Any]:
    """The folder's ``rankwise_openvino.json``, or ``{}`` for IR folders written by other tools (optimum-intel)."""
    return read_json(Path(folder) / OV_MANIFEST)


# --- steps -----------------------------------------------------------------------------------------------------


def _use_sdpa(model: Any) -> str:
    """Switch the loaded (eager) model to SDPA attention when transformers can; returns the attention used."""
    try:
        model.set_attn_implementation("sdpa")
        return "sdpa"
    except (AttributeError, ValueError, ImportError):  # older transformers, or a model without SDPA support
        return "eager"


def _convert_checked(torch: Any, ov: Any, model: Any, tokenizer: Any, names: list[str], path: Path,
                     sample: dict[str, np.ndarray], expected: np.ndarray, first_token: bool) -> dict[str, Any]:
    """Convert (first-token last layer when asked and exact), save, and check against torch's logits."""
    tolerance = CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max()))
    info: dict[str, Any] = {"converter": f"openvino.convert_model (openvino {ov.__version__})",
                            "first_token_last_layer": False}
    if first_token:
        with first_token_last_layer(model) as applies:
            if applies:
                _convert(torch, ov, model, tokenizer, names, path)
        if applies and ir_max_diff(path, sample, expected) <= tolerance:
            info["first_token_last_layer"] = True
            return info
        info["first_token_skipped"] = "not a BERT-family head" if not applies else "did not reproduce torch"
    _convert(torch, ov, model, tokenizer, names, path)
    diff = ir_max_diff(path, sample, expected)
    if diff > tolerance:
        raise InvalidInputError(
            f"the OpenVINO conversion does not reproduce torch (max abs logit difference {diff:.3g}); use the torch "
            "(backend='cross-encoder') or ONNX (backend='onnx') backend for this model."
        )
    return info


def _convert(torch: Any, ov: Any, model: Any, tokenizer: Any, names: list[str], path: Path) -> None:
    """``openvino.convert_model`` of the logits, inputs named and made dynamic ([batch, sequence])."""
    example = sample_batch(tokenizer, names, n=2)
    wrapper = _logits_wrapper(torch, model, names)
    with quiet("torch", "openvino"), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript tracer notes about the mask's Python conditionals
        converted = ov.convert_model(wrapper, example_input=tuple(torch.from_numpy(example[n]) for n in names))
    for port, name in zip(converted.inputs, names):
        port.get_tensor().set_names({name})
    converted.outputs[0].get_tensor().set_names({"logits"})
    converted.reshape({name: ov.PartialShape([-1, -1]) for name in names})
    ov.save_model(converted, str(path), compress_to_fp16=False)


def _kept_fp32_patterns(model: Any, opts: Mapping[str, Any]) -> list[str]:
    """NNCF ignored-scope patterns: the caller's ``keep_fp32`` plus, if asked, the last encoder layer's nodes."""
    keep = list(opts["keep_fp32"])
    if opts["last_layer_fp32"]:
        layers = [int(m.group(1)) for op in model.get_ops() if (m := re.search(r"layer\.(\d+)\.", op.get_friendly_name()))]
        if layers:
            keep.append(rf".*\blayer\.{max(layers)}\..*")
    return keep


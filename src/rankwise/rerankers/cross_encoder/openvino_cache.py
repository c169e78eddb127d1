"""On-disk cache of OpenVINO exports, keyed like the ONNX cache (:mod:`rankwise.rerankers.cross_encoder.cache`).

An entry is a complete :func:`~rankwise.rerankers.cross_encoder.openvino_export.export_openvino` folder named
``<model-slug>-<key>``; the key hashes the source's identity (a local folder's path, file sizes and mtimes and
``config.json`` hash; a hub name's revision and resolved commit), the export options (quantize, first-token, the int8
options and the calibration pairs' digest), the export format and the openvino / nncf versions. Writes are atomic
(private temporary folder, one rename; the first of two racing processes wins), as in the ONNX cache.

The cache lives in ``$RANKWISE_CACHE/openvino`` when ``RANKWISE_CACHE`` is set, else ``~/.cache/rankwise/openvino``::

    >>> from rankwise.rerankers.cross_encoder.openvino_cache import cached_openvino_folder      # doctest: +SKIP
    >>> folder = cached_openvino_folder("cross-encoder/ms-marco-MiniLM-L-6-v2", quantize="int8")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.cache import (
    _cached,
    _slug,
    default_cache_dir,
    folder_fingerprint,
    hub_fingerprint,
)
from rankwise.rerankers.cross_encoder.calibration import (
    CalibrationPairs,
    calibration_digest,
)
from rankwise.rerankers.cross_encoder.engine import read_json, resolve_max_length
from rankwise.rerankers.cross_encoder.export import copy_tokenizer_files
from rankwise.rerankers.cross_encoder.openvino_export import (
    FP32_XML,
    IR_FILES,
    OV_FORMAT,
    OV_MANIFEST,
    check_ov_quantize,
    export_openvino,
    ov_calibration,
    ov_quantize_options,
    ov_versions,
    quantize_ir,
    read_ov_manifest,
    write_ov_manifest,
)


def default_openvino_cache_dir() -> Path:
    """``$RANKWISE_CACHE/openvino`` if ``RANKWISE_CACHE`` is set, else ``~/.cache/rankwise/openvino``."""
    return default_cache_dir().parent / "openvino"


def openvino_cache_key(fingerprint: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """Short stable hash of the source, the options, the export format and the openvino / nncf versions."""
    versions = ov_versions()
    payload = {"source": fingerprint, "options": options, "format": OV_FORMAT,
               "openvino": versions["openvino"], "nncf": versions["nncf"]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_openvino_folder(
    model: str | Path,
    *,
    quantize: str | None = None,
    calibration: CalibrationPairs | None = None,
    int8: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    first_token: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """The cached OpenVINO export of a Hugging Face cross-encoder, exporting it (with torch) on the first call.

    Example:
        >>> cached_openvino_folder("./my-cross-encoder", quantize="int8")  # doctest: +SKIP
        PosixPath('/home/me/.cache/rankwise/openvino/my-cross-encoder-9ab2...')
    """
    check_ov_quantize(quantize)
    pairs = ov_calibration(quantize, calibration)
    local = Path(model).expanduser()
    fingerprint = folder_fingerprint(local) if local.is_dir() else hub_fingerprint(str(model), revision)
    options = {"quantize": quantize, "first_token": first_token, "int8": ov_quantize_options(quantize, int8),
               "calibration": calibration_digest(pairs) if pairs else None}
    return _cached(
        _slug(local.resolve().name if local.is_dir() else str(model)),
        openvino_cache_key(fingerprint, options),
        cache_dir,
        lambda tmp: export_openvino(model, tmp, quantize=quantize, calibration=pairs, int8=int8,
                                    first_token=first_token, revision=revision, trust_remote_code=trust_remote_code),
        manifest=OV_MANIFEST,
        default_root=default_openvino_cache_dir(),
    )


def cached_openvino_int8_folder(
    folder: str | Path,
    *,
    quantize: str = "int8",
    calibration: CalibrationPairs | None = None,
    int8: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """Int8 of an exported folder's fp32 IR, cached (needs openvino and nncf, not torch): NNCF static int8
    (``quantize="int8"``, calibrated) or int8 weights (``"int8-dynamic"``).

    The entry holds the int8 IR (``openvino_model_int8.xml`` / ``openvino_model_int8_dynamic.xml``) with the source
    folder's tokenizer, config and manifest.
    """
    check_ov_quantize(quantize)
    if quantize is None:
        raise InvalidInputError("cached_openvino_int8_folder needs quantize='int8' or 'int8-dynamic', got None.")
    folder = Path(folder)
    src = folder / FP32_XML
    pairs = ov_calibration(quantize, calibration)
    opts = ov_quantize_options(quantize, int8)
    weights = src.with_suffix(".bin")
    fingerprint = {"ir": str(src.resolve()), "files": [(p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                                       for p in (src, weights) if p.is_file()]}

    def build(tmp: Path) -> Path:
        tmp.mkdir(parents=True)
        copy_tokenizer_files(folder, tmp)
        manifest = read_ov_manifest(folder) or _manifest_from_config(folder)
        write_ov_manifest(tmp, manifest)  # quantize_openvino reads the window and inputs from it
        manifest["quantization"] = quantize_ir(tmp, quantize, pairs, opts, src=src)
        manifest["files"] = {quantize: IR_FILES[quantize]}
        manifest["quantized_from"] = str(src.resolve())
        write_ov_manifest(tmp, manifest)
        return tmp

    # static int8's key is what it was before int8-dynamic existed, so its cache entries stay valid
    options = ({"int8": opts, "calibration": calibration_digest(pairs)} if pairs is not None
               else {"quantize": quantize, "int8": opts})
    return _cached(f"{_slug(folder.resolve().name)}-{quantize}", openvino_cache_key(fingerprint, options), cache_dir,
                   build, manifest=OV_MANIFEST, default_root=default_openvino_cache_dir())


def _manifest_from_config(folder: Path) -> dict[str, Any]:
    """What quantization needs to know of an IR folder written by another tool: its inputs, window and pad id."""
    ov = require("openvino", "openvino", "OpenVINO int8 quantization")
    model = ov.Core().read_model(str(folder / FP32_XML))
    config = read_json(folder / "config.json")
    tokenizer_max = read_json(folder / "tokenizer_config.json").get("model_max_length")
    return {"inputs": [p.get_any_name() for p in model.inputs], "pad_token_id": config.get("pad_token_id") or 0,
            "max_length": resolve_max_length(None, config, tokenizer_max), "source": str(folder)}


"""On-disk cache of ONNX exports, keyed by the source model, safe under concurrent processes.

A cache entry is a complete export folder (see :func:`rankwise.rerankers.cross_encoder.export.export_onnx`) named
``<model-slug>-<key>``, where the key hashes:

* the source: for a local folder its resolved path, the size and modification time of every weight, config and
  tokenizer file, and the SHA-256 of ``config.json``; for a hub name the name, the revision asked for and the commit
  that ``config.json`` resolves to (so a new upload on the hub is a new entry);
* the export options (``optimize``, ``quantize`` and the int8 options; for static int8 the calibration pairs' digest);
* the export format version and the onnxruntime version (fused graphs use onnxruntime's contrib ops).

torch/transformers versions are recorded in each entry's manifest but not keyed, so a machine without torch can
still use an entry made elsewhere with the same onnxruntime.

Writes are atomic: an export goes to a private temporary folder inside the cache and is renamed into place in one
step, so readers never see a half-written entry; when two processes export the same model at once, the first rename
wins and the other discards its copy.

The cache lives in ``$RANKWISE_CACHE/onnx`` when ``RANKWISE_CACHE`` is set, else ``~/.cache/rankwise/onnx``::

    >>> from rankwise.rerankers.cross_encoder.cache import cached_onnx_folder             # doctest: +SKIP
    >>> folder = cached_onnx_folder("cross-encoder/ms-marco-MiniLM-L-6-v2", quantize="int8")  # doctest: +SKIP
    >>> # copy `folder` to a machine without torch; OnnxReranker(folder, quantize="int8") runs it there
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rankwise.rerankers.cross_encoder.calibration import (
    CalibrationPairs,
    calibration_digest,
    check_calibration,
)
from rankwise.rerankers.cross_encoder.export import (
    EXPORT_FORMAT,
    FP32_FILE,
    INT8_FILE,
    MANIFEST,
    STATIC_INT8_FILE,
    check_quantize,
    copy_tokenizer_files,
    export_onnx,
    library_versions,
    quantize_int8,
    quantize_options,
    read_manifest,
    write_manifest,
)

_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".onnx", ".pt")
_STALE_TMP_SECONDS = 24 * 3600


def default_cache_dir() -> Path:
    """``$RANKWISE_CACHE/onnx`` if ``RANKWISE_CACHE`` is set, else ``~/.cache/rankwise/onnx``."""
    root = os.environ.get("RANKWISE_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "rankwise") / "onnx"


def folder_fingerprint(folder: Path) -> dict[str, Any]:
    """Identity of a local model folder: path, (size, mtime) of its model files, hash of ``config.json``."""
    folder = folder.resolve()
    files = sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.iterdir()
        if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES
    )
    config = folder / "config.json"
    digest = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
    return {"path": str(folder), "files": files, "config_sha256": digest}


def hub_fingerprint(name: str, revision: str | None) -> dict[str, Any]:
    """Identity of a hub model: its name, the revision asked for, and the commit ``config.json`` resolves to."""
    try:
        from huggingface_hub import hf_hub_download

        commit: str | None = Path(hf_hub_download(name, "config.json", revision=revision)).parent.name
    except Exception:  # noqa: BLE001 - offline or not on the hub: the export itself will report the real error
        commit = None  # .../snapshots/<commit>/config.json above; unknown here
    return {"hub": name, "revision": revision, "commit": commit}


def cache_key(fingerprint: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """Short stable hash of the source identity, the export options and what the cached graph depends on."""
    versions = library_versions()
    payload = {
        "source": fingerprint,
        "options": options,
        "format": EXPORT_FORMAT,
        "onnxruntime": versions["onnxruntime"],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_onnx_folder(
    model: str | Path,
    *,
    quantize: str | None = None,
    optimize: bool = True,
    cache_dir: str | Path | None = None,
    int8: Mapping[str, Any] | None = None,
    first_token: bool = True,
    revision: str | None = None,
    trust_remote_code: bool = False,
    calibration: CalibrationPairs | None = None,
) -> Path:
    """The cached export folder of a Hugging Face cross-encoder, exporting it on the first call.

    Args:
        model: hub name or local folder of a transformers sequence-classification model.
        quantize: ``None``, ``"int8"`` or ``"int8-static"`` (the entry then holds the fp32 and the int8 graph).
        optimize: fuse the graph (see :func:`rankwise.rerankers.cross_encoder.export.export_onnx`).
        cache_dir: cache root; default :func:`default_cache_dir`.
        int8: overrides of the int8 options (dynamic: :data:`rankwise.rerankers.cross_encoder.export.INT8_OPTIONS`).
        calibration: (query, document) pairs for ``"int8-static"``; their digest is part of the key.
        first_token: see :func:`rankwise.rerankers.cross_encoder.export.first_token_last_layer`.
        revision, trust_remote_code: passed to transformers.

    Example:
        >>> cached_onnx_folder("./my-cross-encoder", quantize="int8")  # doctest: +SKIP
        PosixPath('/home/me/.cache/rankwise/onnx/my-cross-encoder-3f1c...')
    """
    check_quantize(quantize)
    pairs = check_calibration(calibration) if quantize == "int8-static" else None
    local = Path(model).expanduser()
    fingerprint = folder_fingerprint(local) if local.is_dir() else hub_fingerprint(str(model), revision)
    options = {"optimize": optimize, "quantize": quantize, "first_token": first_token,
               "int8": quantize_options(quantize, int8)}
    if pairs is not None:  # only static int8 reads them; other keys stay as they were
        options["calibration"] = calibration_digest(pairs)
    return _cached(
        _slug(local.resolve().name if local.is_dir() else str(model)),
        cache_key(fingerprint, options),
        cache_dir,
        lambda tmp: export_onnx(model, tmp, quantize=quantize, optimize=optimize, int8=int8, first_token=first_token,
                                revision=revision, trust_remote_code=trust_remote_code, calibration=pairs),
    )


def cached_int8_folder(
    folder: str | Path,
    *,
    cache_dir: str | Path | None = None,
    int8: Mapping[str, Any] | None = None,
    quantize: str = "int8",
    calibration: CalibrationPairs | None = None,
) -> Path:
    """Quantize an exported folder's fp32 ``model.onnx`` to int8, cached (needs ``onnx``, not torch).

    The entry holds ``model_int8.onnx`` (``quantize="int8"``, dynamic) or ``model_int8_static.onnx``
    (``"int8-static"``, calibrated on ``calibration``) with the source folder's tokenizer, config and manifest.
    """
    folder = Path(folder)
    src = folder / FP32_FILE
    opts = quantize_options(check_quantize(quantize) or "int8", int8)
    static = quantize == "int8-static"
    pairs = check_calibration(calibration) if static else None
    fingerprint = {"onnx": str(src.resolve()), "size": src.stat().st_size, "mtime": src.stat().st_mtime_ns}
    key_options: dict[str, Any] = {"int8": opts}
    if pairs is not None:
        key_options.update(method="static", calibration=calibration_digest(pairs))

    def build(tmp: Path) -> Path:
        tmp.mkdir(parents=True)
        copy_tokenizer_files(folder, tmp)
        manifest = read_manifest(folder)
        if static:
            from rankwise.rerankers.cross_encoder.onnx_static import quantize_static_int8

            manifest["quantization"] = quantize_static_int8(src, tmp / STATIC_INT8_FILE, tmp, pairs, opts,
                                                            max_length=int(manifest.get("max_length", 512)),
                                                            pad_id=int(manifest.get("pad_token_id", 0)))
            manifest["files"] = {"int8_static": STATIC_INT8_FILE}
        else:
            manifest["quantization"] = quantize_int8(src, tmp / INT8_FILE, opts)
            manifest["files"] = {"int8": INT8_FILE}
        manifest["quantized_from"] = str(src.resolve())
        write_manifest(tmp, manifest)
        return tmp

    suffix = "-int8-static" if static else "-int8"
    return _cached(_slug(folder.resolve().name) + suffix, cache_key(fingerprint, key_options), cache_dir, build)


def _cached(slug: str, key: str, cache_dir: str | Path | None, build: Callable[[Path], Path],
            manifest: str = MANIFEST, default_root: Path | None = None) -> Path:
    """The entry ``<slug>-<key>`` under the cache root, built by ``build(tmp)`` and published on a miss; an entry
    counts as complete once its ``manifest`` file exists (the OpenVINO cache passes its own manifest and root)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else (default_root or default_cache_dir())
    final = root / f"{slug}-{key}"
    if (final / manifest).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(root)
    tmp = root / f".tmp-{slug}-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        build(tmp)
        publish(tmp, final, manifest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def publish(tmp: Path, final: Path, manifest: str = MANIFEST) -> None:
    """Move a finished folder into place atomically; if another process got there first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not (final / manifest).is_file():  # not a lost race: a real error (permissions, a stray file...)
            raise


def _remove_stale_tmp(root: Path) -> None:
    """Delete temporary folders that crashed exports left behind (older than a day)."""
    now = time.time()
    for p in root.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[-60:] or "model"

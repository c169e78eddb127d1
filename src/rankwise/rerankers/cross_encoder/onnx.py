"""Cross-encoder re-ranking with onnxruntime: fused fp32 or int8 graphs, no torch at inference time.

Give it an exported folder (``model.onnx`` and/or ``model_int8.onnx`` + ``tokenizer.json``), and only onnxruntime,
tokenizers and numpy are used::

    >>> from rankwise import OnnxReranker                                          # doctest: +SKIP
    >>> ce = OnnxReranker("minilm-onnx", quantize="int8")                           # doctest: +SKIP
    >>> ce.rank("what is an lstm?", ["LSTMs are recurrent networks.", "CNNs see images."]).top_k(1)  # doctest: +SKIP

or give it a Hugging Face cross-encoder (hub name or folder) and it is exported once, with torch, into the on-disk
cache (:mod:`rankwise.rerankers.cross_encoder.cache`); later constructions load the cached graph without exporting again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.batching import Batch
from rankwise.rerankers.cross_encoder.calibration import CalibrationPairs
from rankwise.rerankers.cross_encoder.engine import (
    CrossEncoderEngine,
    read_json,
    relevance_logit,
    resolve_max_length,
)
from rankwise.rerankers.cross_encoder.export import (
    FP32_FILE,
    INT8_FILE,
    STATIC_INT8_FILE,
    check_quantize,
    read_manifest,
)
from rankwise.rerankers.cross_encoder.pairs import Overflow, load_fast_tokenizer
from rankwise.rerankers.cross_encoder.parallel import ordered_map, resolve_workers

# CPU defaults measured on the SciFact benchmark (docs/onnx.md): batches of ~2,048 tokens (4-5 abstracts) keep the
# attention scores and activations in cache; GPUs (CUDA/TensorRT providers) want large batches.
DEFAULT_BATCH_SIZE = 32
CPU_MAX_TOKENS = 2048
GPU_BATCH_SIZE = 256


class OnnxReranker(CrossEncoderEngine):
    """A cross-encoder run by onnxruntime (CPU by default), fp32 or int8.

    Args:
        model: an exported folder (holding ``model.onnx`` / ``model_int8.onnx``, or ``onnx/model.onnx``, plus
            ``tokenizer.json``), or a Hugging Face cross-encoder (hub name or folder) to export and cache.
        quantize: ``None`` runs the fp32 graph (scores match torch); ``"int8"`` runs the dynamically quantized one
            (faster on CPU, scores shift slightly); ``"int8-static"`` the calibrated static (QDQ) one, calibrated on
            ``calibration`` (measured: slower than dynamic and less faithful on BERT models, docs/onnx.md). An
            exported folder without that graph is quantized once into the cache.
        calibration: (query, document) pairs for ``"int8-static"`` (default: a built-in general set); part of the
            cache key. Ignored by the other ``quantize`` values.
        cache_dir: where exports are cached (default ``$RANKWISE_CACHE/onnx`` or ``~/.cache/rankwise/onnx``).
        threads: CPU threads in all; default all CPUs this process may use.
        workers: batches run at once, each on ``threads // workers`` onnxruntime threads. Default on CPU:
            ``threads`` -- single-threaded batches side by side, each core on its own cache-sized batch with no
            barriers between threads (+11% int8 / +5% fp32 pairs/s on 2 cores, same scores; docs/onnx.md);
            with a GPU provider: 1. ``workers=1`` spreads each batch over all threads, lower latency for a
            request of only a few documents.
        optimize: fuse attention / LayerNorm / GELU when exporting (ignored for an already exported folder).
        file_name: run this ``.onnx`` file of the folder instead of choosing by ``quantize``.
        providers: onnxruntime execution providers (default ``["CPUExecutionProvider"]``).
        spin: let idle onnxruntime threads spin-wait (a little lower latency on an idle machine; on a shared one
            it burns CPU that others need and was slower here, hence off by default).
        int8: overrides of :data:`rankwise.rerankers.cross_encoder.export.INT8_OPTIONS` when quantizing (advanced;
            for ``"int8-static"``: of :data:`rankwise.rerankers.cross_encoder.onnx_static.STATIC_INT8_OPTIONS`).
        batch_size, max_tokens: most pairs and most tokens (pairs x padded length) per batch; default 32 pairs and
            2,048 tokens on CPU (4-5 abstracts: cache-sized), 256 pairs on a GPU provider.
        See :class:`~rankwise.rerankers.cross_encoder.engine.CrossEncoderEngine` for ``max_length``, ``overflow``,
        ``stride``, ``normalize`` and ``fields``.

    Example:
        >>> import rankwise                                                         # doctest: +SKIP
        >>> reranker = rankwise.load("minilm-onnx", backend="onnx", quantize="int8")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path,
        *,
        quantize: str | None = None,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        workers: int | None = None,
        max_length: int | None = None,
        overflow: Overflow = "chunk",
        stride: int | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        normalize: bool = False,
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str | None = None,
        optimize: bool = True,
        file_name: str | None = None,
        providers: Sequence[str] | None = None,
        spin: bool = False,
        int8: Mapping[str, Any] | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        calibration: CalibrationPairs | None = None,
    ) -> None:
        check_quantize(quantize)
        cpu_only = all(p == "CPUExecutionProvider" for p in (providers or ["CPUExecutionProvider"]))
        self.threads, self.workers = resolve_workers(
            threads, workers, default_threads=_available_cpus(), side_by_side=cpu_only
        )
        folder = resolve_folder(model, quantize=quantize, optimize=optimize, cache_dir=cache_dir, int8=int8,
                                revision=revision, trust_remote_code=trust_remote_code, calibration=calibration)
        self.folder = folder
        self.model_path = pick_model_file(folder, quantize, file_name, cache_dir, int8, calibration)
        self.quantize = quantize
        self.session = _make_session(self.model_path, max(1, self.threads // self.workers), providers, spin)
        self._inputs = {i.name: np.int32 if i.type == "tensor(int32)" else np.int64 for i in self.session.get_inputs()}
        self._output = self.session.get_outputs()[0].name
        max_length, pad_id = _max_length_and_pad(folder, max_length)
        on_gpu = any(p.startswith(("CUDA", "Tensorrt", "ROCM")) for p in self.session.get_providers())
        if batch_size is None:
            batch_size = GPU_BATCH_SIZE if on_gpu else DEFAULT_BATCH_SIZE
        if max_tokens is None:
            max_tokens = batch_size * max_length if on_gpu else max(CPU_MAX_TOKENS, max_length)
        super().__init__(
            tokenizer=load_fast_tokenizer(folder),
            name=name or str(model),
            max_length=max_length,
            overflow=overflow,
            stride=stride,
            batch_size=batch_size,
            max_tokens=max_tokens,
            normalize=normalize,
            fields=fields,
            pad_id=pad_id,
        )

    @property
    def input_names(self) -> list[str]:
        """The graph's inputs (``token_type_ids`` only for models that use segment ids)."""
        return list(self._inputs)

    def _run_session(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, relevance logits)`` of one padded batch: one onnxruntime ``InferenceSession.run``."""
        arrays = batch.arrays()
        feed = {k: arrays[k].astype(dtype, copy=False) for k, dtype in self._inputs.items()}
        logits = self.session.run([self._output], feed)[0]
        return batch.rows, relevance_logit(np.asarray(logits, dtype=np.float32))

    def _forward(self, batches: Iterator[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # InferenceSession.run is thread-safe: the workers share one session, each run on its own threads.
        return ordered_map(self._run_session, batches, self.workers, name="rankwise-onnx")


def resolve_folder(
    model: str | Path,
    *,
    quantize: str | None,
    optimize: bool,
    cache_dir: str | Path | None,
    int8: Mapping[str, Any] | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    calibration: CalibrationPairs | None = None,
) -> Path:
    """An exported folder as is; a Hugging Face model through the export cache; a missing path is an error."""
    path = Path(model).expanduser()
    if path.is_dir():
        if _onnx_files(path):
            return path
        if (path / "config.json").is_file():
            from rankwise.rerankers.cross_encoder.cache import cached_onnx_folder

            return cached_onnx_folder(path, quantize=quantize, optimize=optimize, cache_dir=cache_dir, int8=int8,
                                      trust_remote_code=trust_remote_code, calibration=calibration)
        raise InvalidInputError(
            f"folder {str(model)!r} holds neither an ONNX model (model.onnx, model_int8.onnx, onnx/model.onnx) nor a "
            "Hugging Face model (config.json). Export one with rankwise.rerankers.cross_encoder.export.export_onnx(...)."
        )
    if _looks_like_path(str(model)):
        raise InvalidInputError(
            f"no such folder: {str(model)!r}. Give an exported ONNX folder, a Hugging Face model folder, or a hub name "
            "such as 'cross-encoder/ms-marco-MiniLM-L-6-v2'."
        )
    from rankwise.rerankers.cross_encoder.cache import cached_onnx_folder

    return cached_onnx_folder(str(model), quantize=quantize, optimize=optimize, cache_dir=cache_dir, int8=int8,
                              revision=revision, trust_remote_code=trust_remote_code, calibration=calibration)


def pick_model_file(
    folder: Path,
    quantize: str | None,
    file_name: str | None = None,
    cache_dir: str | Path | None = None,
    int8: Mapping[str, Any] | None = None,
    calibration: CalibrationPairs | None = None,
) -> Path:
    """The ``.onnx`` file to run: ``file_name`` if given, else the int8 or fp32 graph (quantizing once if needed)."""
    if file_name is not None:
        path = folder / file_name
        if not path.is_file():
            found = ", ".join(p.name for p in _onnx_files(folder)) or "none"
            raise InvalidInputError(f"file_name {file_name!r} is not in {str(folder)!r} (ONNX files there: {found}).")
        return path
    base = folder if any((folder / f).is_file() for f in (FP32_FILE, INT8_FILE, STATIC_INT8_FILE)) else folder / "onnx"
    if quantize in ("int8", "int8-static"):
        target = INT8_FILE if quantize == "int8" else STATIC_INT8_FILE
        if (base / target).is_file():
            return base / target
        if not (base / FP32_FILE).is_file():
            raise InvalidInputError(f"{str(folder)!r} has no {FP32_FILE} to quantize.")
        from rankwise.rerankers.cross_encoder.cache import cached_int8_folder

        entry = cached_int8_folder(base, cache_dir=cache_dir, int8=int8, quantize=quantize, calibration=calibration)
        return entry / target
    if (base / FP32_FILE).is_file():
        return base / FP32_FILE
    only = INT8_FILE if (base / INT8_FILE).is_file() else STATIC_INT8_FILE
    raise InvalidInputError(
        f"{str(folder)!r} holds only an int8 graph ({only}); pass quantize="
        f"{'int8' if only == INT8_FILE else 'int8-static'!r}, or export fp32 too."
    )


def _make_session(path: Path, threads: int, providers: Sequence[str] | None, spin: bool):
    ort = require("onnxruntime", "onnx", "The ONNX cross-encoder")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), opts, providers=list(providers or ["CPUExecutionProvider"]))


def _max_length_and_pad(folder: Path, requested: int | None) -> tuple[int, int]:
    """``(max_length, pad id)``: the requested length checked against ``config.json``, else the one the export
    recorded in its manifest, else the model's default from ``config.json`` / ``tokenizer_config.json``."""
    manifest = read_manifest(folder)
    config = read_json(folder / "config.json")
    if "max_length" in manifest:
        pad = int(manifest.get("pad_token_id", 0))
        return resolve_max_length(requested, config) if requested is not None else int(manifest["max_length"]), pad
    tokenizer_max = read_json(folder / "tokenizer_config.json").get("model_max_length")
    pad = config.get("pad_token_id")
    return resolve_max_length(requested, config, tokenizer_max), int(pad) if pad is not None else 0


def _onnx_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.onnx"), *folder.glob("onnx/*.onnx")])


def _looks_like_path(name: str) -> bool:
    """Hub names are ``name`` or ``org/name``; anything else that does not exist is a missing folder."""
    return (
        name.startswith((".", "/", "~", "\\"))
        or name.count("/") > 1
        or "\\" in name
        or name.endswith(".onnx")
        or (len(name) > 1 and name[1] == ":")
    )


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)

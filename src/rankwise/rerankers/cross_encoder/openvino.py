"""Cross-encoder re-ranking with OpenVINO on CPU: fp32 IR, int8 (static or int8 weights), bf16 on AMX / AVX-512-BF16.

Give it an exported folder (``openvino_model.xml`` and/or ``openvino_model_int8.xml`` + ``tokenizer.json``; an
optimum-intel export works too) and only openvino, tokenizers and numpy are used::

    >>> from rankwise.rerankers.cross_encoder.openvino import OpenVinoReranker        # doctest: +SKIP
    >>> ce = OpenVinoReranker("minilm-ov", quantize="int8")                            # doctest: +SKIP
    >>> ce.rank("what is an lstm?", ["LSTMs are recurrent networks.", "CNNs see images."]).top_k(1)  # doctest: +SKIP

or give it a Hugging Face cross-encoder (hub name or folder) and it is exported once, with torch, into the on-disk
cache (:mod:`rankwise.rerankers.cross_encoder.openvino_cache`). Pair encoding, chunking, token-budget batches and
max-passage scoring are the shared :class:`~rankwise.rerankers.cross_encoder.engine.CrossEncoderEngine`.

Concurrency: one compiled model serves every caller. An OpenVINO ``InferRequest`` is not thread-safe (it owns its
input and output buffers), so each batch borrows a request from a pool (:class:`_RequestPool`) and returns it when
its logits are copied out: no request is ever used by two threads at once, requests are created only when all are
busy (at most one per batch in flight), and they are reused across calls and callers. An ``AsyncInferQueue`` would
also work but is itself not safe to feed from several callers' threads, and the engine already runs batches from
worker threads (``workers``), so a pool of synchronous requests is the simpler fit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError
from rankwise.rerankers.cross_encoder.batching import Batch
from rankwise.rerankers.cross_encoder.calibration import CalibrationPairs
from rankwise.rerankers.cross_encoder.engine import (
    CrossEncoderEngine,
    read_json,
    relevance_logit,
    resolve_max_length,
)
from rankwise.rerankers.cross_encoder.onnx import (
    CPU_MAX_TOKENS,
    DEFAULT_BATCH_SIZE,
    _available_cpus,
    _looks_like_path,
)
from rankwise.rerankers.cross_encoder.openvino_export import (
    FP32_XML,
    INT8_XML,
    IR_FILES,
    check_ov_quantize,
    compile_ir,
    ov_calibration,
    read_ov_manifest,
)
from rankwise.rerankers.cross_encoder.pairs import Overflow, load_fast_tokenizer
from rankwise.rerankers.cross_encoder.parallel import ordered_map, resolve_workers

PRECISIONS = ("f32", "bf16")


class OpenVinoReranker(CrossEncoderEngine):
    """A cross-encoder run by OpenVINO on CPU, fp32 or int8, computing in f32 or bf16.

    Args:
        model: an exported folder (``openvino_model.xml`` / ``openvino_model_int8.xml`` + ``tokenizer.json``), or a
            Hugging Face cross-encoder (hub name or folder) to export and cache.
        quantize: ``None`` runs the fp32 IR (scores match torch with ``precision="f32"``); ``"int8"`` runs the NNCF
            static int8 IR (calibrated on ``calibration``); ``"int8-dynamic"`` runs int8 weights with activations
            quantized at run time per group of 32 values, no calibration: the int8 that agrees best with fp32
            (:mod:`~rankwise.rerankers.cross_encoder.openvino_weights`). A folder without the IR asked for is
            quantized once into the cache (openvino + nncf, no torch).
        calibration: (query, document) pairs whose activations set static int8's ranges; default a built-in general
            set (:data:`~rankwise.rerankers.cross_encoder.calibration.DEFAULT_CALIBRATION`). A few hundred pairs
            from your own queries and candidates agree best. Part of the cache key. Only for ``quantize="int8"``.
        precision: ``"f32"`` (default: fp32 arithmetic, scores equal torch's) or ``"bf16"`` (bf16 arithmetic on CPUs
            with AMX or AVX-512-BF16, several times faster there, scores move ~1e-4; on other CPUs OpenVINO keeps
            f32). OpenVINO itself would pick bf16 on such CPUs; rankwise always sets it, so nothing changes silently.
        cache_dir: where exports are cached (default ``$RANKWISE_CACHE/openvino`` or ``~/.cache/rankwise/openvino``).
        threads: CPU threads in all; default all CPUs this process may use.
        workers: batches run at once (OpenVINO streams), each on ``threads // workers`` threads; default
            ``threads`` (one single-threaded batch per core, as the ONNX backend); ``workers=1`` spreads each batch
            over every thread (lower latency for a request of a few documents).
        file_name: run this ``.xml`` IR of the folder instead of choosing by ``quantize``.
        int8: overrides of :data:`~rankwise.rerankers.cross_encoder.openvino_export.OV_INT8_OPTIONS` (``"int8"``)
            or :data:`~rankwise.rerankers.cross_encoder.openvino_weights.OV_DYNAMIC_INT8_OPTIONS` (advanced).
        batch_size, max_tokens: most pairs and most tokens per batch; default 32 pairs and 2,048 tokens.
        See :class:`~rankwise.rerankers.cross_encoder.engine.CrossEncoderEngine` for ``max_length``, ``overflow``,
        ``stride``, ``normalize`` and ``fields``.

    Example:
        >>> import rankwise                                                             # doctest: +SKIP
        >>> reranker = rankwise.load("minilm-ov", backend="openvino", quantize="int8")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | Path,
        *,
        quantize: str | None = None,
        calibration: CalibrationPairs | None = None,
        precision: str = "f32",
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
        file_name: str | None = None,
        int8: Mapping[str, Any] | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        check_ov_quantize(quantize)
        ov_calibration(quantize, calibration)  # checked up front: pairs for a method that takes none are an error
        if precision not in PRECISIONS:
            raise InvalidInputError(f"precision must be 'f32' or 'bf16', got {precision!r}.")
        self.threads, self.workers = resolve_workers(threads, workers, default_threads=_available_cpus(),
                                                     side_by_side=True)
        self.folder = resolve_ov_folder(model, quantize=quantize, calibration=calibration, int8=int8,
                                        cache_dir=cache_dir, revision=revision, trust_remote_code=trust_remote_code)
        self.model_path = pick_ir_file(self.folder, quantize, file_name, calibration, int8, cache_dir)
        self.quantize = quantize
        self.compiled = compile_ir(self.model_path, threads=self.threads, streams=self.workers, precision=precision)
        # what OpenVINO really computes in ("f32" or "bf16"): a CPU without bf16 support keeps f32
        self.precision = _precision_name(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._inputs = [port.get_any_name() for port in self.compiled.inputs]
        self._pool = _RequestPool(self.compiled)
        max_length, pad_id = _window(self.folder, self.model_path.parent, max_length)
        batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
        super().__init__(
            tokenizer=load_fast_tokenizer(self.model_path.parent),
            name=name or str(model),
            max_length=max_length,
            overflow=overflow,
            stride=stride,
            batch_size=batch_size,
            max_tokens=max(CPU_MAX_TOKENS, max_length) if max_tokens is None else max_tokens,
            normalize=normalize,
            fields=fields,
            pad_id=pad_id,
        )

    @property
    def input_names(self) -> list[str]:
        """The IR's inputs (``token_type_ids`` only for models that use segment ids)."""
        return list(self._inputs)

    def _run_batch(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, relevance logits)`` of one padded batch, on a request borrowed for this batch only."""
        arrays = batch.arrays()
        feed = {name: arrays[name] for name in self._inputs}
        with self._pool.borrow() as request:
            result = request.infer(feed)
            # copy out before the request goes back: its output buffer is overwritten by the next batch it runs
            logits = np.array(result[self.compiled.outputs[0]], dtype=np.float32)
        return batch.rows, relevance_logit(logits)

    def _forward(self, batches: Iterator[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # InferRequest.infer releases the GIL; each worker thread runs its batch on an OpenVINO stream.
        return ordered_map(self._run_batch, batches, self.workers, name="rankwise-openvino")


class _RequestPool:
    """Infer requests of one compiled model, lent to one batch at a time (an ``InferRequest`` is not thread-safe)."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self.created = 0

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        with self._lock:
            request = self._free.pop() if self._free else None
            if request is None:
                self.created += 1
        if request is None:
            request = self._compiled.create_infer_request()
        try:
            yield request
        finally:
            with self._lock:
                self._free.append(request)


def resolve_ov_folder(
    model: str | Path,
    *,
    quantize: str | None,
    calibration: CalibrationPairs | None,
    int8: Mapping[str, Any] | None,
    cache_dir: str | Path | None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """An exported IR folder as is; a Hugging Face model through the export cache; a missing path is an error."""
    path = Path(model).expanduser()
    if path.is_dir():
        if _ir_files(path):
            return path
        if (path / "config.json").is_file():
            from rankwise.rerankers.cross_encoder.openvino_cache import cached_openvino_folder

            return cached_openvino_folder(path, quantize=quantize, calibration=calibration, int8=int8,
                                          cache_dir=cache_dir, trust_remote_code=trust_remote_code)
        raise InvalidInputError(
            f"folder {str(model)!r} holds neither an OpenVINO IR ({FP32_XML}, {INT8_XML}) nor a Hugging Face model "
            "(config.json). Export one with rankwise.rerankers.cross_encoder.openvino_export.export_openvino(...)."
        )
    if _looks_like_path(str(model)):
        raise InvalidInputError(
            f"no such folder: {str(model)!r}. Give an exported OpenVINO folder, a Hugging Face model folder, or a hub "
            "name such as 'cross-encoder/ms-marco-MiniLM-L-6-v2'."
        )
    from rankwise.rerankers.cross_encoder.openvino_cache import cached_openvino_folder

    return cached_openvino_folder(str(model), quantize=quantize, calibration=calibration, int8=int8,
                                  cache_dir=cache_dir, revision=revision, trust_remote_code=trust_remote_code)


def pick_ir_file(
    folder: Path,
    quantize: str | None,
    file_name: str | None = None,
    calibration: CalibrationPairs | None = None,
    int8: Mapping[str, Any] | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The ``.xml`` IR to run: ``file_name`` if given, else the int8 or fp32 IR (quantizing once if needed)."""
    if file_name is not None:
        path = folder / file_name
        if not path.is_file() or path.suffix != ".xml":
            found = ", ".join(p.name for p in _ir_files(folder)) or "none"
            raise InvalidInputError(f"file_name {file_name!r} is not an IR in {str(folder)!r} (IR files there: {found}).")
        return path
    wanted = IR_FILES[quantize]
    if (folder / wanted).is_file():
        return folder / wanted
    if quantize is not None and (folder / FP32_XML).is_file():
        from rankwise.rerankers.cross_encoder.openvino_cache import cached_openvino_int8_folder

        entry = cached_openvino_int8_folder(folder, quantize=quantize, calibration=calibration, int8=int8,
                                            cache_dir=cache_dir)
        return entry / wanted
    if quantize is not None:
        raise InvalidInputError(f"{str(folder)!r} has no {FP32_XML} to quantize.")
    others = [q for q in IR_FILES if q is not None and (folder / IR_FILES[q]).is_file()]
    if not others:
        found = ", ".join(p.name for p in _ir_files(folder))
        raise InvalidInputError(f"{str(folder)!r} has no {FP32_XML}; pick one of its IRs with file_name= ({found}).")
    raise InvalidInputError(
        f"{str(folder)!r} holds only an int8 IR ({', '.join(IR_FILES[q] for q in others)}); pass "
        f"{' or '.join(f'quantize={q!r}' for q in others)}, or export fp32 too."
    )


def _window(folder: Path, model_dir: Path, requested: int | None) -> tuple[int, int]:
    """``(max_length, pad id)``: the requested length checked against ``config.json``, else the export's, else the
    model's default from ``config.json`` / ``tokenizer_config.json`` (the one rule: ``resolve_max_length``)."""
    manifest = read_ov_manifest(model_dir) or read_ov_manifest(folder)
    config = read_json(model_dir / "config.json") or read_json(folder / "config.json")
    pad = manifest.get("pad_token_id", config.get("pad_token_id"))
    pad = int(pad) if pad is not None else 0
    if requested is None and "max_length" in manifest:
        return int(manifest["max_length"]), pad
    tokenizer_max = read_json(model_dir / "tokenizer_config.json").get("model_max_length")
    return resolve_max_length(requested, config, tokenizer_max), pad


def _precision_name(element_type: Any) -> str:
    """OpenVINO's element type (``<Type: 'bfloat16'>``) as this backend names it ("bf16" / "f32")."""
    name = str(getattr(element_type, "type_name", element_type))
    return "bf16" if "bf16" in name or "bfloat16" in name else "f32" if "f32" in name or "float32" in name else name


def _ir_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.xml"))

"""Cross-encoder re-ranking with PyTorch and transformers (CPU or GPU, fp32/fp16/bf16).

Any Hugging Face sequence-classification re-ranker works, by hub name or local folder::

    >>> from rankwise import CrossEncoderReranker                      # doctest: +SKIP
    >>> ce = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")  # doctest: +SKIP
    >>> ce.rank("what is an lstm?", ["LSTMs are recurrent networks.", "CNNs see images."]).top_k(1)  # doctest: +SKIP

On CUDA, padding and host-to-device copies of the next batch run in a producer thread while the GPU works on the
current one (pinned memory, non-blocking copies), so the host side does not starve the GPU.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rankwise._hub import loading
from rankwise.documents import DEFAULT_FIELDS
from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.cross_encoder.batching import Batch
from rankwise.rerankers.cross_encoder.engine import (
    CrossEncoderEngine,
    read_json,
    relevance_logit,
    resolve_max_length,
)
from rankwise.rerankers.cross_encoder.pairs import Overflow, load_fast_tokenizer
from rankwise.rerankers.cross_encoder.parallel import ordered_map, resolve_workers

if TYPE_CHECKING:
    import torch

_DTYPES = ("auto", "float32", "fp32", "float16", "fp16", "bfloat16", "bf16")


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` picks CUDA when a GPU is visible, else CPU."""
    torch = require("torch", "torch", "The torch cross-encoder")
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device={device!r} but torch sees no CUDA GPU; use device='cpu' or 'auto'.")
    return str(device)


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    torch = require("torch", "torch", "The torch cross-encoder")
    if dtype not in _DTYPES:
        raise InvalidInputError(f"dtype must be one of {', '.join(_DTYPES)}; got {dtype!r}.")
    if dtype == "auto":  # bf16 on GPUs that have it (no fp16 overflow), fp32 on CPU (faster there)
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
            "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}[dtype]


def load_model(source: str, dtype: Any, trust_remote_code: bool) -> tuple[Any, Any, Any, Any]:
    """``(model, config, fast tokenizer, tokenizer's model_max_length)`` of a sequence-classification model.

    A local folder's tokenizer comes from its ``tokenizer.json`` (:func:`load_fast_tokenizer`); a hub model's from
    transformers, with its own truncation and padding switched off (rankwise cuts and pads pairs itself).
    """
    transformers = require("transformers", "torch", "The torch cross-encoder")
    with loading(source):  # the same one-line error as the ONNX backend when offline; no progress bars
        config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            source, dtype=dtype, trust_remote_code=trust_remote_code
        )
        if Path(source).is_dir():
            tokenizer_max = read_json(Path(source) / "tokenizer_config.json").get("model_max_length")
            return model, config, load_fast_tokenizer(source), tokenizer_max
        hf_tok = transformers.AutoTokenizer.from_pretrained(source, use_fast=True)
    tokenizer = hf_tok.backend_tokenizer
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return model, config, tokenizer, getattr(hf_tok, "model_max_length", None)


class CrossEncoderReranker(CrossEncoderEngine):
    """A transformers sequence-classification model scoring (query, document) pairs.

    Args:
        model: hub name (``"BAAI/bge-reranker-base"``) or local folder.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"fp32"``, ``"fp16"``, ``"bf16"``.
        max_length: tokens per pair; default the model's window, at most 512 (see
            :func:`~rankwise.rerankers.cross_encoder.engine.resolve_max_length`).
        threads: CPU only: threads in all for the forward passes (default torch's own setting).
        workers: CPU only: batches run at once, each on ``threads // workers`` torch threads set in its own
            worker thread (the caller's torch settings are never touched). Default ``threads``: one
            single-threaded batch per core, +10-15% pairs/s on 2 cores (docs/onnx.md); ``workers=1`` spreads
            each batch over every thread (lower latency for a request of a few documents).
        trust_remote_code: passed to transformers for models with custom code.
        See :class:`~rankwise.rerankers.cross_encoder.engine.CrossEncoderEngine` for the rest.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | None = "auto",
        dtype: str = "auto",
        max_length: int | None = None,
        overflow: Overflow = "chunk",
        stride: int | None = None,
        batch_size: int = 32,
        max_tokens: int | None = None,
        normalize: bool = False,
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str | None = None,
        trust_remote_code: bool = False,
        threads: int | None = None,
        workers: int | None = None,
    ) -> None:
        torch = require("torch", "torch", "The torch cross-encoder")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        source = str(model)
        self.model, config, tokenizer, tokenizer_max = load_model(source, self.dtype, trust_remote_code)
        self.model.to(self.device).eval()
        max_length = resolve_max_length(max_length, config, tokenizer_max)
        on_gpu = self.device.startswith("cuda")
        self.threads, self.workers = resolve_workers(
            threads, workers, default_threads=torch.get_num_threads(), side_by_side=True
        )
        if on_gpu:  # one stream of batches feeds the GPU (_forward_prefetched)
            self.workers = 1
        if max_tokens is None:  # GPUs want large batches; on CPU cache-sized ones win (docs/onnx.md lever log):
            # ~2k tokens for a single-threaded batch per core, ~4k for one batch spread over every core
            cpu_tokens = 2048 if self.workers > 1 else 4096
            max_tokens = max(cpu_tokens, max_length) if not on_gpu else max(batch_size, 256) * max_length
        pad_id = config.pad_token_id if config.pad_token_id is not None else 0
        super().__init__(
            tokenizer=tokenizer,
            name=name or source,
            max_length=max_length,
            overflow=overflow,
            stride=stride,
            batch_size=batch_size if not on_gpu else max(batch_size, 256),
            max_tokens=max_tokens,
            normalize=normalize,
            fields=fields,
            pad_id=pad_id,
            pad_to_multiple_of=8 if on_gpu else None,
        )
        self._uses_token_types = getattr(config, "type_vocab_size", 0) > 1
        self._torch = torch

    def _to_tensors(self, batch: Batch, pin: bool) -> dict[str, Any]:
        torch = self._torch
        arrays = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if self._uses_token_types:
            arrays["token_type_ids"] = batch.token_type_ids
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        if pin:
            tensors = {k: v.pin_memory() for k, v in tensors.items()}
        return {k: v.to(self.device, non_blocking=pin) for k, v in tensors.items()}

    def _model_logits(self, inputs: dict[str, Any]) -> np.ndarray:
        """One relevance logit per row of a batch already on the device (the model's forward pass)."""
        with self._torch.inference_mode():
            logits = self.model(**inputs).logits
        return relevance_logit(logits.float().cpu().numpy())

    def _forward(self, batches: Iterator[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.device.startswith("cuda"):
            yield from self._forward_prefetched(batches)
        else:
            # torch's thread count is per thread: set it in worker threads, never in the caller's; when the
            # caller's already fits (one worker), the batches simply run inline.
            per_worker = max(1, self.threads // self.workers)
            inline = self.workers == 1 and per_worker == self._torch.get_num_threads()
            yield from ordered_map(
                lambda batch: (batch.rows, self._model_logits(self._to_tensors(batch, pin=False))),
                batches,
                self.workers,
                initializer=None if inline else lambda: self._torch.set_num_threads(per_worker),
                name="rankwise-torch",
            )

    def _forward_prefetched(self, batches: Iterator[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Pad, pin and copy the next batches in a thread while the GPU runs the current one."""
        ready: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in batches:
                    if stop.is_set():
                        return
                    ready.put((batch.rows, self._to_tensors(batch, pin=True)))
            except BaseException as exc:  # noqa: BLE001 - surfaced in the consumer, never lost in the thread
                ready.put(exc)
                return
            ready.put(None)

        worker = threading.Thread(target=produce, name="rankwise-prefetch", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                rows, inputs = item
                yield rows, self._model_logits(inputs)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.01)

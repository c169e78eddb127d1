"""What the torch and ONNX cross-encoders share: pair encoding, batching, max-passage aggregation, normalisation.

A subclass only says how to run one padded batch through its model (:meth:`CrossEncoderEngine._forward`).

Each distinct (query, text) pair of a call is scored once and its score given to every place it occurs, so identical
documents get identical scores (a pair's logit otherwise varies by ~1e-7 with the batch it lands in and its padding).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from rankwise._validation import DEFAULT_FIELDS, check_fields, check_query, document_text, model_text
from rankwise.batching import Batch, iter_batches, max_per_owner
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.tokenization import Overflow, PairEncoder
from rankwise.types import Document


class CrossEncoderEngine(Reranker):
    """Scores (query, document) pairs jointly with a sequence-classification model.

    Args shared by every cross-encoder backend:
        max_length: tokens per (query, passage) pair; capped by the model's position embeddings.
        overflow: ``"chunk"`` scores long documents by their best overlapping passage; ``"truncate"`` cuts them.
        stride: tokens of overlap between passages (default ``max_length // 8``).
        batch_size: most pairs in one forward pass.
        max_tokens: token budget of one batch (``pairs * padded_length``); keeps memory flat.
        normalize: apply a sigmoid so scores fall in (0, 1); raw logits otherwise.
        fields: which document fields form the text (``("title", "text")`` by default; metadata keys allowed).
    """

    def __init__(
        self,
        *,
        tokenizer,  # noqa: ANN001 - tokenizers.Tokenizer
        name: str,
        max_length: int = 512,
        overflow: Overflow = "chunk",
        stride: int | None = None,
        batch_size: int = 32,
        max_tokens: int = 16_384,
        normalize: bool = False,
        fields: Sequence[str] = DEFAULT_FIELDS,
        pad_id: int = 0,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        for label, value in (("batch_size", batch_size), ("max_tokens", max_tokens), ("max_length", max_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{label} must be >= 1 (an int), got {value!r}.")
        if max_tokens < max_length:
            raise InvalidInputError(
                f"max_tokens={max_tokens} is below max_length={max_length}; a full-length pair would not fit."
            )
        self.name = name
        self.encoder = PairEncoder(tokenizer, max_length=max_length, overflow=overflow, stride=stride)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.normalize = normalize
        self.fields = check_fields(fields)
        self.pad_id = pad_id
        self.pad_to_multiple_of = pad_to_multiple_of

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    @abstractmethod
    def _forward(self, batches: Iterator[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, logits)`` for each batch: one relevance logit per row, as float32/float64."""

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        texts = [document_text(d, self.fields) for d in documents]
        return self._score_groups([(query, texts)], progress)[0].tolist()

    def score_groups(
        self, groups: Sequence[tuple[str, Sequence[str]]], *, progress: ProgressCallback | None = None
    ) -> list[np.ndarray]:
        """Score several ``(query, texts)`` groups in shared, length-sorted batches (the server's dynamic batcher).

        Each group's scores equal ``score(query, texts)`` for plain-string texts (up to float rounding from different
        padding): pairs are encoded per group, batched together, then aggregated (max-passage) and normalised per
        group. Texts are used as given (no ``fields`` lookup; lone surrogates become U+FFFD as in ``score``). The
        same (query, text) pair is scored once however often it occurs, so equal pairs get equal scores. Nothing on
        the instance changes.

        Args:
            groups: ``(query, texts)`` pairs; each query must be a non-empty string, each text a string.
            progress: optional ``progress(done, total)`` in passages, after each batch; an exception it raises
                aborts the call and propagates (a server stops a request whose deadline passed this way).

        Example:
            >>> a, b = ce.score_groups([("what is an lstm?", ["LSTMs gate memory.", "CNNs see."]),  # doctest: +SKIP
            ...                         ("image models", ["CNNs see."])])
            >>> len(a), len(b)  # doctest: +SKIP
            (2, 1)
        """
        checked = []
        for g, (query, texts) in enumerate(groups):
            texts = list(texts)
            bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
            if bad is not None:
                raise InvalidInputError(
                    f"score_groups: group {g}, text {bad} must be a str, got {type(texts[bad]).__name__}."
                )
            checked.append((model_text(check_query(query)), [model_text(t) for t in texts]))
        return self._score_groups(checked, progress)

    def _score_groups(
        self, groups: Sequence[tuple[str, list[str]]], progress: ProgressCallback | None
    ) -> list[np.ndarray]:
        """Encode each distinct (query, text) once, run all pairs in shared length-sorted batches, scatter back."""
        unique: dict[str, dict[str, int]] = {}  # query -> {text: slot among that query's distinct texts}
        for query, texts in groups:
            slots = unique.setdefault(query, {})
            for text in texts:
                slots.setdefault(text, len(slots))
        encoded = [self.encoder.encode(query, list(slots)) for query, slots in unique.items()]
        input_ids = [ids for pairs in encoded for ids in pairs.input_ids]
        token_types = [types for pairs in encoded for types in pairs.token_type_ids]
        passage_scores = np.empty(len(input_ids), dtype=np.float64)
        batches = iter_batches(
            input_ids, token_types, self.pad_id, self.batch_size, self.max_tokens, self.pad_to_multiple_of
        )
        done = 0
        for rows, logits in self._forward(batches):
            passage_scores[rows] = logits
            done += len(rows)
            if progress is not None:
                progress(done, len(passage_scores))
        per_query: dict[str, np.ndarray] = {}
        start = 0
        for query, pairs in zip(unique, encoded):
            end = start + len(pairs.input_ids)
            scores = max_per_owner(passage_scores[start:end], pairs.owners, pairs.n_documents)
            per_query[query] = np.exp(-np.logaddexp(0.0, -scores)) if self.normalize else scores  # sigmoid, no overflow
            start = end
        return [
            per_query[query][np.fromiter((unique[query][t] for t in texts), dtype=np.int64, count=len(texts))]
            for query, texts in groups
        ]


def relevance_logit(logits: np.ndarray) -> np.ndarray:
    """One relevance score per row from a classification head's logits.

    One label: the logit itself (ms-marco, bge rerankers). Two labels: the log-odds of "relevant" (label 1) over
    "not relevant" (label 0), which is what a softmax head means.
    """
    if logits.ndim == 1:
        return logits
    if logits.shape[1] == 1:
        return logits[:, 0]
    if logits.shape[1] == 2:
        return logits[:, 1] - logits[:, 0]
    raise InvalidInputError(
        f"the model has {logits.shape[1]} output labels; a re-ranker needs 1 (a relevance logit) or 2 "
        "(not relevant / relevant). Is this a re-ranking model?"
    )

"""What the torch and ONNX cross-encoders share: pair encoding, batching, max-passage aggregation, normalisation,
and the model's window (:func:`resolve_max_length`).

A subclass only says how to run one padded batch through its model (:meth:`CrossEncoderEngine._forward`).

Each distinct (query, text) pair of a call is scored once and its score given to every place it occurs, so identical
documents get identical scores (a pair's logit otherwise varies by ~1e-7 with the batch it lands in and its padding).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rankwise._validation import check_fields, check_query
from rankwise.documents import DEFAULT_FIELDS, DocumentLike, document_text, model_text, to_documents
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker, TokenWindow
from rankwise.rerankers.cross_encoder.batching import Batch, iter_batches, max_per_owner
from rankwise.rerankers.cross_encoder.pairs import Overflow, PairEncoder
from rankwise.types import Document

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DEFAULT_MAX_LENGTH_CAP = 512
"""The longest default window: longer pairs cost quadratic attention for little gain on passages."""

NO_TOKENIZER_LIMIT = 100_000
"""A tokenizer ``model_max_length`` at or above this means "no limit set" (transformers writes ``int(1e30)``)."""

POSITION_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert")
"""Model types whose position table starts at ``padding_idx + 1``: two of its rows are never a token's position."""


class CrossEncoderEngine(Reranker):
    """Scores (query, document) pairs jointly with a sequence-classification model.

    Args shared by every cross-encoder backend:
        max_length: tokens per (query, passage) pair; the backends default it and check it against the model's
            position table with :func:`resolve_max_length`.
        overflow: ``"chunk"`` scores long documents by their best overlapping passage; ``"truncate"`` cuts them.
        stride: tokens of overlap between passages (default ``max_length // 8``).
        batch_size: most pairs in one forward pass.
        max_tokens: token budget of one batch (``pairs * padded_length``); keeps memory flat.
        normalize: apply a sigmoid so scores fall in (0, 1); raw logits otherwise.
        fields: which document fields form the text (``("title", "text")`` by default; metadata keys allowed).
    """

    independent_scores: ClassVar[bool] = True  # a pair's score never depends on the other candidates

    def __init__(
        self,
        *,
        tokenizer: Tokenizer,
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

    @property
    def token_window(self) -> TokenWindow:
        """The tokenizer and window the server cuts and counts text with (the pair encoder's own, and its cache)."""
        encoder = self.encoder
        return TokenWindow(
            tokenizer=encoder.tokenizer,
            max_length=encoder.max_length,
            n_special=encoder.template.n_special,
            max_query_tokens=encoder.max_query_tokens,
            token_ids=encoder.document_ids,
        )

    @abstractmethod
    def _forward(self, batches: Iterator[Batch]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, logits)`` for each batch: one relevance logit per row, as float32/float64."""

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        texts = [document_text(d, self.fields) for d in documents]
        return self._score_groups([(query, texts)], progress)[0].tolist()

    def score_groups(
        self,
        groups: Sequence[tuple[str, Sequence[DocumentLike]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[np.ndarray]:
        """Score several ``(query, documents)`` groups in shared, length-sorted batches (the server's dynamic batcher).

        Each group's scores equal ``score(query, documents)`` (up to float rounding from different padding): each
        document's text is read by ``fields`` as in ``score``, pairs are encoded per group, batched together, then
        aggregated (max-passage) and normalised per group. The same (query, text) pair is scored once however often
        it occurs, so equal pairs get equal scores. Nothing on the instance changes.

        Args:
            groups: ``(query, documents)`` pairs; each query a non-empty string, each document a string, a dict with
                ``text`` or a :class:`~rankwise.types.Document`.
            progress: optional ``progress(done, total)`` in passages, after each batch; an exception it raises
                aborts the call and propagates (a server stops a request whose deadline passed this way).

        Example:
            >>> a, b = ce.score_groups([("what is an lstm?", ["LSTMs gate memory.", "CNNs see."]),  # doctest: +SKIP
            ...                         ("image models", ["CNNs see."])])
            >>> len(a), len(b)  # doctest: +SKIP
            (2, 1)
        """
        checked = []
        for g, (query, documents) in enumerate(groups):
            try:
                docs = to_documents(documents)
            except InvalidInputError as exc:  # say which group: a step holds several requests
                raise InvalidInputError(f"score_groups: group {g}: {exc}") from None
            checked.append((model_text(check_query(query)), [document_text(d, self.fields) for d in docs]))
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


def resolve_max_length(
    requested: int | None,
    config: Mapping[str, Any] | Any,
    tokenizer_max: Any = None,
    cap: int = DEFAULT_MAX_LENGTH_CAP,
) -> int:
    """The tokens per (query, passage) pair a cross-encoder uses: the one rule of the torch, ONNX and export code.

    Unset (``requested=None``): the tokenizer's own limit when it sets one, else the model's position table (less
    the RoBERTa-family offset, see :func:`position_limit`), at most ``cap``. Requested: used as given, unless the
    position table cannot place that many tokens -- an error now rather than a tensor-shape error in the middle of
    a call on the first long document.

    Args:
        requested: the caller's ``max_length``, or None for the model's default.
        config: the model's config, a transformers ``PretrainedConfig`` or the dict of its ``config.json``.
        tokenizer_max: the tokenizer's ``model_max_length`` (``None``, or a huge number, when it sets none).
        cap: the longest default.

    Example:
        >>> bert, xlmr = {"model_type": "bert", "max_position_embeddings": 512}, {"model_type": "xlm-roberta",
        ...                                                                       "max_position_embeddings": 514}
        >>> resolve_max_length(None, bert), resolve_max_length(None, xlmr, cap=1024)
        (512, 512)
        >>> resolve_max_length(None, bert, tokenizer_max=256), resolve_max_length(128, bert)
        (256, 128)
        >>> resolve_max_length(1024, bert)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rankwise.errors.InvalidInputError: max_length=1024 is above what this model can read (512 tokens: ...
    """
    limit = position_limit(config)
    if requested is None:
        if _sets_a_limit(tokenizer_max):
            return int(min(cap, tokenizer_max))
        return int(min(cap, cap if limit is None else limit))
    if limit is not None and isinstance(requested, int) and not isinstance(requested, bool) and requested > limit:
        raise InvalidInputError(
            f"max_length={requested} is above what this model can read ({limit} tokens: max_position_embeddings="
            f"{_config_value(config, 'max_position_embeddings')}); pass max_length={limit} or less, or leave it "
            "unset for the model's default."
        )
    return requested


def position_limit(config: Mapping[str, Any] | Any) -> int | None:
    """Tokens the model's position table can place: ``max_position_embeddings``, less 2 for the RoBERTa family
    (its table starts after the padding index); ``None`` when the config does not say.

    Example:
        >>> position_limit({"model_type": "xlm-roberta", "max_position_embeddings": 514})
        512
    """
    positions = _config_value(config, "max_position_embeddings")
    if isinstance(positions, bool) or not isinstance(positions, int):
        return None
    offset = 2 if _config_value(config, "model_type") in POSITION_OFFSET_MODELS else 0
    return positions - offset


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file of a model folder (``config.json``, ``tokenizer_config.json``); ``{}`` when absent."""
    return json.loads(path.read_text()) if path.is_file() else {}


def _sets_a_limit(tokenizer_max: Any) -> bool:
    number = isinstance(tokenizer_max, (int, float)) and not isinstance(tokenizer_max, bool)
    return number and 0 < tokenizer_max < NO_TOKENIZER_LIMIT


def _config_value(config: Mapping[str, Any] | Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)

"""Scores that arrive with the candidates: rank by a number in each document's metadata.

A first-stage retriever already scored its candidates (BM25 over the whole corpus, a dense index, a search
engine's relevance score, a product's popularity). Carried in ``Document.metadata``, that score becomes one
more :class:`Reranker`, so fusion can combine it with model scores -- e.g. corpus-level BM25 (true IDF over
millions of documents) instead of BM25 recomputed over the candidate list.

The evaluation harness puts each candidate's first-stage score in ``metadata["first_stage_score"]`` and its
rank in ``metadata["first_stage_rank"]``.

Example:
    >>> docs = [{"text": "a", "first_stage_score": 3.2}, {"text": "b", "first_stage_score": 7.5}]
    >>> MetadataScoreReranker().rank("any query", docs).top_k(1)[0].index
    1
    >>> by_rank = MetadataScoreReranker(field="first_stage_rank", descending=False)
    >>> by_rank.score("q", [{"text": "x", "first_stage_rank": 2}])
    [-2.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from rankwise._validation import preview
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document

FIRST_STAGE_SCORE = "first_stage_score"


class MetadataScoreReranker(Reranker):
    """Scores each document by ``metadata[field]`` (a number); the query is not looked at.

    Args:
        field: the metadata key that holds the score (default ``"first_stage_score"``).
        descending: True = larger is better (scores); False = smaller is better (ranks, distances),
            scored as ``-value``.
        missing: the score of a document without the field; None (default) = such a document is an error.
        name: the model name put on results (default ``"metadata:<field>"``).
    """

    independent_scores: ClassVar[bool] = True  # each document's own number

    def __init__(
        self,
        *,
        field: str = FIRST_STAGE_SCORE,
        descending: bool = True,
        missing: float | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"field must be a non-empty metadata key, got {field!r}.")
        if missing is not None and (
            isinstance(missing, bool) or not isinstance(missing, (int, float)) or not math.isfinite(missing)
        ):
            raise InvalidInputError(f"missing must be a finite number or None, got {missing!r}.")
        self.field = field
        self.descending = descending
        self.missing = None if missing is None else float(missing)
        self.name = name or f"metadata:{field}"

    def _value(self, doc: Document, position: int) -> float:
        raw = doc.metadata.get(self.field)
        if raw is None:
            if self.missing is None:
                raise InvalidInputError(
                    f"document {position} has no metadata[{self.field!r}]; put the score there "
                    f"(e.g. {{'text': ..., {self.field!r}: 12.3}}) "
                    "or pass missing=<score> to score such documents."
                )
            return self.missing
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float range
            value = math.nan
        if not math.isfinite(value):
            raise InvalidInputError(
                f"document {position}: metadata[{self.field!r}] = {preview(raw)} is not a number "
                "(or not a finite one); put a finite number there, e.g. 12.3."
            )
        return value if self.descending else -value

    def _score(
        self, query: str, documents: list[Document], progress: ProgressCallback | None
    ) -> Sequence[float]:
        scores = [self._value(d, i) for i, d in enumerate(documents)]
        if progress is not None:
            progress(len(documents), len(documents))
        return scores

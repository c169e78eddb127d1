"""The features a LambdaMART model ranks by, computed the same way at training and at serving time.

For one query and its candidates, :class:`FeatureExtractor` builds one row per candidate:

* ``score:<member>`` and ``zscore:<member>`` -- each member re-ranker's score, raw and standardised within the
  query. Raw scores of BM25 or a first stage are on a per-query scale (long queries score higher), so the
  per-query z-score is what tells trees "best of this list"; the raw score keeps "how good in absolute terms".
* ``meta:<field>`` -- a number from each candidate's metadata (price, recency, popularity...). **Missing-value
  rule:** a field that is absent, None, not a number (or a string that does not parse as one) or not finite is
  NaN, which LightGBM treats as *missing* and routes down the branch it learnt for missing values; booleans
  count as 0/1. A missing value is never replaced by a made-up number.
* ``text:*`` -- simple lexical evidence: query and document lengths in tokens, title length, the fraction of the
  query's distinct tokens found in the title / in the body, and whether the whole query occurs as a phrase in the
  title / in the body. Tokens are lower-cased ``\\w+`` runs.
* ``history:neighbours``, ``history:popularity`` -- with a judgment history (``history=``): what the training
  judgments of similar queries say about the candidate (:mod:`rankwise.train.lambdamart.history`).

Example:
    >>> from rankwise.rerankers.metadata_score import MetadataScoreReranker
    >>> ex = FeatureExtractor([("first-stage-score", MetadataScoreReranker())], metadata_fields=["price"])
    >>> ex.names[:3]
    ['score:first-stage-score', 'zscore:first-stage-score', 'meta:price']
    >>> rows = ex.matrix("red boots", [{"text": "red boots", "first_stage_score": 2.0, "price": 10},
    ...                                {"text": "shoes", "first_stage_score": 1.0}])
    >>> rows.shape, bool(np.isnan(rows[1, 2]))
    ((2, 10), True)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rankwise.documents import DocumentLike, to_documents
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.rerankers.fusion import zscore
from rankwise.types import Document

if TYPE_CHECKING:
    from rankwise.train.lambdamart.history import HistoryFeatures

TEXT_FEATURES: tuple[str, ...] = (
    "query_tokens",
    "document_tokens",
    "title_tokens",
    "title_coverage",
    "body_coverage",
    "title_phrase",
    "body_phrase",
)
_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+`` runs): the one tokenisation of the text features."""
    return _TOKEN.findall(text.lower())


def numeric_value(raw: object) -> float:
    """A metadata value as a feature: the number, or NaN (= missing) for anything else (see the module docs).

    Example:
        >>> numeric_value(3), numeric_value("2.5"), numeric_value(True), numeric_value("n/a"), numeric_value(None)
        (3.0, 2.5, 1.0, nan, nan)
    """
    if raw is None:
        return math.nan
    try:
        value = float(raw)  # bool -> 0/1, numeric strings -> their number
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _contains_phrase(haystack: list[str], needle: list[str]) -> bool:
    if not needle or len(needle) > len(haystack):
        return False
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def _coverage(query: set[str], words: set[str]) -> float:
    """Share of the query's distinct tokens among ``words`` (0 for a query without tokens)."""
    return len(query & words) / len(query) if query else 0.0


def text_row(query_tokens: list[str], doc: Document) -> list[float]:
    """The :data:`TEXT_FEATURES` of one candidate, in that order."""
    title = tokens(doc.title or "")
    body = tokens(doc.text or "")
    distinct = set(query_tokens)
    return [
        float(len(query_tokens)),
        float(len(body)),
        float(len(title)),
        _coverage(distinct, set(title)),
        _coverage(distinct, set(body)),
        float(_contains_phrase(title, query_tokens)),
        float(_contains_phrase(body, query_tokens)),
    ]


class FeatureExtractor:
    """Feature rows for (query, candidates): member scores, metadata numbers, text features (module docs).

    Args:
        members: ``(label, re-ranker)`` pairs; each label names two features (raw score and per-query z-score).
        metadata_fields: metadata keys read as numbers (missing -> NaN).
        text_features: whether to add the :data:`TEXT_FEATURES`.
        history: judgment-history features (:mod:`rankwise.train.lambdamart.history`), or None.
    """

    def __init__(
        self,
        members: Sequence[tuple[str, Reranker]],
        metadata_fields: Sequence[str] = (),
        text_features: bool = True,
        history: HistoryFeatures | None = None,
    ) -> None:
        self.members = list(members)
        self.history = history
        self.metadata_fields = list(metadata_fields)
        self.text_features = bool(text_features)
        names: list[str] = []
        for label, _ in self.members:
            names += [f"score:{label}", f"zscore:{label}"]
        names += [f"meta:{f}" for f in self.metadata_fields]
        if self.text_features:
            names += [f"text:{t}" for t in TEXT_FEATURES]
        if history is not None:
            from rankwise.train.lambdamart.history import HISTORY_FEATURES

            names += list(HISTORY_FEATURES)
        self.names = names

    def member_columns(
        self, query: str, documents: list[Document], progress: ProgressCallback | None = None
    ) -> list[np.ndarray]:
        """Each member's validated scores for the candidates, in member order."""
        out = []
        for i, (_, member) in enumerate(self.members):
            out.append(np.asarray(member.score(query, documents), dtype=np.float64))
            if progress is not None:
                progress(i + 1, len(self.members))
        return out

    def matrix(
        self,
        query: str,
        docs: Sequence[DocumentLike],
        *,
        member_scores: Sequence[np.ndarray] | None = None,
        progress: ProgressCallback | None = None,
        leave_out: str | None = None,
    ) -> np.ndarray:
        """``(len(docs), len(names))`` float64 features; ``member_scores`` (precomputed, e.g. cached) skips the
        members; ``leave_out``: at training, the query's id, whose own judgments the history features leave out."""
        documents = to_documents(docs)
        columns = list(member_scores) if member_scores is not None else self.member_columns(query, documents, progress)
        parts: list[np.ndarray] = []
        for scores in columns:
            parts += [scores, zscore(scores)]
        for field in self.metadata_fields:
            parts.append(np.array([numeric_value(d.metadata.get(field)) for d in documents], dtype=np.float64))
        if self.text_features:
            query_tokens = tokens(query)
            parts += list(np.array([text_row(query_tokens, d) for d in documents], dtype=np.float64)
                          .reshape(len(documents), len(TEXT_FEATURES)).T)
        if self.history is not None:
            parts += list(self.history.rows(query, [d.id for d in documents], leave_out).T)
        return np.column_stack(parts) if parts else np.zeros((len(documents), 0))

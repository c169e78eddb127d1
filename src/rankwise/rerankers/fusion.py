"""Fusion: several re-rankers' evidence combined into one ranking, itself a :class:`Reranker`.

Lexical (BM25) and semantic (bi-encoder) signals fail on different queries, so combining them beats either alone
on most collections. Three methods:

* ``"zscore"`` -- each member's scores standardised per query (mean 0, std 1), then a weighted sum. Keeps how much
  better the top document is, which rank fusion throws away. The default.
* ``"minmax"`` -- each member's scores scaled to [0, 1] per query, then a weighted sum.
* ``"rrf"`` -- reciprocal-rank fusion, ``sum_i w_i / (k + rank_i)``: needs no score calibration at all.

Example:
    >>> from rankwise import BM25Reranker, FusionReranker
    >>> fused = FusionReranker([BM25Reranker(), BM25Reranker(k1=1.2, b=0.75)], method="rrf")
    >>> fused.rank("lstm memory", ["CNNs see images.", "LSTMs keep long-term memory."]).top_k(1)[0].index
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document

FusionMethod = Literal["zscore", "minmax", "rrf"]
_METHODS = ("zscore", "minmax", "rrf")


def zscore(scores: np.ndarray) -> np.ndarray:
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def minmax(scores: np.ndarray) -> np.ndarray:
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)


def reciprocal_ranks(scores: np.ndarray, k: float) -> np.ndarray:
    """``1 / (k + rank)`` with rank 1 = best; ties broken by input order, as everywhere in rankwise."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    return 1.0 / (k + ranks)


def fuse(member_scores: Sequence[Sequence[float]], weights: Sequence[float], method: str, rrf_k: float = 60.0) -> np.ndarray:
    """Combine per-member score lists (same documents, same order) into one score per document."""
    transform = {"zscore": zscore, "minmax": minmax, "rrf": lambda s: reciprocal_ranks(s, rrf_k)}[method]
    total = np.zeros(len(member_scores[0]), dtype=np.float64)
    for w, scores in zip(weights, member_scores):
        total += w * transform(np.asarray(scores, dtype=np.float64))
    return total


class FusionReranker(Reranker):
    """Scores documents with every member and fuses the scores.

    Args:
        rerankers: the members (any :class:`Reranker`).
        method: ``"zscore"`` (default), ``"minmax"`` or ``"rrf"``.
        weights: one non-negative weight per member (default equal weights).
        rrf_k: the RRF constant (60, from Cormack et al. 2009).
    """

    def __init__(
        self,
        rerankers: Sequence[Reranker],
        *,
        method: FusionMethod = "zscore",
        weights: Sequence[float] | None = None,
        rrf_k: float = 60.0,
        name: str | None = None,
    ) -> None:
        rerankers = list(rerankers)
        if not rerankers or not all(isinstance(r, Reranker) for r in rerankers):
            raise InvalidInputError(f"rerankers must be a non-empty list of Reranker objects, got {rerankers!r}.")
        if method not in _METHODS:
            raise InvalidInputError(f"method must be one of {', '.join(_METHODS)}; got {method!r}.")
        weights = [1.0] * len(rerankers) if weights is None else [float(w) for w in weights]
        if len(weights) != len(rerankers) or any(w < 0 for w in weights) or not any(weights):
            raise InvalidInputError(
                f"weights must be {len(rerankers)} non-negative numbers, not all zero; got {weights!r}."
            )
        if rrf_k <= 0:
            raise InvalidInputError(f"rrf_k must be > 0, got {rrf_k}.")
        self.rerankers = rerankers
        self.method = method
        self.weights = weights
        self.rrf_k = rrf_k
        members = "+".join(r.name for r in rerankers)
        self.name = name or f"{method}({members})"

    def member_scores(self, query: str, documents: list[Document]) -> list[list[float]]:
        """Each member's scores (validated), in member order; useful to inspect or re-weight offline."""
        return [r.score(query, documents) for r in self.rerankers]

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        per_member = self.member_scores(query, documents)
        if progress is not None:
            progress(len(documents), len(documents))
        return fuse(per_member, self.weights, self.method, self.rrf_k).tolist()


def build_fusion(
    members: Sequence[str | Reranker],
    *,
    method: FusionMethod = "zscore",
    weights: Sequence[float] | None = None,
    rrf_k: float = 60.0,
    name: str | None = None,
    member_options: Sequence[dict[str, Any]] | None = None,
) -> FusionReranker:
    """Registry entry point: members may be preset names (``"bm25"``), loaded through :func:`rankwise.load`."""
    from rankwise.registry import load

    options = list(member_options) if member_options is not None else [{}] * len(members)
    if len(options) != len(members):
        raise InvalidInputError(f"member_options must have {len(members)} entries, got {len(options)}.")
    built = [m if isinstance(m, Reranker) else load(m, **o) for m, o in zip(members, options)]
    return FusionReranker(built, method=method, weights=weights, rrf_k=rrf_k, name=name)

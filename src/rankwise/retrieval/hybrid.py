"""First-stage retrieval over an :class:`~rankwise.retrieval.index.Index`: BM25, dense, or both fused.

Hybrid retrieval takes the ``candidates`` best passages of each side, scores the union with *both* (BM25 scores come
for every passage at once; dense scores of the BM25-only candidates from their stored vectors) and fuses them with
:func:`rankwise.rerankers.fusion.fuse` -- the same weighted z-score / min-max / reciprocal-rank fusion the
``FusionReranker`` uses.

Example:
    >>> from rankwise.retrieval import Index                                     # doctest: +SKIP
    >>> index = Index.build(["LSTMs keep long-term memory.", "CNNs see images."])  # doctest: +SKIP
    >>> HybridRetriever(index).retrieve("lstm memory", top_k=1)[0].passage.doc_id  # doctest: +SKIP
    '0'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from rankwise._validation import check_query, check_top_k
from rankwise.errors import InvalidInputError
from rankwise.rerankers.fusion import _METHODS, fuse
from rankwise.retrieval.bm25 import top_k_of
from rankwise.retrieval.passages import Passage

if TYPE_CHECKING:
    from rankwise.retrieval.index import Index

Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "dense")


@dataclass(frozen=True)
class Hit:
    """One retrieved passage.

    Attributes:
        passage: the passage (with its document id, position and metadata).
        score: the retriever's score (the fused score for hybrid retrieval).
        rank: 1 = best.
        scores: every stage's score by name (``"bm25"``, ``"dense"``, ``"hybrid"``).
    """

    passage: Passage
    score: float
    rank: int
    scores: Mapping[str, float] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": self.score, "scores": dict(self.scores), **self.passage.to_dict()}


@runtime_checkable
class Retriever(Protocol):
    """Anything that returns ranked passages for a query (what :class:`~rankwise.rag.pipeline.Pipeline` needs)."""

    def retrieve(self, query: str, top_k: int = 10) -> list[Hit]: ...


class HybridRetriever:
    """Retrieves passages from an index by BM25, dense similarity, or their fusion.

    Args:
        index: the :class:`~rankwise.retrieval.index.Index` to search.
        mode: ``"hybrid"`` (default when the index has both parts), ``"bm25"`` or ``"dense"``.
        method: fusion method, ``"zscore"`` (default), ``"minmax"`` or ``"rrf"``.
        weights: (BM25 weight, dense weight).
        candidates: how deep each side is searched before fusing (at least ``top_k``).
        rrf_k: the reciprocal-rank-fusion constant.
    """

    def __init__(
        self,
        index: Index,
        *,
        mode: Mode | None = None,
        method: str = "zscore",
        weights: Sequence[float] = (1.0, 1.0),
        candidates: int = 100,
        rrf_k: float = 60.0,
    ) -> None:
        mode = mode or index.default_mode
        if mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
        if mode in ("bm25", "hybrid") and index.bm25 is None:
            raise InvalidInputError(f"mode {mode!r} needs a BM25 index, but this index has none; use mode='dense'.")
        if mode in ("dense", "hybrid") and index.dense is None:
            raise InvalidInputError(
                f"mode {mode!r} needs a dense index, but this index was built without one; use mode='bm25' or "
                "rebuild it with dense=True."
            )
        if method not in _METHODS:
            raise InvalidInputError(f"method must be one of {', '.join(_METHODS)}; got {method!r}.")
        weights = tuple(float(w) for w in weights)
        if len(weights) != 2 or any(w < 0 for w in weights) or not any(weights):
            raise InvalidInputError(f"weights must be two non-negative numbers, not both 0; got {weights!r}.")
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise InvalidInputError(f"candidates must be an int >= 1, got {candidates!r}.")
        self.index, self.mode, self.method = index, mode, method
        self.weights, self.candidates, self.rrf_k = weights, candidates, rrf_k

    def retrieve(self, query: str, top_k: int = 10) -> list[Hit]:
        """The ``top_k`` best passages for ``query``, best first."""
        query = check_query(query)
        top_k = check_top_k(top_k) or 10
        if self.mode == "bm25":
            positions, scores = self.index.bm25.search(query, top_k)  # type: ignore[union-attr]
            return self._hits(positions, scores, {"bm25": scores})
        dense = self.index.dense
        assert dense is not None
        vector = dense.embed_query(query)
        if self.mode == "dense":
            positions, scores = dense.search(vector, top_k)
            return self._hits(positions, scores, {"dense": scores})
        return self._hybrid(query, vector, top_k)

    def _hybrid(self, query: str, vector: np.ndarray, top_k: int) -> list[Hit]:
        bm25, dense = self.index.bm25, self.index.dense
        assert bm25 is not None and dense is not None
        depth = max(self.candidates, top_k)
        all_bm25 = bm25.scores(query)
        lexical, _ = top_k_of(all_bm25, depth)
        semantic, _ = dense.search(vector, depth)
        union = np.union1d(lexical, semantic)
        lexical_scores = all_bm25[union]
        dense_scores = dense.scores_for(vector, union)
        fused = fuse([lexical_scores, dense_scores], self.weights, self.method, self.rrf_k).astype(np.float32)
        order, best = top_k_of(fused, top_k)
        return self._hits(
            union[order], best, {"bm25": lexical_scores[order], "dense": dense_scores[order], "hybrid": best}
        )

    def _hits(self, positions: np.ndarray, scores: np.ndarray, stages: dict[str, np.ndarray]) -> list[Hit]:
        passages = self.index.passages
        return [
            Hit(
                passage=passages[int(p)], score=float(s), rank=r,
                scores={name: float(values[i]) for name, values in stages.items()},
            )
            for i, (p, s, r) in enumerate(zip(positions, scores, range(1, len(positions) + 1)))
        ]

    def __repr__(self) -> str:
        return f"HybridRetriever(mode={self.mode!r}, method={self.method!r}, weights={self.weights})"

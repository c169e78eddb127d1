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

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document

FusionMethod = Literal["zscore", "minmax", "rrf"]
_METHODS = ("zscore", "minmax", "rrf")


def _unit_peak(scores: np.ndarray) -> np.ndarray:
    """``scores / max|scores|``: both normalisations are scale-free, and this keeps sums and squares of huge
    first-stage scores (1e300) from overflowing to inf/NaN."""
    peak = float(np.max(np.abs(scores))) if len(scores) else 0.0
    return scores / peak if 0.0 < peak < np.inf else scores


def zscore(scores: np.ndarray) -> np.ndarray:
    scores = _unit_peak(scores)
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def minmax(scores: np.ndarray) -> np.ndarray:
    scores = _unit_peak(scores)
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

    def members(self) -> tuple[Reranker, ...]:
        """The fused re-rankers, in order."""
        return tuple(self.rerankers)

    def member_scores(
        self, query: str, documents: list[Document], *, progress: ProgressCallback | None = None
    ) -> list[list[float]]:
        """Each member's scores (validated), in member order; useful to inspect or re-weight offline.

        ``progress(done, total)`` counts ``len(documents)`` units per member (``total = members x documents``): a
        member's own ``(done, total)`` is mapped onto its share, so one count moves through every member's batches.
        """
        combined = _CombinedProgress(progress, len(documents), len(self.rerankers))
        out = []
        for i, reranker in enumerate(self.rerankers):
            out.append(reranker.score(query, documents, progress=combined.member(i)))
            combined.finished(i)  # members that never report still move the count
        return out

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        per_member = self.member_scores(query, documents, progress=progress)
        return fuse(per_member, self.weights, self.method, self.rrf_k).tolist()


class _CombinedProgress:
    """Maps each member's ``progress(done, total)`` onto one count of ``members x documents`` units, never backwards."""

    def __init__(self, progress: ProgressCallback | None, n_documents: int, n_members: int) -> None:
        self.progress = progress
        self.n = n_documents
        self.total = n_documents * n_members
        self.reported = 0

    def _report(self, done: int) -> None:
        if self.progress is not None and done > self.reported:
            self.reported = done
            self.progress(done, self.total)

    def member(self, i: int) -> ProgressCallback | None:
        if self.progress is None:
            return None

        def report(done: int, total: int) -> None:
            share = self.n if total <= 0 else self.n * min(max(done, 0), total) // total
            self._report(i * self.n + share)

        return report

    def finished(self, i: int) -> None:
        self._report((i + 1) * self.n)


MemberLoader = Callable[..., Reranker]
"""``loader(name, **options) -> Reranker``: builds a member named by a string (the registry passes ``load``)."""
OptionsOf = Callable[[str], "tuple[str, ...] | None"]
"""``options_of(name)``: the options a member named by a string accepts, None for arbitrary keywords (the registry
passes its ``options_of``)."""


def build_fusion(
    members: Sequence[str | Reranker],
    *,
    method: FusionMethod = "zscore",
    weights: Sequence[float] | None = None,
    rrf_k: float = 60.0,
    name: str | None = None,
    member_options: Sequence[dict[str, Any]] | None = None,
    loader: MemberLoader | None = None,
    options_of: OptionsOf | None = None,
    **shared: Any,
) -> FusionReranker:
    """Registry entry point: members may be preset names (``"bm25"``), built with ``loader`` (the registry passes
    :func:`rankwise.load` and its ``options_of``; this module never imports the registry).

    Options for the members: every option that is not the fusion's own (``method``, ``weights``, ``rrf_k``,
    ``name``, ``member_options``) goes to each member *named by a string* whose factory declares it, e.g.
    ``rankwise.load("default", fields=["name", "body"])`` gives ``fields`` to both BM25 and the bi-encoder and
    ``batch_size=64`` to the bi-encoder only. An option that no member declares goes to the members that take
    arbitrary keywords, if any; otherwise it is an :class:`InvalidInputError` listing the valid options.
    ``member_options[i]`` (one dict per member) is given to member ``i`` only, over the shared options.

    Example:
        >>> from rankwise.rerankers.lexical import BM25Reranker
        >>> build_fusion([BM25Reranker(), BM25Reranker(k1=1.2)], method="rrf").name
        'rrf(bm25+bm25)'
    """
    members = list(members)
    options = list(member_options) if member_options is not None else [{}] * len(members)
    if len(options) != len(members):
        raise InvalidInputError(f"member_options must have {len(members)} entries, got {len(options)}.")
    named = [m for m in members if not isinstance(m, Reranker)]
    if named and (loader is None or options_of is None):
        raise InvalidInputError(
            f"members named by a string ({', '.join(map(repr, named))}) need loader= and options_of= (the registry "
            "passes them: build with rankwise.load('fusion', ...) or pass Reranker objects)."
        )
    declared = [options_of(m) if isinstance(m, str) and options_of else () for m in members]  # None: any keyword
    routed = _route_shared_options(shared, declared, members)
    built = [
        m if isinstance(m, Reranker) else loader(m, **{**r, **o})  # type: ignore[misc]
        for m, r, o in zip(members, routed, options)
    ]
    return FusionReranker(built, method=method, weights=weights, rrf_k=rrf_k, name=name)


_OWN_OPTIONS = ("members", "method", "weights", "rrf_k", "name", "member_options")


def _route_shared_options(
    shared: dict[str, Any], declared: list[tuple[str, ...] | None], members: list[Any]
) -> list[dict[str, Any]]:
    """Per member, the shared options it receives (see :func:`build_fusion`)."""
    routed: list[dict[str, Any]] = [{} for _ in members]
    for key, value in shared.items():
        takers = [i for i, names in enumerate(declared) if names is not None and key in names]
        if not takers:
            takers = [i for i, names in enumerate(declared) if names is None]
        if not takers:
            raise InvalidInputError(
                f"fusion of {', '.join(map(str, members))} does not take {key}; valid options are: "
                f"{', '.join(_valid_options(declared))}."
            )
        for i in takers:
            routed[i][key] = value
    return routed


def _valid_options(declared: list[tuple[str, ...] | None]) -> list[str]:
    names = dict.fromkeys(_OWN_OPTIONS)
    for member in declared:
        names.update(dict.fromkeys(member or ()))
    return list(names)


def _accepted_options(
    *, options_of: OptionsOf, members: Sequence[str | Reranker] = (), **_: Any
) -> tuple[str, ...] | None:
    """What ``build_fusion`` with these ``members`` accepts (read by the registry to name the valid options in its
    error); None when a member takes arbitrary keywords."""
    declared = [options_of(m) if isinstance(m, str) else () for m in members]
    return None if any(d is None for d in declared) else tuple(_valid_options(declared))


build_fusion.accepted_options = _accepted_options  # type: ignore[attr-defined]

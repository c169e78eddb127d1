"""Cascades: a cheap stage cuts the list before an expensive one, and the result still ranks every input.

``Cascade([(bm25, 100), (default, 30), (cross_encoder, None)])`` scores every candidate with the first stage, passes
that stage's best 100 to the second, its best 30 to the third. Each stage scores only what the previous one kept, so
the expensive model reads 30 documents instead of all of them.

The ranking. A document *stops* at the deepest stage that scored it. Documents that stopped deeper rank above those
that stopped earlier (they survived more cuts), and documents that stopped at the same stage keep that stage's order
(its score; ties in the order the stage received them, i.e. the previous stage's). So below each cut the earlier
order stays, and every input document comes back, once.

The scores. Raw scores of different stages are not comparable (BM25 ~ 10, a cosine ~ 0.5), so the score a cascade
returns is built from that order: a document that stopped at stage ``s`` (0-based), in position ``p`` (0-based) of the
``m`` documents that stopped there, scores ``s + (m - p) / (m + 1)``, a number in the open interval ``(s, s + 1)``.
Sorting by it gives exactly the cascade's order, so ``score()``, a server's answer and an evaluation all agree with
``rank()``. The raw scores are kept too: every result of :meth:`Cascade.rank` is a :class:`CascadeResult` with
``stage`` and ``stage_scores`` (one raw score per stage that scored the document).

Example:
    >>> from rankwise.rerankers.lexical import BM25Reranker
    >>> from rankwise.rerankers.metadata_score import MetadataScoreReranker
    >>> docs = [{"text": "lstm gates", "first_stage_score": 1.0}, {"text": "cnn filters", "first_stage_score": 3.0},
    ...         {"text": "lstm memory cells", "first_stage_score": 2.0}]
    >>> cascade = Cascade([(MetadataScoreReranker(), 2), (BM25Reranker(), None)])
    >>> results, report = cascade.rank_with_report("lstm memory", docs)
    >>> [(r.index, r.stage) for r in results]
    [(2, 1), (1, 1), (0, 0)]
    >>> [s.scored for s in report.stages]
    [3, 2]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rankwise._validation import check_query, check_top_k, preview
from rankwise.documents import DocumentLike, model_text, to_documents
from rankwise.errors import InvalidInputError
from rankwise.rerankers._cascade_stages import ALL as _ALL
from rankwise.rerankers._cascade_stages import (
    StageLike,
    parse_stage,  # noqa: F401 - re-exported
    parse_stages,
)
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document, RankedResult, RankedResults, rank_order

if TYPE_CHECKING:
    from rankwise.rerankers.remote._base import RemoteCost

MemberLoader = Callable[..., Reranker]
"""``loader(name, **options) -> Reranker`` for stages named by a string (default: :func:`rankwise.load`)."""
OptionsOf = Callable[[str], "tuple[str, ...] | None"]


@dataclass(frozen=True)
class CascadeResult(RankedResult):
    """A :class:`~rankwise.types.RankedResult` that says where the document stopped: ``stage``, the deepest stage
    (0-based) that scored it, and ``stage_scores``, its raw score from each stage that did (``stage + 1``)."""

    stage: int
    stage_scores: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "index": self.index, "score": self.score, "stage": self.stage,
                "stage_scores": list(self.stage_scores), **self.document.to_dict()}


@dataclass(frozen=True)
class StageReport:
    """What one stage did in one call: its re-ranker's ``name``, its ``keep`` (None = all), the documents it
    ``scored`` and ``kept`` (``min(keep, scored)``), the ``seconds`` it took, and for a remote re-ranker the HTTP
    ``remote_calls`` it made and its whole ``cost`` record (documents sent, cache hits, provider units); both are
    None for a local stage."""

    name: str
    keep: int | None
    scored: int
    kept: int
    seconds: float
    remote_calls: int | None = None
    cost: RemoteCost | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.cost
        cost = None if c is None else {"calls": c.calls, "documents": c.documents, "cached": c.cached,
                                       "units": dict(c.units)}
        return {"name": self.name, "keep": self.keep, "scored": self.scored, "kept": self.kept,
                "seconds": self.seconds, "remote_calls": self.remote_calls, "cost": cost}


@dataclass(frozen=True)
class CascadeReport:
    """Per stage, what one cascade call did; totals over the stages (``documents_scored`` counts pairs)."""

    stages: tuple[StageReport, ...]

    @property
    def documents_scored(self) -> int:
        return sum(s.scored for s in self.stages)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def remote_calls(self) -> int:
        return sum(s.remote_calls or 0 for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [s.to_dict() for s in self.stages], "documents_scored": self.documents_scored,
                "seconds": self.seconds, "remote_calls": self.remote_calls}


@dataclass(frozen=True)
class _Outcome:
    """One call, per input document: its cascade score, the stage it stopped at, its raw scores; and the report."""

    scores: list[float]
    stage_of: list[int]
    raw: list[tuple[float, ...]]
    report: CascadeReport


class Cascade(Reranker):
    """Stages of re-rankers, each scoring only the documents the previous one kept (see the module docs).

    Args:
        stages: ``(reranker_or_name, keep)`` pairs, ``"name:keep"`` texts, or one text ``"bm25:100,default:30"``.
            ``keep`` is how many documents the stage passes on (an int >= 1, never more than the stage before);
            the last stage may keep all (None).
        name: the model name on results (default ``cascade(bm25:100>...)``).
        loader: builds stages named by a string (default :func:`rankwise.load`).

    Nothing changes per call, so one instance serves concurrent callers.

    Raises:
        InvalidInputError: bad stages or keeps (the message names the value).
    """

    def __init__(
        self, stages: str | Sequence[StageLike], *, name: str | None = None, loader: MemberLoader | None = None
    ) -> None:
        parsed = parse_stages(stages)
        if loader is None and any(isinstance(member, str) for member, _ in parsed):
            import rankwise  # the public loader, read when first needed: this module never imports the registry

            loader = rankwise.load
        self.stages: tuple[tuple[Reranker, int | None], ...] = tuple(
            (member if isinstance(member, Reranker) else loader(member), keep)  # type: ignore[misc]
            for member, keep in parsed
        )
        self.name = name or "cascade({})".format(
            ">".join(f"{r.name}:{_ALL if k is None else k}" for r, k in self.stages)
        )

    def members(self) -> tuple[Reranker, ...]:
        """The stages' re-rankers, first stage first."""
        return tuple(r for r, _ in self.stages)

    def rank_with_report(
        self, query: str, docs: Iterable[DocumentLike], top_k: int | None = None, *,
        progress: ProgressCallback | None = None,
    ) -> tuple[RankedResults, CascadeReport]:
        """:meth:`rank`, and what each stage did (:class:`CascadeReport`): documents scored, seconds, remote calls.

        Example:
            >>> from rankwise.rerankers.lexical import BM25Reranker
            >>> results, report = Cascade([(BM25Reranker(), 1)]).rank_with_report("lstm", ["cnn", "lstm"])
            >>> results[0].index, report.documents_scored
            (1, 2)
        """
        query, top_k, documents = check_query(query), check_top_k(top_k), to_documents(docs)
        if not documents:
            empty = CascadeReport(tuple(StageReport(r.name, k, 0, 0, 0.0) for r, k in self.stages))
            return RankedResults(query=query, results=(), model=self.name), empty
        out = self._run(model_text(query), documents, progress)
        results = tuple(
            CascadeResult(documents[i], out.scores[i], i, rank, out.stage_of[i], out.raw[i])
            for rank, i in enumerate(rank_order(out.scores)[:top_k], start=1)
        )
        return RankedResults(query=query, results=results, model=self.name), out.report

    def rank(
        self, query: str, docs: Iterable[DocumentLike], top_k: int | None = None, *,
        progress: ProgressCallback | None = None,
    ) -> RankedResults:
        """Rank every document (see the module docs); each result is a :class:`CascadeResult`."""
        return self.rank_with_report(query, docs, top_k, progress=progress)[0]

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        return self._run(query, documents, progress).scores

    def _run(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> _Outcome:
        """Every stage in turn on what the previous kept; then the scores of the groups that stopped at each."""
        n = len(documents)
        counter = _StagedCount(progress, self._planned(n))
        alive = list(range(n))  # input positions the current stage scores, in the previous stage's order
        raw: list[list[float]] = [[] for _ in range(n)]
        stopped: list[list[int]] = []  # per stage, the positions that stopped there, best first
        reports = []
        for s, (reranker, keep) in enumerate(self.stages):
            start = time.perf_counter()
            scores, cost = _stage_scores(reranker, query, [documents[i] for i in alive], counter.stage(s))
            seconds = time.perf_counter() - start
            counter.finished(s)
            for i, score in zip(alive, scores):
                raw[i].append(score)
            ordered = [alive[p] for p in rank_order(scores)]  # ties keep the previous stage's order
            kept = len(ordered) if keep is None else min(keep, len(ordered))
            calls = None if cost is None else cost.calls
            reports.append(StageReport(reranker.name, keep, len(ordered), kept, seconds, calls, cost))
            stopped.append(ordered if s == len(self.stages) - 1 else ordered[kept:])
            alive = ordered[:kept]
        final, stage_of = [0.0] * n, [0] * n
        for s, group in enumerate(stopped):
            for p, i in enumerate(group):  # inside (s, s + 1): deeper stages first, each stage's order within
                final[i], stage_of[i] = s + (len(group) - p) / (len(group) + 1), s
        return _Outcome(final, stage_of, [tuple(r) for r in raw], CascadeReport(tuple(reports)))

    def _planned(self, n: int) -> list[int]:
        """Documents each stage will score for ``n`` inputs."""
        sizes = []
        for _, keep in self.stages:
            sizes.append(n)
            n = n if keep is None else min(n, keep)
        return sizes


def _stage_scores(
    reranker: Reranker, query: str, documents: list[Document], progress: ProgressCallback | None
) -> tuple[list[float], RemoteCost | None]:
    """One stage's raw scores in ``documents`` order, and the cost record of a remote re-ranker (else None)."""
    from rankwise.rerankers.remote._base import RemoteReranker  # light: it imports no HTTP client

    if not isinstance(reranker, RemoteReranker):
        return reranker.score(query, documents, progress=progress), None
    results, cost = reranker.rank_with_cost(query, documents, progress=progress)
    scores = [0.0] * len(documents)
    for r in results:  # every document is there: rank_with_cost fails rather than answer in part
        scores[r.index] = r.score
    return scores, cost


class _StagedCount:
    """Maps each stage's ``progress(done, total)`` onto one count: the documents every stage scores, in order."""

    def __init__(self, progress: ProgressCallback | None, sizes: list[int]) -> None:
        self.progress, self.sizes = progress, sizes
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.total, self.reported = sum(sizes), 0

    def _report(self, done: int) -> None:
        if self.progress is not None and done > self.reported:  # never repeated, never backwards
            self.reported = done
            self.progress(done, self.total)

    def stage(self, s: int) -> ProgressCallback | None:
        if self.progress is None:
            return None

        def report(done: int, total: int) -> None:
            share = self.sizes[s] if total <= 0 else self.sizes[s] * min(max(done, 0), total) // total
            self._report(self.offsets[s] + share)

        return report

    def finished(self, s: int) -> None:
        self._report(self.offsets[s] + self.sizes[s])  # stages that never report still move the count


def build_cascade(
    stages: str | Sequence[StageLike],
    *,
    name: str | None = None,
    loader: MemberLoader | None = None,
    options_of: OptionsOf | None = None,
    **shared: Any,
) -> Cascade:
    """Registry entry point (backend ``cascade``): stages named by a string are built with ``loader``, each with
    the ``shared`` options it declares (``fields=["title", "body"]`` reaches every stage that takes ``fields``).

    Raises:
        InvalidInputError: an option that no named stage takes (the message lists the valid ones), or bad stages.

    Example:
        >>> from rankwise.rerankers.lexical import BM25Reranker
        >>> build_cascade([(BM25Reranker(), 10)]).name
        'cascade(bm25:10)'
    """
    parsed = parse_stages(stages)
    if shared:
        if loader is None or options_of is None:
            raise InvalidInputError(
                f"options {sorted(shared)} for the stages need loader= and options_of= (the registry passes them)."
            )
        declared = {m: options_of(m) for m, _ in parsed if isinstance(m, str)}  # None: takes any keyword
        unknown = [k for k in shared if not any(d is None or k in d for d in declared.values())]
        if unknown:
            raise InvalidInputError(
                f"cascade {preview(stages)} does not take {', '.join(unknown)}; valid options are: "
                f"{', '.join(_valid(declared.values()))}."
            )
        parsed = [
            (m if isinstance(m, Reranker) else _with_options(m, shared, declared[m], loader), k) for m, k in parsed
        ]
    return Cascade(parsed, name=name, loader=loader)


def _with_options(member: str, shared: dict[str, Any], names: tuple[str, ...] | None, loader: MemberLoader) -> Any:
    """A stage named by a string, built with the shared options it declares (left as a name when there are none)."""
    mine = {k: v for k, v in shared.items() if names is None or k in names}
    return loader(member, **mine) if mine else member


def _valid(declared: Iterable[tuple[str, ...] | None]) -> list[str]:
    return list(dict.fromkeys(["stages", "name", *(o for d in declared for o in (d or ()))]))


def _accepted_options(*, options_of: OptionsOf, stages: Any = (), **_: Any) -> tuple[str, ...] | None:
    """What ``build_cascade`` with these ``stages`` accepts (the registry names them in its error); None when a
    stage takes arbitrary keywords."""
    try:
        declared = [options_of(m) for m, _ in parse_stages(stages) if isinstance(m, str)] if stages else []
    except InvalidInputError:
        declared = []  # the build itself reports bad stages, with their value
    return None if any(d is None for d in declared) else tuple(_valid(declared))


build_cascade.accepted_options = _accepted_options  # type: ignore[attr-defined]

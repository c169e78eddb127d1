"""``evaluate(...)``: the first stage and every re-ranker on one judged dataset split, with significance
tests.

Example:
    >>> from rankwise.evaluation import evaluate                         # doctest: +SKIP
    >>> report = evaluate("../shared/data/scifact", ["bm25", "default"])  # doctest: +SKIP
    >>> report.system("default").means["ndcg@10"]                        # doctest: +SKIP
    >>> print(format_table(report)); report.save("eval-out")             # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rankwise.documents import document_text
from rankwise.errors import InvalidInputError
from rankwise.evaluation.embeddings import EmbeddingStore, bi_encoders
from rankwise.evaluation.first_stage import BM25Settings, default_cache_dir, first_stage_run
from rankwise.evaluation.loader import Dataset, Run, load_dataset
from rankwise.evaluation.metrics import DEFAULT_METRICS, evaluate_run, mean_scores, parse_metric
from rankwise.evaluation.report import EvaluationReport, SystemResult
from rankwise.evaluation.significance import Comparison, compare
from rankwise.evaluation.spec import SpecLike, parse_spec
from rankwise.rerankers.base import Reranker
from rankwise.types import Document, rank_order

Rerankers = Sequence[SpecLike] | Mapping[str, SpecLike]


def candidate_documents(dataset: Dataset, ranked: Sequence[tuple[str, float]]) -> list[Document]:
    """The candidates of one query as Documents, first-stage score and rank in ``metadata`` (corpus metadata
    kept)."""
    out = []
    for rank, (doc_id, score) in enumerate(ranked, start=1):
        doc = dataset.corpus[doc_id]
        meta = {**doc.metadata, "first_stage_score": score, "first_stage_rank": rank}
        out.append(Document(text=doc.text, id=doc_id, title=doc.title, metadata=meta))
    return out


def _labelled(rerankers: Rerankers) -> list[tuple[str, SpecLike]]:
    items = list(rerankers.items()) if isinstance(rerankers, Mapping) else [(None, r) for r in rerankers]
    out, seen = [], set()
    for label, spec in items:
        if label is None:
            label = spec.name if isinstance(spec, Reranker) else parse_spec(spec).label
        base, n = label, 2
        while label in seen:
            label, n = f"{base} #{n}", n + 1
        seen.add(label)
        out.append((label, spec))
    return out


StageProgress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``"embedding LABEL"`` (documents embedded) or ``"re-ranking LABEL"``
(queries re-ranked) on each dataset, and ``"first stage"`` (one unit: the BM25 run)."""


def stage_unit(stage: str) -> str:
    """The unit of a :data:`StageProgress` stage: ``"text"``, ``"query"`` or ``"run"``."""
    if stage.startswith("embedding"):
        return "text"
    return "query" if stage.startswith("re-ranking") else "run"


def _stage_progress(progress: bool | StageProgress | None) -> tuple[StageProgress | None, Callable[[], None]]:
    """``(callback, close)`` for ``evaluate(progress=...)``: True asks for the standard reporter (a bar on a
    terminal, a line every 10 s otherwise, on standard error); a callable is the caller's own."""
    if progress is None or progress is False:
        return None, lambda: None
    if progress is True:
        from rankwise.progress import StagedProgress

        reporter = StagedProgress(lambda stage: (stage, stage_unit(stage)), prefix="rankwise eval")
        return reporter, reporter.close
    if callable(progress):
        return progress, lambda: None
    raise InvalidInputError(
        f"progress must be True, False or a callable progress(stage, done, total), got {progress!r}."
    )


def _prepare_embeddings(
    label: str,
    reranker: Reranker,
    dataset: Dataset,
    base: Run,
    store: EmbeddingStore | None,
    progress: StageProgress | None,
) -> dict[str, Any]:
    info: dict[str, Any] = {"embedding_seconds": 0.0, "embeddings_computed": 0, "embeddings_from_disk": 0}
    if store is None:
        return info
    stage = f"embedding {dataset.name} for {label}"
    report = (lambda done, total: progress(stage, done, total)) if progress is not None else None
    for bi in bi_encoders(reranker):
        texts = [document_text(dataset.corpus[d], bi.fields) for ranked in base.values() for d, _ in ranked]
        start = time.perf_counter()
        counts = store.prepare(bi, texts, f"{dataset.name}", report)
        info["embedding_seconds"] += time.perf_counter() - start
        info["embeddings_computed"] += counts["computed"]
        info["embeddings_from_disk"] += counts["from_disk"]
    return info


def rerank_run(
    reranker: Reranker, dataset: Dataset, base: Run, progress: Callable[[int], None] | None = None
) -> tuple[Run, float, int]:
    """Re-rank every query's candidates; returns (run, seconds spent in ``score``, documents scored)."""
    run: Run = {}
    seconds, scored = 0.0, 0
    for query_id, ranked in base.items():
        docs = candidate_documents(dataset, ranked)
        start = time.perf_counter()
        scores = reranker.score(dataset.queries[query_id], docs) if docs else []
        seconds += time.perf_counter() - start
        scored += len(docs)
        run[query_id] = [(ranked[i][0], float(scores[i])) for i in rank_order(scores)]
        if progress is not None:
            progress(1)
    return run, seconds, scored


def _system(plan: _Plan, label: str, model: str, spec: Any, run: Run, cost: dict[str, Any]) -> SystemResult:
    per_query = evaluate_run(run, plan.dataset.qrels, plan.metrics, plan.threshold)
    return SystemResult(
        label=label,
        model=model,
        spec=spec,
        run=run,
        per_query=per_query,
        means=mean_scores(per_query),
        cost=cost,
    )


def _subset(dataset: Dataset, max_queries: int | None) -> Dataset:
    if max_queries is None:
        return dataset
    if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 1:
        raise InvalidInputError(f"max_queries must be an int >= 1 or None, got {max_queries!r}.")
    keep = list(dataset.queries)[:max_queries]
    return Dataset(
        name=dataset.name,
        path=dataset.path,
        split=dataset.split,
        corpus=dataset.corpus,
        queries={q: dataset.queries[q] for q in keep},
        qrels={q: dataset.qrels[q] for q in keep},
        kind=dataset.kind,
        pool=None if dataset.pool is None else {q: dataset.pool[q] for q in keep},
        pool_file=dataset.pool_file,
        counts=dataset.counts,
    )


def evaluate(
    data: str | Path | Dataset,
    rerankers: Rerankers = (),
    *,
    split: str = "test",
    depth: int = 100,
    relevance_threshold: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    candidates: str | Path | None = None,
    bm25: BM25Settings = BM25Settings(),
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    max_queries: int | None = None,
    trials: int = 10_000,
    seed: int = 0,
    progress: bool | StageProgress = False,
) -> EvaluationReport:
    """Evaluate the first stage and each re-ranker (re-ranking its top ``depth``) on one dataset split.

    Args:
        data: a BEIR-layout folder or a loaded :class:`~rankwise.evaluation.loader.Dataset`.
        rerankers: specs (``"bm25"``, ``"default:weights=1,2"``, JSON objects), Reranker objects, or a
            ``{label: spec}`` mapping; see :mod:`rankwise.evaluation.spec`.
        split: qrels split (``qrels/<split>.tsv``).
        depth: candidates per query taken from the first stage.
        relevance_threshold: grade counted as relevant by binary metrics; None = the loader's default
            (1 for collections, 2 for TREC-style pools); the report says which was used and why.
        metrics: metric names; the first is the headline (plots, W/T/L).
        candidates: see :func:`~rankwise.evaluation.loader.load_dataset`.
        bm25: first-stage BM25 settings (collections).
        cache_dir: where first-stage runs and document embeddings are cached (default
            ~/.cache/rankwise/eval).
        use_cache: False = recompute everything and write nothing.
        max_queries: evaluate only the first N judged queries (quick looks; the report says so).
        trials, seed: the randomization test's sign flips and random seed.
        progress: True shows progress on standard error (a bar on a terminal, a line every 10 s otherwise); a
            callable receives ``progress(stage, done, total)`` instead (see :data:`StageProgress`).

    Returns:
        an :class:`~rankwise.evaluation.report.EvaluationReport`.
    """
    _check_metrics(metrics)
    built = _build(rerankers)  # every spec is built before any slow work
    dataset = _subset(data if isinstance(data, Dataset) else load_dataset(data, split, candidates), max_queries)
    plan = _Plan.of(dataset, depth, bm25, cache_dir, use_cache, metrics, relevance_threshold)
    base, systems = _run_systems(plan, built, progress)
    comparisons = _compare(base, systems, plan.metrics, trials, seed)
    settings = _settings(plan, base, max_queries, trials, seed)
    return EvaluationReport(dataset=dataset.describe(), settings=settings, base=base, systems=systems,
                            comparisons=comparisons, environment=_environment())


def _check_metrics(metrics: Sequence[str]) -> None:
    for m in metrics:
        parse_metric(m)
    if not metrics:
        raise InvalidInputError("metrics must name at least one metric, e.g. ['ndcg@10'].")


def _build(rerankers: Rerankers) -> list[tuple[str, Reranker, dict[str, Any] | None]]:
    """``(label, re-ranker, spec as a dict or None for a Reranker object)`` for each entry."""
    built: list[tuple[str, Reranker, dict[str, Any] | None]] = []
    for label, spec in _labelled(rerankers):
        if isinstance(spec, Reranker):
            built.append((label, spec, None))
        else:
            parsed = parse_spec(spec)
            built.append((label, parsed.build(), parsed.to_dict()))
    return built


@dataclass(frozen=True)
class _Plan:
    """What every stage of one evaluation reads: the dataset and the settings resolved from the arguments."""

    dataset: Dataset
    depth: int
    bm25: BM25Settings
    cache: Path
    use_cache: bool
    metrics: tuple[str, ...]
    threshold: int
    threshold_source: str

    @classmethod
    def of(
        cls,
        dataset: Dataset,
        depth: int,
        bm25: BM25Settings,
        cache_dir: str | Path | None,
        use_cache: bool,
        metrics: Sequence[str],
        relevance_threshold: int | None,
    ) -> _Plan:
        """The plan for ``evaluate``'s arguments: the default cache folder, the dataset's default threshold."""
        if relevance_threshold is None:
            threshold = dataset.relevance_threshold
            source = f"default for a {dataset.kind}; change it with relevance_threshold / --relevance-threshold"
        else:
            threshold, source = relevance_threshold, "given"
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        return cls(dataset, depth, bm25, cache, use_cache, tuple(metrics), threshold, source)


def _run_systems(
    plan: _Plan, built: list[tuple[str, Reranker, dict[str, Any] | None]], progress: bool | StageProgress
) -> tuple[SystemResult, list[SystemResult]]:
    """The first stage, then every re-ranker over its candidates: ``(base, systems)``."""
    report, close_progress = _stage_progress(progress)
    try:
        base_run, base = _first_stage(plan, report)
        store = EmbeddingStore(plan.cache) if plan.use_cache else None
        systems = [
            _evaluate_system(plan, label, reranker, spec_info, base_run, store, report)
            for label, reranker, spec_info in built
        ]
    finally:
        close_progress()
    return base, systems


def _compare(
    base: SystemResult, systems: list[SystemResult], metrics: Sequence[str], trials: int, seed: int
) -> dict[str, dict[str, Comparison]]:
    """Each system against the base, per metric (paired randomization test)."""
    return {
        s.label: {m: compare(base.per_query[m], s.per_query[m], metric=m, trials=trials, seed=seed) for m in metrics}
        for s in systems
    }


def _settings(plan: _Plan, base: SystemResult, max_queries: int | None, trials: int, seed: int) -> dict[str, Any]:
    """The report's ``settings``: what was run, so that a reader can run it again."""
    dataset = plan.dataset
    return {
        "split": dataset.split,
        "depth": plan.depth,
        "metrics": list(plan.metrics),
        "relevance_threshold": plan.threshold,
        "relevance_threshold_source": plan.threshold_source,
        "queries_evaluated": len(dataset.queries),
        "max_queries": max_queries,
        "candidates": base.label if dataset.pool is not None else f"BM25 over the corpus ({asdict(plan.bm25)})",
        "randomization_trials": trials,
        "seed": seed,
    }


def _first_stage(plan: _Plan, progress: StageProgress | None) -> tuple[Run, SystemResult]:
    """The first-stage run (BM25 or the given pool) and its scores."""
    dataset = plan.dataset
    start = time.perf_counter()
    if progress is not None:
        progress("first stage", 0, 1)
    base_run = first_stage_run(dataset, plan.depth, plan.bm25, plan.cache, plan.use_cache)
    if progress is not None:
        progress("first stage", 1, 1)
    base_label = (
        "BM25 (first stage)"
        if dataset.pool is None
        else f"{dataset.pool_file.stem} (given run)"
        if dataset.pool_file is not None
        else "given run"
    )
    cost = {
        "queries": len(dataset.queries),
        "seconds": time.perf_counter() - start,
        "note": "first stage (a cached run costs ~0)",
    }
    return base_run, _system(plan, base_label, base_label, None, base_run, cost)


def _evaluate_system(
    plan: _Plan,
    label: str,
    reranker: Reranker,
    spec_info: dict[str, Any] | None,
    base_run: Run,
    store: EmbeddingStore | None,
    progress: StageProgress | None,
) -> SystemResult:
    dataset = plan.dataset
    prep = _prepare_embeddings(label, reranker, dataset, base_run, store, progress)
    stage, queries, done = f"re-ranking {dataset.name} with {label}", len(base_run), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(stage, done, queries)  # type: ignore[misc] - only passed when progress is set

    if progress is not None:
        progress(stage, 0, queries)
    run, seconds, scored = rerank_run(reranker, dataset, base_run, advance if progress is not None else None)
    total, n = seconds + prep["embedding_seconds"], len(base_run)
    cost = {
        "queries": n,
        "documents_scored": scored,
        "score_seconds": seconds,
        **prep,
        "seconds": total,
        "documents_per_second": scored / total if total > 0 else None,
        "seconds_per_query": total / n if n else None,
    }
    return _system(plan, label, reranker.name, spec_info, run, cost)


def _environment() -> dict[str, Any]:
    from rankwise import __version__

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "rankwise": __version__,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": load,
    }


def evaluate_many(
    datasets: Iterable[str | Path], rerankers: Rerankers, **options: Any
) -> list[EvaluationReport]:
    """:func:`evaluate` on several datasets with the same re-rankers and options."""
    return [evaluate(d, rerankers, **options) for d in datasets]

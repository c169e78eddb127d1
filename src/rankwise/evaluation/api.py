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
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

from rankwise._validation import document_text
from rankwise.errors import InvalidInputError
from rankwise.evaluation.embeddings import EmbeddingStore, bi_encoders
from rankwise.evaluation.first_stage import BM25Settings, default_cache_dir, first_stage_run
from rankwise.evaluation.loader import Dataset, Run, load_dataset
from rankwise.evaluation.metrics import DEFAULT_METRICS, evaluate_run, mean_scores, parse_metric
from rankwise.evaluation.report import EvaluationReport, SystemResult
from rankwise.evaluation.significance import compare
from rankwise.evaluation.spec import SpecLike, parse_spec
from rankwise.rerankers.base import Reranker
from rankwise.types import Document

Rerankers = Union[Sequence[SpecLike], Mapping[str, SpecLike]]


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
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
        run[query_id] = [(ranked[i][0], float(scores[i])) for i in order]
        if progress is not None:
            progress(1)
    return run, seconds, scored


def _system(
    label: str,
    model: str,
    spec: Any,
    run: Run,
    dataset: Dataset,
    metrics: Sequence[str],
    threshold: int,
    cost: dict[str, Any],
) -> SystemResult:
    per_query = evaluate_run(run, dataset.qrels, metrics, threshold)
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
    for m in metrics:
        parse_metric(m)
    if not metrics:
        raise InvalidInputError("metrics must name at least one metric, e.g. ['ndcg@10'].")
    built = [
        (
            label,
            spec if isinstance(spec, Reranker) else parse_spec(spec).build(),
            None if isinstance(spec, Reranker) else parse_spec(spec).to_dict(),
        )
        for label, spec in _labelled(rerankers)
    ]  # every spec is built before any slow work
    dataset = _subset(
        data if isinstance(data, Dataset) else load_dataset(data, split, candidates), max_queries
    )
    threshold = dataset.relevance_threshold if relevance_threshold is None else relevance_threshold
    source = (
        "given"
        if relevance_threshold is not None
        else f"default for a {dataset.kind}; change it with relevance_threshold / --relevance-threshold"
    )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    report, close_progress = _stage_progress(progress)
    try:
        base_run, base = _first_stage(dataset, depth, bm25, cache, use_cache, metrics, threshold, report)
        store = EmbeddingStore(cache) if use_cache else None
        systems = [
            _evaluate_system(label, reranker, spec_info, dataset, base_run, store, metrics, threshold, report)
            for label, reranker, spec_info in built
        ]
    finally:
        close_progress()
    comparisons = {
        s.label: {
            m: compare(base.per_query[m], s.per_query[m], metric=m, trials=trials, seed=seed) for m in metrics
        }
        for s in systems
    }
    settings = {
        "split": dataset.split,
        "depth": depth,
        "metrics": list(metrics),
        "relevance_threshold": threshold,
        "relevance_threshold_source": source,
        "queries_evaluated": len(dataset.queries),
        "max_queries": max_queries,
        "candidates": base.label if dataset.pool is not None else f"BM25 over the corpus ({asdict(bm25)})",
        "randomization_trials": trials,
        "seed": seed,
    }
    return EvaluationReport(
        dataset=dataset.describe(),
        settings=settings,
        base=base,
        systems=systems,
        comparisons=comparisons,
        environment=_environment(),
    )


def _first_stage(
    dataset: Dataset,
    depth: int,
    bm25: BM25Settings,
    cache: Path,
    use_cache: bool,
    metrics: Sequence[str],
    threshold: int,
    progress: StageProgress | None,
) -> tuple[Run, SystemResult]:
    """The first-stage run (BM25 or the given pool) and its scores."""
    start = time.perf_counter()
    if progress is not None:
        progress("first stage", 0, 1)
    base_run = first_stage_run(dataset, depth, bm25, cache, use_cache)
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
    return base_run, _system(base_label, base_label, None, base_run, dataset, metrics, threshold, cost)


def _evaluate_system(
    label: str,
    reranker: Reranker,
    spec_info: dict[str, Any] | None,
    dataset: Dataset,
    base_run: Run,
    store: EmbeddingStore | None,
    metrics: Sequence[str],
    threshold: int,
    progress: StageProgress | None,
) -> SystemResult:
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
    return _system(label, reranker.name, spec_info, run, dataset, metrics, threshold, cost)


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

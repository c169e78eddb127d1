"""The `default` section of benchmarks/learning.py: the adaptive default against today's, on seven collections.

For scifact, nfcorpus, trec-dl-2019-passage, cranfield, medline, cisi and vaswani (test splits, BM25 top 100 from
``rankwise.evaluation.first_stage_run``, nDCG@10 through ``rankwise.evaluation.evaluate``, bi-encoder vectors from
the embedding store in ``benchmarks/.cache/embeddings``), three systems re-rank the same candidates:

* ``old default`` -- ``fusion:members=bm25,minilm-bi-encoder;method=zscore;weights=1,2`` (BM25 over the candidates);
* ``default`` -- the new preset; the harness puts ``first_stage_score`` on every candidate, so it fuses that;
* ``default, corpus statistics`` -- the new preset with ``corpus=CorpusStats`` of the collection and the first-stage
  score out of reach (``field=`` names a key no candidate has: the same as stripping it), so it computes BM25 with the
  corpus's IDF. On collections that equals the first-stage score (``corpus_bm25_check`` measures the largest relative
  difference on the first queries). trec-dl-2019-passage's corpus is only its pooled passages, not MS MARCO, so its
  statistics are the pool's (flagged ``corpus_is_pool``).

Each system's ``signals`` counts what it ranked by over the queries (``signals_for`` on the same candidates). The
margin rule of issue 14: the new default must not lose to the old one by more than 0.005 nDCG@10 on any collection.
docs/s: ``warm`` from the evaluation (vectors from the disk store: the re-ranking alone), ``cold`` measured on the
first few scifact and trec-dl test queries with fresh models and no store (provisional on a shared CPU).

Weights are the presets' (chosen on scifact/train + nfcorpus/dev, results/fusion_tuning.json); nothing here tunes.

    python benchmarks/_learning_default.py --quick   # 3 queries per collection, depth 30: proves it runs
    python benchmarks/_learning_default.py           # full size (the lead runs it; learning.py calls measure_default)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ["scifact", "nfcorpus", "trec-dl-2019-passage", "cranfield", "medline", "cisi", "vaswani"]
OLD_SPEC = "fusion:members=bm25,minilm-bi-encoder;method=zscore;weights=1,2"
NEW_SPEC = "default"
NO_FIELD = "__first_stage_score_stripped__"  # a metadata key no candidate has
MARGIN = 0.005
COLD = {"scifact": 5, "trec-dl-2019-passage": 5}  # first N test queries, fresh models, no store


def _settings(quick: bool) -> dict[str, Any]:
    return {"depth": 30, "max_queries": 3, "cold_queries": 1, "check_queries": 3} if quick else {
        "depth": 100, "max_queries": None, "cold_queries": None, "check_queries": 20}


def _corpus_default(dataset: Any, bi_encoder: Any) -> tuple[Any, float]:
    """The new default with the collection's statistics and no reachable first-stage score; counting seconds."""
    import rankwise
    from rankwise.rerankers.corpus_bm25 import CorpusStats

    start = time.perf_counter()
    stats = CorpusStats.from_documents(dataset.corpus.values())  # BM25Settings' tokenizer and fields
    seconds = time.perf_counter() - start
    return rankwise.load("default", corpus=stats, field=NO_FIELD, bi_encoder=bi_encoder), seconds


def _signals(reranker: Any, dataset: Any, run: dict[str, list[tuple[str, float]]]) -> dict[str, int]:
    """How many queries each signal set ranked (the adaptive default only; others always use the same)."""
    from rankwise.evaluation import candidate_documents

    if not hasattr(reranker, "signals_for"):
        return {}
    counts = Counter(
        " + ".join(reranker.signals_for(candidate_documents(dataset, ranked))) for ranked in run.values() if ranked
    )
    return dict(counts)


def _corpus_bm25_check(corpus_default: Any, dataset: Any, run: dict[str, Any], n: int) -> dict[str, Any]:
    """Largest relative difference between corpus BM25 and the harness's first-stage score (the same BM25)."""
    from rankwise.evaluation import candidate_documents

    worst, compared = 0.0, 0
    for query_id in list(run)[:n]:
        docs = candidate_documents(dataset, run[query_id])
        if not docs:
            continue
        ours = corpus_default.corpus_bm25.score(dataset.queries[query_id], docs)
        for doc, value in zip(docs, ours):
            first = doc.metadata["first_stage_score"]
            worst = max(worst, abs(value - first) / max(abs(first), 1e-9))
            compared += 1
    return {"documents": compared, "max_relative_difference": worst}


def _one(name: str, systems: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    from rankwise.evaluation import evaluate, first_stage_run, load_dataset

    dataset = load_dataset(DATA / name, "test")
    corpus_default, count_seconds = _corpus_default(dataset, systems[NEW_SPEC].bi_encoder)
    labelled = {"old default": systems[OLD_SPEC], "default": systems[NEW_SPEC],
                "default, corpus statistics": corpus_default}
    report = evaluate(dataset, labelled, depth=settings["depth"], cache_dir=CACHE,
                      max_queries=settings["max_queries"], trials=1000)
    run = first_stage_run(dataset, settings["depth"], cache_dir=CACHE)
    run = {q: run[q] for q in report.base.run}
    out: dict[str, Any] = {"queries": report.settings["queries_evaluated"], "systems": {}}
    for system in [report.base, *report.systems]:
        reranker = labelled.get(system.label)
        out["systems"][system.label] = {
            "ndcg@10": system.means["ndcg@10"],
            "docs_per_second_warm": system.cost.get("documents_per_second"),
            "signals": _signals(reranker, dataset, run) if reranker is not None else {},
        }
    old, new = (out["systems"][k]["ndcg@10"] for k in ("old default", "default"))
    out["delta_new_minus_old"] = new - old
    out["within_margin"] = new >= old - MARGIN
    out["corpus_is_pool"] = dataset.pool is not None
    out["corpus_statistics_seconds"] = count_seconds
    if dataset.pool is None:
        out["corpus_bm25_check"] = _corpus_bm25_check(corpus_default, dataset, run, settings["check_queries"])
    return out


def _cold(names: Sequence[str], settings: dict[str, Any]) -> dict[str, Any]:
    """docs/s with fresh models and no embedding store on the first test queries (old vs new default)."""
    from rankwise.evaluation import evaluate

    out: dict[str, Any] = {}
    for name, n in COLD.items():
        if name not in names:
            continue
        n = settings["cold_queries"] or n
        report = evaluate(DATA / name, {"old default": OLD_SPEC, "default": NEW_SPEC}, depth=settings["depth"],
                          use_cache=False, max_queries=n, trials=10)
        out[name] = {s.label: {"queries": n, "documents_per_second": s.cost["documents_per_second"]}
                     for s in report.systems}
    return out


def measure_default(datasets: Sequence[str] | None = None, quick: bool = False) -> dict[str, Any]:
    """Old vs new default (and the new one with corpus statistics only) on each collection; see the module text."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _report import code_version, machine_info

    from rankwise.evaluation import parse_spec

    names = list(datasets or DATASETS)
    settings = _settings(quick)
    systems = {spec: parse_spec(spec).build() for spec in (OLD_SPEC, NEW_SPEC)}  # built once, reused per dataset
    rows = {}
    for name in names:
        start = time.perf_counter()
        rows[name] = _one(name, systems, settings)
        rows[name]["seconds"] = time.perf_counter() - start
        print(f"default: {name} done in {rows[name]['seconds']:.0f}s", file=sys.stderr, flush=True)
    return {
        "section": "default",
        "quick": quick,
        "settings": settings,
        "specs": {"old default": OLD_SPEC, "default": NEW_SPEC,
                  "default, corpus statistics": f"default:corpus=<CorpusStats of the collection>;field={NO_FIELD}"},
        "datasets": rows,
        "never_loses_by_more_than_0.005": all(r["within_margin"] for r in rows.values()),
        "cold": _cold(names, settings),
        "machine": machine_info("cpu"),
        "code_version": code_version(),
        "notes": "Weights are the presets' (scifact/train + nfcorpus/dev). docs/s are provisional on a shared CPU.",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 queries per collection, depth 30")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # a shared 2-core machine: two threads thrash
    result = measure_default([n for n in args.datasets.split(",") if n], quick=args.quick)
    out = RESULTS / ("learning_default_quick.json" if args.quick else "learning_default.json")
    from _report import write_report  # benchmarks/ is on sys.path once measure_default ran

    write_report(result, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())

"""Ranking quality of the offline re-rankers on seven judged collections, against the published numbers.

For scifact, nfcorpus, trec-dl-2019-passage, cranfield, medline, cisi and vaswani (test splits, in
../shared/data): BM25 (first stage) and every configuration in CONFIGS re-ranking BM25's top 100, with nDCG@10
(headline), MRR@10, Recall@100 and MAP, paired significance tests against BM25, and the cost of each
configuration measured cold (fresh model, no embedding cache) on a fixed query sample.

    python benchmarks/quality.py                     # everything (embeddings cached in benchmarks/.cache)
    python benchmarks/quality.py --datasets scifact  # one collection
    python benchmarks/quality.py --no-cost           # skip the cold cost measurement

Writes benchmarks/results/quality.json (and benchmarks/results/quality/<dataset>/ with report.json, table.md
and delta.png) and prints JSON, then a markdown table for the README.

The LLM re-rankers are not run here (minutes per query on 2 cores; their helper measures them), and no trained
cross-encoder exists offline (see ../shared/models.md), so the offline configurations are BM25, the bundled
all-MiniLM-L6-v2 bi-encoder, and their fusions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _report import code_version, machine_info, write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rankwise.evaluation import evaluate  # noqa: E402

DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ["scifact", "nfcorpus", "trec-dl-2019-passage", "cranfield", "medline", "cisi", "vaswani"]

# label -> re-ranker spec (paste any of them into `rankwise eval -r ...`). "bm25" re-scores the candidates
# with IDF
# from the 100 candidates; "metadata-score" reads the first stage's own BM25 score (IDF over the whole
# corpus, or over all of MS MARCO for TREC DL), which the harness carries in metadata["first_stage_score"].
CONFIGS: dict[str, str] = {
    "bm25 (candidates)": "bm25",
    "bi-encoder": "minilm-bi-encoder",
    "rrf: bm25 + bi": "fusion:members=bm25,minilm-bi-encoder;method=rrf",
    "zscore: bm25 + bi (equal weights)": "fusion:members=bm25,minilm-bi-encoder;method=zscore",
    "rrf: first-stage + bi": "fusion:members=metadata-score,minilm-bi-encoder;method=rrf",
    "zscore: first-stage + bi": "fusion:members=metadata-score,minilm-bi-encoder;method=zscore",
    # chosen on scifact/train + nfcorpus/dev only (benchmarks/tune_fusion.py -> results/fusion_tuning.json)
    # = the `default` preset on candidates without a first-stage score (and no corpus statistics)
    "tuned: zscore bm25 + 2x bi": "fusion:members=bm25,minilm-bi-encoder;method=zscore;weights=1,2",
    # = the `hybrid` preset, and `default` on candidates that carry their first-stage score (as here)
    "tuned: zscore first-stage + 2.5x bi": (
        "fusion:members=metadata-score,minilm-bi-encoder;method=zscore;weights=1,2.5"
    ),
}

PUBLISHED = {  # ../shared/data/README.md
    "scifact": {"BM25 flat (pyserini)": 0.679, "BM25 + ms-marco-MiniLM-L-6-v2 top-100": 0.682},
    "nfcorpus": {"BM25 flat (pyserini)": 0.322, "BM25 + ms-marco-MiniLM-L-6-v2 top-100": 0.360},
    "trec-dl-2019-passage": {
        "BM25 (anserini)": 0.5058,
        "monoT5-3B": 0.717,
        "ms-marco-MiniLM-L-6-v2": 0.743,
        "RankGPT-4": 0.756,
        "RankZephyr-7B": 0.737,
    },
    "cranfield": {"BM25 (data README)": 0.352},
    "medline": {"BM25 (data README)": 0.671},
    "cisi": {"BM25 (data README)": 0.372},
    "vaswani": {"BM25 (data README)": 0.445},
}
GOALS = {"scifact": 0.74, "nfcorpus": 0.38, "trec-dl-2019-passage": 0.70}
RECOMMENDED = "tuned: zscore first-stage + 2.5x bi"  # chosen on train/dev: docs/evaluation.md
COST_SAMPLE = {"scifact": 5, "trec-dl-2019-passage": 5}  # first N test queries, cold models, no caches


def goals(rows: dict[str, dict]) -> dict[str, dict]:
    """The issue's goals against the recommended configuration (one configuration for every dataset)."""
    out = {}
    for name, goal in GOALS.items():
        if name in rows and RECOMMENDED in rows[name]["systems"]:
            value = rows[name]["systems"][RECOMMENDED]["metrics"]["ndcg@10"]
            out[name] = {"goal": goal, "config": RECOMMENDED, "ndcg@10": value, "met": value >= goal}
    return out


def run_dataset(name: str, configs: dict[str, str]) -> dict:
    start = time.perf_counter()
    report = evaluate(DATA / name, configs, cache_dir=CACHE, progress=sys.stderr.isatty())
    report.save(RESULTS / "quality" / name, runs=False)
    row = {
        "dataset": report.dataset,
        "settings": report.settings,
        "systems": {
            s.label: {"spec": s.spec, "metrics": s.means, "cost_warm": s.cost}
            for s in [report.base, *report.systems]
        },
        "vs_bm25": {
            label: {m: c.to_dict() for m, c in comps.items()} for label, comps in report.comparisons.items()
        },
        "published_ndcg@10": PUBLISHED.get(name, {}),
        "seconds": time.perf_counter() - start,
    }
    print(f"{name}: done in {row['seconds']:.0f}s", file=sys.stderr, flush=True)
    return row


def measure_cost(configs: dict[str, str]) -> dict:
    """Cold cost per configuration: fresh model objects, no disk caches, first N test queries."""
    out: dict[str, dict] = {}
    for name, n in COST_SAMPLE.items():
        out[name] = {}
        for label, spec in configs.items():
            report = evaluate(DATA / name, {label: spec}, use_cache=False, max_queries=n, trials=10)
            cost = report.systems[0].cost
            out[name][label] = {
                k: cost[k]
                for k in (
                    "queries",
                    "documents_scored",
                    "seconds",
                    "documents_per_second",
                    "seconds_per_query",
                )
            }
            print(
                f"cost {name} {label}: {cost['documents_per_second']:.1f} docs/s", file=sys.stderr, flush=True
            )
    return out


def markdown(rows: dict[str, dict], labels: list[str]) -> str:
    names = list(rows)
    head = "| nDCG@10 | " + " | ".join(names) + " |"
    lines = [head, "|---|" + "---:|" * len(names)]
    base_label = {n: next(iter(rows[n]["systems"])) for n in names}
    for label in ["BM25", *labels]:
        cells = []
        for n in names:
            key = base_label[n] if label == "BM25" else label
            value = rows[n]["systems"][key]["metrics"]["ndcg@10"]
            comp = rows[n]["vs_bm25"].get(key, {}).get("ndcg@10")
            star = "*" if comp and comp["t_test_p"] < 0.05 and comp["randomization_p"] < 0.05 else ""
            cells.append(f"{value:.3f}{star}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        pub = rows[n]["published_ndcg@10"]
        value = pub.get("BM25 + ms-marco-MiniLM-L-6-v2 top-100", pub.get("ms-marco-MiniLM-L-6-v2"))
        cells.append("" if value is None else f"{value:.3f}")
    lines.append(
        "| published: BM25 + cross-encoder ms-marco-MiniLM-L-6-v2 (needs the hub) | "
        + " | ".join(cells)
        + " |"
    )
    return "\n".join(lines)


def cost_markdown(cost: dict[str, dict]) -> str:
    """Cold cost per configuration: documents scored per second and seconds per query, per sampled dataset."""
    names = list(cost)
    lines = [
        "| cost (cold, this machine) | " + " | ".join(f"{n} docs/s | {n} s/query" for n in names) + " |",
        "|---|" + "---:|" * (2 * len(names)),
    ]
    for label in cost[names[0]]:
        cells = []
        for n in names:
            c = cost[n][label]
            cells += [f"{c['documents_per_second']:.0f}", f"{c['seconds_per_query']:.2f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine 2 threads thrash)",
    )
    parser.add_argument("--no-cost", action="store_true", help="skip the cold cost measurement")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    configs = dict(CONFIGS)
    names = [n for n in args.datasets.split(",") if n]
    rows = {name: run_dataset(name, configs) for name in names}
    cost = {} if args.no_cost else measure_cost(configs)
    result = {
        "benchmark": "quality",
        "configs": configs,
        "datasets": rows,
        "cost_cold": cost,
        "goals_ndcg@10": GOALS,
        "recommended": RECOMMENDED,
        "goals": goals(rows),
        "machine": {**machine_info("cpu"), "torch_threads": args.threads, "load_average": os.getloadavg()},
        "code": code_version(),
        "notes": "Tuned configurations chosen on scifact/train and nfcorpus/dev only "
        "(benchmarks/tune_fusion.py). "
        "* = p < 0.05 vs BM25 in both the paired t-test and the randomization test.",
    }
    out = RESULTS / "quality.json"
    if names != DATASETS:
        out = RESULTS / f"quality-{'-'.join(names)}.json"
    write_report(result, out, indent=1,
                 show={n: {k: v["metrics"]["ndcg@10"] for k, v in r["systems"].items()} for n, r in rows.items()})
    print()
    print(markdown(rows, list(configs)))
    if cost:
        print()
        print(cost_markdown(cost))
    return 0


if __name__ == "__main__":
    sys.exit(main())

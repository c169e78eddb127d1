"""Cascades vs full re-ranks: nDCG@10 and cost on scifact, nfcorpus and trec-dl-2019-passage (issue 13).

Full re-ranks of BM25's top 100 (bm25 over the candidates, the bi-encoder, the `default` and `hybrid` presets, and a
three-member fusion) against cascades of them: one or two cheap stages cut the list and a fusion ranks what is left.
A cheap stage is the first-stage score itself (free), or that score fused with a bi-encoder that reads only each
document's first 32 or 16 tokens (`bi32`, `bi16`: ~7% / ~4% of the full bi-encoder's cost on abstracts, ~27% / ~15%
on TREC DL's short passages: a semantic cut that can rescue a relevant document from deep in the list); three-stage
cascades let the free first-stage score halve the list before the semantic cut. Every system is a real
`rankwise.Cascade` / `FusionReranker` run through `rankwise.evaluation.evaluate` (bi-encoder vectors from the on-disk
embedding store, so reruns are cheap); the settings record each one's `rankwise eval -r` spec.

Choosing the cascade: quality is compared on scifact/train and nfcorpus/dev only. The cost budget (modelled cost
<= 40% of the best full re-rank's) is checked on every split, the test collections included: cost depends on the
documents alone (lengths and cut sizes), which a deployment knows before anyone judges them, so no relevance label of
a test split enters the choice. Among affordable cascades, the one whose worst nDCG@10 gap to the best full re-rank
over the tuning sets is smallest wins; the test splits are reported. TREC DL has no train/dev split here.

Cost: the bi-encoder embeds each document it scores; that is nearly all the cost (BM25 over 100 candidates takes
milliseconds). The CPU seconds per document of the first-stage score, BM25 and the bi-encoder are measured cold
(fresh models, no embedding store, torch on one thread) on the first --cost-queries test queries; CPU time of this
process, because on a machine shared with other work wall time moves with the others' load and CPU time much less.
A fusion costs the sum of its members. A system's cost over a test split is then the sum over queries and stages of
documents scored x that stage's CPU seconds per document ("modelled"); the chosen cascade and the best full re-rank
are also timed cold end to end on the same queries ("measured", CPU and wall). Pairs scored per stage are counted
exactly. Timing is provisional on a shared machine; the quality figures and the pair counts are not.

    python benchmarks/cascade.py            # full size: every query (writes benchmarks/results/cascade.json)
    python benchmarks/cascade.py --quick    # 3 queries per split, a small grid (writes cascade_quick.json)
    python benchmarks/cascade.py --cost-only  # the quality figures of cascade.json kept, costs measured again
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import code_version, machine_info, write_report  # noqa: E402

from rankwise.evaluation import (  # noqa: E402
    build_reranker,
    candidate_documents,
    evaluate,
    first_stage_run,
    load_dataset,
)
from rankwise.rerankers.base import Reranker  # noqa: E402
from rankwise.rerankers.cascade import Cascade  # noqa: E402
from rankwise.rerankers.fusion import FusionReranker  # noqa: E402
from rankwise.types import Document  # noqa: E402

DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
TUNE = [("scifact", "train"), ("nfcorpus", "dev")]
TEST = ["scifact", "nfcorpus", "trec-dl-2019-passage"]
DEPTH = 100
TOLERANCE = 0.005  # nDCG@10 a cascade may lose against the best full re-rank
MAX_COST = 0.40  # of the best full re-rank's cost

# The single re-rankers (name -> spec for `rankwise eval -r`). bi32 reads a document's first 32 tokens (title and
# first words): ~7% of the full bi-encoder's cost, a cheap semantic cut.
SINGLE: dict[str, Any] = {
    "first-stage-score": "first-stage-score", "bm25": "bm25", "minilm-bi-encoder": "minilm-bi-encoder",
    "bi32": {"name": "minilm-bi-encoder", "max_length": 32, "overflow": "truncate", "label": "bi32"},
    "bi16": {"name": "minilm-bi-encoder", "max_length": 16, "overflow": "truncate", "label": "bi16"},
}
# Fusions: name -> (spec, members, method, weights), built over the shared single re-rankers.
FUSIONS: dict[str, tuple[Any, tuple[str, ...], str, tuple[float, ...]]] = {
    # the `default` preset: every candidate here carries a first-stage score, so it fuses that score with the
    # bi-encoder exactly as `hybrid` does (rerankers/adaptive.py); listed so the table shows today's default
    "default": ("default", ("first-stage-score", "minilm-bi-encoder"), "zscore", (1.0, 2.5)),
    "hybrid": ("hybrid", ("first-stage-score", "minilm-bi-encoder"), "zscore", (1.0, 2.5)),
    "tri-zscore": (
        "fusion:members=first-stage-score,bm25,minilm-bi-encoder;weights=1,1,2",
        ("first-stage-score", "bm25", "minilm-bi-encoder"), "zscore", (1.0, 1.0, 2.0),
    ),
    "h32": (  # the hybrid preset's recipe with bi32
        {"backend": "fusion", "members": ["first-stage-score", SINGLE["bi32"]], "weights": [1, 2.5]},
        ("first-stage-score", "bi32"), "zscore", (1.0, 2.5),
    ),
    "h16": (
        {"backend": "fusion", "members": ["first-stage-score", SINGLE["bi16"]], "weights": [1, 2.5]},
        ("first-stage-score", "bi16"), "zscore", (1.0, 2.5),
    ),
    "tri32": (
        {"backend": "fusion", "members": ["first-stage-score", "bm25", SINGLE["bi32"]], "weights": [1, 1, 2]},
        ("first-stage-score", "bm25", "bi32"), "zscore", (1.0, 1.0, 2.0),
    ),
}
FULL = ["bm25", "minilm-bi-encoder", "default", "hybrid", "tri-zscore"]
# Cascades as stage lists (name, keep); the last stage keeps all. Two stages: a cheap cut, then a full fusion. Three
# stages: the free first-stage score halves the list before the semantic cut, which matters where documents are
# short (TREC DL's ~60-token passages: reading 32 tokens costs a quarter of reading them whole).
LAST = ["hybrid", "tri-zscore"]
CUTS = [[("first-stage-score", k)] for k in (20, 30, 40)] + [
    [(cut, k)] for cut in ("h32", "h16") for k in (10, 15, 20)] + [
    [("tri32", k)] for k in (20, 30)] + [
    [("first-stage-score", k1), (cut, k2)] for k1 in (40, 50) for cut in ("h32", "h16") for k2 in (15, 20)]
GRID = [[*cut, (last, None)] for cut in CUTS for last in LAST]
QUICK_GRID = [[("first-stage-score", 30), ("hybrid", None)], [("h32", 30), ("hybrid", None)],
              [("first-stage-score", 50), ("h16", 20), ("hybrid", None)]]


def build(name: str, single: Callable[[str], Reranker]) -> Reranker:
    """``name``: a single re-ranker made by ``single``, or a fusion of them."""
    if name in SINGLE:
        return single(name)
    _, members, method, weights = FUSIONS[name]
    return FusionReranker([single(m) for m in members], method=method, weights=weights, name=name)


class Models:
    """Every stage by name, over one instance of each single re-ranker (one bi-encoder: its vectors come from the
    embedding store once per dataset)."""

    def __init__(self) -> None:
        self.single = {name: build_reranker(spec) for name, spec in SINGLE.items()}
        self.cache: dict[str, Reranker] = {}

    def get(self, name: str) -> Reranker:
        if name not in self.cache:
            self.cache[name] = build(name, self.single.__getitem__)
        return self.cache[name]


def fresh(name: str) -> Reranker:
    """A new instance (cold: its own bi-encoder, no vectors in memory)."""
    return build(name, lambda n: build_reranker(SINGLE[n]))


def cascade_label(stages: list[tuple[str, int | None]]) -> str:
    return "cascade:" + ",".join(name if keep is None else f"{name}:{keep}" for name, keep in stages)


def cascade_spec(stages: list[tuple[str, int | None]]) -> dict[str, Any]:
    """The JSON spec that builds the same cascade with `rankwise eval -r` (each stage a spec of its own)."""
    spec = lambda n: FUSIONS[n][0] if n in FUSIONS else SINGLE[n]
    return {"backend": "cascade", "stages": [[spec(name), keep] for name, keep in stages]}


def systems(models: Models, grid: list[list[tuple[str, int | None]]]
            ) -> dict[str, tuple[Reranker, list[tuple[str, int | None]]]]:
    """label -> (re-ranker, its stages as (stage name, keep)) for every full re-rank and every cascade of the grid."""
    out: dict[str, tuple[Reranker, list[tuple[str, int | None]]]] = {
        name: (models.get(name), [(name, None)]) for name in FULL
    }
    for stages in grid:
        label = cascade_label(stages)
        out[label] = (Cascade([(models.get(n), k) for n, k in stages], name=label), stages)
    return out


def pairs_per_stage(run: dict[str, list], stages: list[tuple[str, int | None]]) -> list[int]:
    """Documents each stage scores over the whole run (a stage scores what the previous kept)."""
    totals = [0] * len(stages)
    for ranked in run.values():
        n = len(ranked)
        for s, (_, keep) in enumerate(stages):
            totals[s] += n
            n = n if keep is None else min(n, keep)
    return totals


def evaluate_split(name: str, split: str, table: dict, metrics: list[str], max_queries: int | None,
                   trials: int) -> dict[str, Any]:
    """nDCG@10 (and the other metrics), pairs per stage and warm seconds of every system on one split."""
    start = time.perf_counter()
    report = evaluate(DATA / name, {label: r for label, (r, _) in table.items()}, split=split, depth=DEPTH,
                      metrics=metrics, cache_dir=CACHE, max_queries=max_queries, trials=trials,
                      progress=sys.stderr.isatty())
    rows = {}
    for s in report.systems:
        stages = table[s.label][1]
        rows[s.label] = {
            "metrics": s.means,
            "stages": [{"stage": n, "keep": k} for n, k in stages],
            "pairs_per_stage": pairs_per_stage(report.base.run, stages),
            "warm_seconds": s.cost["score_seconds"],  # vectors from the embedding store: not the real cost
            "vs_first_stage_ndcg@10_p": report.comparisons[s.label][metrics[0]].to_dict().get("randomization_p"),
        }
    print(f"{name}/{split}: {len(table)} systems in {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    return {"queries": report.settings["queries_evaluated"], "first_stage": report.base.means, "systems": rows}


def choose(tuning: dict[str, dict], unjudged: dict[str, dict]) -> dict[str, Any]:
    """The cascade chosen on the tuning splits (see the module docs for the rule); the five best for the record.

    Quality comes from the tuning splits only. The cost budget is checked on every split, ``unjudged`` (the test
    collections) included: a cascade's cost depends on the documents alone (their lengths and the cut sizes), which a
    deployment knows before anyone judges them, so no relevance label of a test split enters the choice."""
    gaps: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}
    for result in tuning.values():
        best = max(result["systems"][f]["metrics"]["ndcg@10"] for f in FULL)
        for label, row in result["systems"].items():
            if label.startswith("cascade:"):
                gaps.setdefault(label, []).append(row["metrics"]["ndcg@10"] - best)
    for result in [*tuning.values(), *unjudged.values()]:
        for label, row in result["systems"].items():
            if label.startswith("cascade:"):
                costs.setdefault(label, []).append(row["cost_ratio_vs_best_full"])
    affordable = [lb for lb in gaps if max(costs[lb]) <= MAX_COST]
    ranked = sorted(affordable, key=lambda lb: (-min(gaps[lb]), max(costs[lb])))
    splits = [*tuning, *(f"{name}/test" for name in unjudged)]
    return {
        "rule": f"among cascades whose modelled cost is <= {MAX_COST:.0%} of the best full re-rank's on every "
        "split (tuning and test: cost needs no judgments), the largest min over tuning sets of (nDCG@10 - best full "
        "re-rank's nDCG@10); ties: cheaper",
        "label": ranked[0],
        "worst_tuning_gap": min(gaps[ranked[0]]),
        "top5": [{"label": lb, "gaps": dict(zip(tuning, gaps[lb])), "cost_ratios": dict(zip(splits, costs[lb]))}
                 for lb in ranked[:5]],
    }


def add_costs(result: dict[str, Any], per_doc: dict[str, float]) -> str:
    """Each system's modelled CPU seconds and its ratio to the best full re-rank's; returns that re-rank's label."""
    rows = result["systems"]
    best = max(FULL, key=lambda f: rows[f]["metrics"]["ndcg@10"])
    for row in rows.values():
        row["modelled_cpu_seconds"] = modelled_seconds(row, per_doc)
    reference = rows[best]["modelled_cpu_seconds"]
    for row in rows.values():
        row["cost_ratio_vs_best_full"] = row["modelled_cpu_seconds"] / reference if reference else None
    return best


def cold_cost(
    name: str, split: str, n_queries: int, builders: dict[str, Callable[[], Reranker]]
) -> dict[str, Any]:
    """Each builder's cost over the first ``n_queries`` queries of the split, cold (model loading not counted): CPU
    seconds of this process (torch runs on --threads threads here and nothing else runs, so other processes on a shared
    machine barely move it) and wall seconds; a cascade also reports its stages (Cascade.rank_with_report)."""
    dataset = load_dataset(DATA / name, split)
    run = first_stage_run(dataset, DEPTH, cache_dir=CACHE)
    queries = list(dataset.queries)[:n_queries]
    out: dict[str, Any] = {}
    for label, build in builders.items():
        reranker = build()
        reranker.score("warm up", [Document("warm up", metadata={"first_stage_score": 0.0})])  # torch's first call
        wall, cpu, docs, stage_seconds = 0.0, 0.0, 0, None
        for q in queries:
            candidates = candidate_documents(dataset, run[q])
            start, start_cpu = time.perf_counter(), time.process_time()
            if isinstance(reranker, Cascade):
                _, report = reranker.rank_with_report(dataset.queries[q], candidates)
                stage_seconds = [a + b.seconds for a, b in zip(stage_seconds or [0.0] * len(report.stages),
                                                               report.stages)]
            else:
                reranker.score(dataset.queries[q], candidates)
            wall += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            docs += len(candidates)
        out[label] = {"queries": len(queries), "documents": docs, "cpu_seconds": cpu, "wall_seconds": wall,
                      "cpu_seconds_per_document": cpu / docs if docs else None, "stage_wall_seconds": stage_seconds}
        print(f"cold {name}/{split} {label}: {cpu:.1f} CPU s ({wall:.1f} s wall) for {docs} documents",
              file=sys.stderr, flush=True)
        del reranker
    return out


def modelled_seconds(row: dict[str, Any], per_doc: dict[str, float]) -> float:
    """CPU seconds over the split: per stage, documents scored x that stage's cold CPU seconds per document."""
    return sum(p * stage_cost(st["stage"], per_doc) for p, st in zip(row["pairs_per_stage"], row["stages"]))


def stage_cost(name: str, per_doc: dict[str, float]) -> float:
    """Seconds per document of a stage: measured for a single re-ranker, the sum of its members' for a fusion
    (fusing costs microseconds; timing each fusion separately on a shared machine only adds noise)."""
    if name in per_doc:
        return per_doc[name]
    return sum(per_doc[m] for m in FUSIONS[name][1])


ROW_KEYS = ("metrics", "stages", "pairs_per_stage", "warm_seconds", "vs_first_stage_ndcg@10_p")  # not the costs


def with_costs(name: str, split: str, result: dict[str, Any], cost_queries: int) -> dict[str, Any]:
    """Each single re-ranker's cold cost per document on the split, and every system's modelled cost."""
    cold = cold_cost(name, split, cost_queries, {n: (lambda n=n: fresh(n)) for n in SINGLE})
    add_costs(result, {n: cold[n]["cpu_seconds_per_document"] for n in SINGLE})
    return {**result, "cold": cold}


def report_test_split(name: str, result: dict[str, Any], chosen: str, cost_queries: int) -> dict[str, Any]:
    """The test split: the chosen cascade against the best full re-rank, nDCG@10 and cost (modelled, and both timed
    cold end to end)."""
    rows = result["systems"]
    best = max(FULL, key=lambda f: rows[f]["metrics"]["ndcg@10"])
    stages = [(st["stage"], st["keep"]) for st in rows[chosen]["stages"]]
    timed: dict[str, Callable[[], Reranker]] = {
        best: lambda: fresh(best),
        chosen: lambda: Cascade([(fresh(n), k) for n, k in stages], name=chosen),
    }
    cold = {**result["cold"], **cold_cost(name, "test", cost_queries, timed)}
    gap = rows[chosen]["metrics"]["ndcg@10"] - rows[best]["metrics"]["ndcg@10"]
    ratio = lambda key: cold[chosen][key] / cold[best][key] if cold[best][key] else None
    modelled = rows[chosen]["cost_ratio_vs_best_full"]
    summary = {
        "cascade": chosen, "best_full": best, "ndcg@10": rows[chosen]["metrics"]["ndcg@10"],
        "best_full_ndcg@10": rows[best]["metrics"]["ndcg@10"], "gap": gap, "within_tolerance": gap >= -TOLERANCE,
        "pairs_per_stage": rows[chosen]["pairs_per_stage"], "best_full_pairs": rows[best]["pairs_per_stage"],
        "cost_ratio_modelled_cpu": modelled, "cost_ratio_measured_cpu": ratio("cpu_seconds"),
        "cost_ratio_measured_wall": ratio("wall_seconds"),
        "target_met": gap >= -TOLERANCE and modelled is not None and modelled <= MAX_COST,
    }
    return {**result, "cold": cold, "chosen": summary}


def markdown(tests: dict[str, dict], labels: list[str]) -> str:
    names = list(tests)
    lines = ["| nDCG@10 (cost vs best full) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label in labels:
        cells = []
        for n in names:
            row = tests[n]["systems"][label]
            ratio = row.get("cost_ratio_vs_best_full")
            cells.append(f"{row['metrics']['ndcg@10']:.3f}" + ("" if ratio is None else f" ({ratio:.0%})"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 queries per split, a small grid: proves it runs")
    parser.add_argument("--cost-only", action="store_true",
                        help="keep the quality figures of the results file; measure the cold costs again")
    parser.add_argument("--cost-queries", type=int, default=None, help="test queries timed cold (default 5; quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared 2-core machine)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    path = RESULTS / ("cascade_quick.json" if args.quick else "cascade.json")
    cost_queries = args.cost_queries or (1 if args.quick else 5)
    started = time.perf_counter()
    out = json.loads(path.read_text()) if args.cost_only else quality(args.quick, cost_queries)
    tests = out["test"]
    out.pop("seconds", None)  # written by older versions of this script
    for name in TEST:
        kept = {"queries": tests[name]["queries"], "first_stage": tests[name]["first_stage"],
                "systems": {label: {k: row[k] for k in ROW_KEYS} for label, row in tests[name]["systems"].items()}}
        tests[name] = with_costs(name, "test", kept, cost_queries)
    out["choice"] = choose(out["tuning"], tests)
    for name in TEST:
        tests[name] = report_test_split(name, tests[name], out["choice"]["label"], cost_queries)
    out.update({
        "machine": machine_info("cpu"), "code": code_version(), "torch_threads": args.threads,
        "load_average": os.getloadavg(), "cost_queries": cost_queries,
        "cost_seconds": time.perf_counter() - started,
        "target_met": {n: t["chosen"]["target_met"] for n, t in tests.items()},
    })
    write_report(out, path, indent=1,
                 show={"choice": out["choice"], "chosen_on_test": {n: t["chosen"] for n, t in tests.items()}})
    print()
    print(markdown(tests, list(next(iter(tests.values()))["systems"])))
    return 0


def quality(quick: bool, cost_queries: int) -> dict[str, Any]:
    """Every system on the tuning splits (with costs) and on the test splits (costs and the choice come after)."""
    grid = QUICK_GRID if quick else GRID
    max_queries = 3 if quick else None
    table = systems(Models(), grid)
    started = time.perf_counter()
    tuning = {}
    for name, split in TUNE:  # nDCG@10, then each single re-ranker's cold cost per document on this split
        result = evaluate_split(name, split, table, ["ndcg@10"], max_queries, 100 if quick else 1000)
        tuning[f"{name}/{split}"] = with_costs(name, split, result, cost_queries)
    metrics = ["ndcg@10", "mrr@10", "recall@100", "map"]
    tests = {name: evaluate_split(name, "test", table, metrics, max_queries, 100 if quick else 1000)
             for name in TEST}
    return {
        "benchmark": "cascade", "quick": quick, "quality_seconds": time.perf_counter() - started,
        "settings": {"depth": DEPTH, "tolerance": TOLERANCE, "max_cost": MAX_COST, "grid": grid, "full": FULL,
                     "max_queries": max_queries, "specs": {n: FUSIONS[n][0] for n in FUSIONS} | SINGLE,
                     "cascade_specs": {lb: cascade_spec(st)
                                       for lb, (_, st) in table.items() if lb.startswith("cascade:")}},
        "tuning": tuning, "test": tests,
    }


if __name__ == "__main__":
    sys.exit(main())

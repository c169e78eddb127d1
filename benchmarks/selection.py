"""Response selection measured on judged answers: TrecQA answer-sentence selection (train chooses, dev reports).

Each TrecQA question comes with candidate answer sentences judged correct (1) or not (0); ``candidates.run`` lists
them in a seeded random order (the "random" baseline). Every system orders each question's candidates; MAP, MRR and
P@1 come from pytrec_eval (rankwise.evaluation.evaluate_run, relevance threshold 1) over runs whose scores are
``n - position`` of the system's own order, so trec_eval's tie-break (doc id) never reorders anything.

Systems: random; ``rank()`` of bm25, minilm-bi-encoder and ``default``; ``select()`` with the default criteria and
with [correctness, agreement] for each of those judges (the weighted mixes of the two are the same per-criterion
scores re-weighted with select's arithmetic: weights normalised, weighted sum, rank_order); fusion configurations of
BM25 + bi-encoder chosen on train; the SmolLM2-135M judges (smollm2-pointwise / smollm2-listwise presets via rank(),
LLMJudge via select()) on a seeded subset of dev questions; and best-of-n on answers sampled from SmolLM2
(benchmarks/_selection_sampled.py).

    python benchmarks/selection.py                 # train + dev, LLM judges on 12 dev questions, best-of-n on 40
    python benchmarks/selection.py --quick         # 6 questions per split, 2 for the LLMs: proves it runs
    python benchmarks/selection.py --no-llm        # offline systems only

Writes benchmarks/results/selection.json (and prints it); per-question scores are cached under
benchmarks/.cache/selection/ (delete it to recompute).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # llama.cpp's OpenMP threads: no spinning on a shared machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import code_version, machine_info, write_report  # noqa: E402

from rankwise.evaluation import candidate_documents, evaluate_run, load_dataset  # noqa: E402
from rankwise.evaluation.metrics import mean_scores  # noqa: E402
from rankwise.types import Document, rank_order  # noqa: E402

DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data")) / "trecqa-answers"
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results" / "selection.json"
METRICS = {"map": "map", "mrr": "mrr@1000", "p@1": "p@1"}
JUDGES = ("bm25", "minilm-bi-encoder", "default")
AGREEMENT_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 1 / 3, 0.5, 1.0)  # weight of agreement when correctness has 1
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # bm25's weight when the bi-encoder has 1 (0 = bi alone)


@dataclass(frozen=True)
class Question:
    qid: str
    query: str
    docs: list[Document]  # in the pool's (random) order


def load_split(split: str, limit: int | None) -> tuple[list[Question], dict[str, dict[str, int]]]:
    """The judged questions of ``split`` (the first ``limit`` in file order when given) and their qrels."""
    ds = load_dataset(DATA, split)
    questions = [Question(q, ds.queries[q], candidate_documents(ds, ranked)) for q, ranked in ds.pool.items()]
    questions = questions[:limit] if limit else questions
    return questions, {q.qid: ds.qrels[q.qid] for q in questions}


def per_question(questions: Sequence[Question], orders: dict[str, list[int]], qrels: dict) -> dict[str, dict]:
    """{metric: {question: value}} of the systems' orders (best first, as candidate indices), by pytrec_eval."""
    run = {
        q.qid: [(q.docs[i].id, float(len(q.docs) - pos)) for pos, i in enumerate(orders[q.qid])] for q in questions
    }
    return evaluate_run(run, qrels, list(METRICS.values()), relevance_threshold=1)


def measure(questions: Sequence[Question], orders: dict[str, list[int]], qrels: dict) -> dict[str, float]:
    """MAP, MRR and P@1 of the systems' orders (best first, as candidate indices), by pytrec_eval."""
    means = mean_scores(per_question(questions, orders, qrels))
    return {label: round(means[name], 4) for label, name in METRICS.items()}


def cached(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``'s per-question payload, kept on disk (re-running a benchmark never recomputes a model)."""
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))
    return value


def weighted_orders(per_criterion: dict[str, dict[str, list[float]]], weights: dict[str, float]) -> dict:
    """Orders from per-criterion scores exactly as select() combines them (normalised weights, weighted sum,
    rank_order)."""
    total = sum(weights.values())
    orders = {}
    for qid in next(iter(per_criterion.values())):
        n = len(per_criterion[next(iter(weights))][qid])
        totals = [sum(w / total * per_criterion[c][qid][i] for c, w in weights.items()) for i in range(n)]
        orders[qid] = rank_order(totals)
    return orders


# -- the systems ----------------------------------------------------------------------------------------------------
def rank_system(name: str, reranker: Any, questions: Sequence[Question], split: str, tag: str) -> dict[str, Any]:
    """``reranker.rank()`` on every question: raw scores, order and seconds (cached)."""
    def compute() -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": 0.0, "scores": {}, "orders": {}}
        for q in questions:
            start = time.perf_counter()
            ranked = reranker.rank(q.query, q.docs)
            out["seconds"] += time.perf_counter() - start
            out["orders"][q.qid] = [r.index for r in ranked]
            out["scores"][q.qid] = [s for _, s in sorted((r.index, r.score) for r in ranked)]
        return out

    return cached(CACHE / "selection" / f"{split}{tag}-rank-{name}.json", compute)


def select_system(
    name: str, judge: Any, criteria: list[str], questions: Sequence[Question], split: str, tag: str
) -> dict[str, Any]:
    """``select()`` on every question: per-criterion scores (normalised and raw), order and seconds (cached)."""
    from rankwise.selection import select

    def compute() -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": 0.0, "orders": {}, "criteria": {c: {} for c in criteria},
                               "raw": {c: {} for c in criteria}}
        for q in questions:
            start = time.perf_counter()
            result = select(q.query, q.docs, criteria=criteria, judge=judge)
            out["seconds"] += time.perf_counter() - start
            out["orders"][q.qid] = [c.index for c in result]
            by_index = sorted(result, key=lambda c: c.index)
            for c in criteria:
                out["criteria"][c][q.qid] = [x.scores[c] for x in by_index]
                out["raw"][c][q.qid] = [x.criteria[c].raw for x in by_index]
        return out

    return cached(CACHE / "selection" / f"{split}{tag}-select-{name}-{'+'.join(criteria)}.json", compute)


def offline_judges() -> dict[str, Any]:
    """The three offline re-rankers, loaded once; the bi-encoder's document vectors come from the disk store."""
    import rankwise

    return {name: rankwise.load(name) for name in JUDGES}


def preload_vectors(judges: dict[str, Any], questions: Sequence[Question], split: str) -> None:
    from rankwise.documents import document_text
    from rankwise.evaluation.embeddings import EmbeddingStore, bi_encoders

    for bi in {id(b): b for j in judges.values() for b in bi_encoders(j)}.values():
        EmbeddingStore(CACHE).prepare(bi, [document_text(d, bi.fields) for q in questions for d in q.docs],
                                      f"trecqa-answers-{split}")


# -- offline: train chooses, dev reports ------------------------------------------------------------------------
def offline_split(
    split: str, limit: int | None, tag: str, judges: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every offline system on one split: {label: metrics (+ seconds, + orders differing from rank())}, and the
    questions and per-criterion scores behind them (for the choices made on train)."""
    from rankwise.selection import DEFAULT_CRITERIA

    questions, qrels = load_split(split, limit)
    preload_vectors(judges, questions, split)
    out: dict[str, Any] = {"questions": len(questions), "candidates": sum(len(q.docs) for q in questions)}
    systems: dict[str, Any] = {"random (pool order)": measure(questions, {q.qid: list(range(len(q.docs)))
                                                                          for q in questions}, qrels)}
    ranks = {n: rank_system(n, judges[n], questions, split, tag) for n in JUDGES}
    for name in JUDGES:
        systems[f"rank: {name}"] = {**measure(questions, ranks[name]["orders"], qrels),
                                    "seconds": round(ranks[name]["seconds"], 2)}
        chosen = select_system(name, judges[name], list(DEFAULT_CRITERIA), questions, split, tag)
        unlike = sum(chosen["orders"][q] != ranks[name]["orders"][q] for q in chosen["orders"])
        systems[f"select, default criteria: {name}"] = {**measure(questions, chosen["orders"], qrels),
                                                         "seconds": round(chosen["seconds"], 2),
                                                         "questions ordered unlike rank()": unlike}
    mixes = {n: select_system(n, judges[n], ["correctness", "agreement"], questions, split, tag) for n in JUDGES}
    for name in JUDGES:
        per = mixes[name]["criteria"]
        systems[f"select, [correctness, agreement]: {name}"] = {
            **measure(questions, mixes[name]["orders"], qrels), "seconds": round(mixes[name]["seconds"], 2)}
        for w in AGREEMENT_WEIGHTS:
            orders = weighted_orders(per, {"correctness": 1.0, "agreement": w})
            systems[agreement_label(w, name)] = measure(questions, orders, qrels)
        systems[f"select, agreement alone: {name}"] = measure(
            questions, weighted_orders(per, {"agreement": 1.0}), qrels)
        # what select() did before issue 16: correctness = agreement, plus three criteria a re-ranker answers alike
        systems[f"select, issue-16 old default (4 criteria, agreement as correctness): {name}"] = measure(
            questions, weighted_orders(per, {"correctness": 3.0, "agreement": 1.0}), qrels)
    out["systems"] = systems
    out["fusion"] = fusion_grid(questions, qrels, ranks, mixes)
    return out, {"questions": questions, "qrels": qrels, "mixes": mixes, "ranks": ranks}


def fusion_per(questions: Sequence[Question], ranks: dict, mixes: dict, method: str, wb: float) -> dict:
    """Per-criterion scores: BM25 + bi-encoder fused by rankwise.rerankers.fusion.fuse (what FusionReranker
    computes) and min-max normalised as select() normalises a re-ranker judge, with both agreements."""
    from rankwise.rerankers.fusion import fuse
    from rankwise.selection.judges import normalize_scores

    fused = {q.qid: fuse([ranks["bm25"]["scores"][q.qid], ranks["minilm-bi-encoder"]["scores"][q.qid]],
                         [wb, 1.0], method).tolist() for q in questions}
    return {"correctness": {k: normalize_scores(v, "minmax") for k, v in fused.items()},
            "agreement (bi-encoder)": mixes["minilm-bi-encoder"]["criteria"]["agreement"],
            "agreement (bm25)": mixes["bm25"]["criteria"]["agreement"]}


def fusion_grid(questions: Sequence[Question], qrels: dict, ranks: dict, mixes: dict) -> dict[str, Any]:
    """Every fusion method and BM25 weight, mixed as select() would with agreement by the bi-encoder and by BM25
    (two agreement criteria, each with its own AgreementJudge); {config: metrics}."""
    grid: dict[str, Any] = {}
    for method, wb in itertools.product(("zscore", "minmax", "rrf"), FUSION_WEIGHTS):
        per = fusion_per(questions, ranks, mixes, method, wb)
        for wa, wm in itertools.product((0.0, 0.05, 0.1, 0.2), (0.0, 0.1, 0.2, 0.3)):
            config = {"method": method, "bm25 weight": wb, "agreement (bi-encoder)": wa, "agreement (bm25)": wm}
            grid[json.dumps(config)] = measure(questions, fusion_orders(per, config), qrels)
    return grid


def fusion_orders(per: dict, config: dict) -> dict[str, list[int]]:
    weights = {"correctness": 1.0, "agreement (bi-encoder)": config["agreement (bi-encoder)"],
               "agreement (bm25)": config["agreement (bm25)"]}
    return weighted_orders(per, weights)


# -- the bundled SmolLM2-135M as judge, on a seeded subset --------------------------------------------------------
LLM_CRITERIA = ("correctness", "helpfulness", "safety", "instruction_following")


def llm_subset(split: str, n_questions: int, max_candidates: int, judges: dict[str, Any]) -> dict[str, Any]:
    """SmolLM2 judges against the offline ones on ``n_questions`` seeded questions of ``split`` with at most
    ``max_candidates`` candidates each (the 135M model needs ~0.3-1 s a candidate on these 2 cores)."""
    import rankwise
    from rankwise.llm.factory import make_client
    from rankwise.selection import LLMJudge

    questions, qrels = load_split(split, None)
    pool = [q for q in questions if len(q.docs) <= max_candidates]
    subset = sorted(random.Random(0).sample(pool, min(n_questions, len(pool))), key=lambda q: q.qid)
    qrels = {q.qid: qrels[q.qid] for q in subset}
    tag = f"-llm{len(subset)}x{max_candidates}"
    out: dict[str, Any] = {"questions": len(subset), "candidates": sum(len(q.docs) for q in subset),
                           "qids": [q.qid for q in subset], "systems": {}}
    systems = out["systems"]
    systems["random (pool order)"] = measure(subset, {q.qid: list(range(len(q.docs))) for q in subset}, qrels)
    for name in JUDGES:
        systems[f"rank: {name}"] = measure(subset, rank_system(name, judges[name], subset, split, tag)["orders"], qrels)
    for preset in ("smollm2-pointwise", "smollm2-listwise"):
        reranker = rankwise.load(preset)
        result = rank_system(preset, reranker, subset, split, tag)
        # the calls' report (repairs, tokens) is kept beside the cached scores: a rerun makes no calls
        totals = cached(CACHE / "selection" / f"{split}{tag}-report-{preset}.json",
                        lambda r=reranker: {k: v for k, v in r.totals().to_dict().items() if k != "replies"})
        systems[f"rank: {preset}"] = {**measure(subset, result["orders"], qrels),
                                      "seconds": round(result["seconds"], 1), "report": totals}
    judge = LLMJudge(make_client(None), max_reason_tokens=0)
    per: dict[str, Any] = {}
    for criterion in LLM_CRITERIA:
        result = select_system("smollm2-judge", judge, [criterion], subset, split, tag)
        per[criterion] = result["criteria"][criterion]
        systems[f"select, {criterion}: LLMJudge smollm2"] = {**measure(subset, result["orders"], qrels),
                                                             "seconds": round(result["seconds"], 1)}
    systems["select, all four prompt criteria (equal weights): LLMJudge smollm2"] = measure(
        subset, weighted_orders(per, dict.fromkeys(LLM_CRITERIA, 1.0)), qrels)
    systems["select, correctness + helpfulness: LLMJudge smollm2"] = measure(
        subset, weighted_orders(per, {"correctness": 1.0, "helpfulness": 1.0}), qrels)
    return out


# -- main -----------------------------------------------------------------------------------------------------------
def best(grid: dict[str, dict[str, float]], prefix: str = "") -> str:
    """The label with the highest MAP (then MRR) among those starting with ``prefix``."""
    return max((k for k in grid if k.startswith(prefix)), key=lambda k: (grid[k]["map"], grid[k]["mrr"]))


def agreement_label(w: float, name: str) -> str:
    return f"select, correctness + {w:.3g} x agreement: {name}"


def choose(report: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Choices made on train, with their dev figures. The rule, fixed before looking at dev: for each judge, the
    agreement weight with the best train MAP; agreement joins the default criteria only if that weight beats
    correctness alone on train by a paired randomization test at p < 0.05 (agreement costs n judge calls)."""
    from rankwise.evaluation.significance import randomization_test

    train, dev = report["offline"]["train"], report["offline"]["dev"]
    questions, qrels = state["train"]["questions"], state["train"]["qrels"]
    picks: dict[str, Any] = {}
    for name in JUDGES:
        w = max(AGREEMENT_WEIGHTS, key=lambda x: (train["systems"][agreement_label(x, name)]["map"], -x))
        per = state["train"]["mixes"][name]["criteria"]
        ap = {x: per_question(questions, weighted_orders(per, {"correctness": 1.0, "agreement": x}), qrels)["map"]
              for x in (0.0, w)}
        qids = sorted(ap[0.0])
        p = randomization_test(np.array([ap[0.0][q] for q in qids]), np.array([ap[w][q] for q in qids]))
        picks[f"judge {name}"] = {
            "best agreement weight on train": round(w, 4), "p (train, vs correctness alone)": round(p, 4),
            "agreement adopted": bool(w > 0 and p < 0.05),
            "train": train["systems"][agreement_label(w, name)], "dev": dev["systems"][agreement_label(w, name)],
            "correctness alone, dev": dev["systems"][agreement_label(0.0, name)]}
    config = best(train["fusion"])
    picks["best offline configuration (fusion + agreement grid)"] = {
        "config": json.loads(config), "train": train["fusion"][config], "dev": dev["fusion"][config],
        "p (dev, vs rank: default)": round(_versus_default(state["dev"], json.loads(config)), 4)}
    return picks


def _versus_default(split_state: dict[str, Any], config: dict[str, Any]) -> float:
    """Paired randomization test of per-question AP: ``config`` against rank() with the ``default`` preset."""
    from rankwise.evaluation.significance import randomization_test

    questions, qrels, ranks = split_state["questions"], split_state["qrels"], split_state["ranks"]
    per = fusion_per(questions, ranks, split_state["mixes"], config["method"], config["bm25 weight"])
    ap_config = per_question(questions, fusion_orders(per, config), qrels)["map"]
    ap_default = per_question(questions, ranks["default"]["orders"], qrels)["map"]
    qids = sorted(ap_default)
    return randomization_test(np.array([ap_default[q] for q in qids]), np.array([ap_config[q] for q in qids]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 questions per split, 2 for the LLMs")
    parser.add_argument("--no-llm", action="store_true", help="skip the SmolLM2 judges and best-of-n")
    parser.add_argument("--llm-questions", type=int, default=12, help="dev questions for the SmolLM2 judges")
    parser.add_argument("--llm-max-candidates", type=int, default=30, help="their most candidates each")
    parser.add_argument("--sampled-questions", type=int, default=40, help="questions for best-of-n (sampled)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    limit, tag = (6, "-quick") if args.quick else (None, "")
    judges = offline_judges()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "selection", "machine": machine_info("cpu"), "code": code_version(),
        "load_average_start": os.getloadavg(), "data": str(DATA.relative_to(ROOT.parent)),
        "metrics": "pytrec_eval via rankwise.evaluation.evaluate_run, relevance threshold 1; MRR uncut; MAP over "
                   "each question's whole candidate list",
    }
    state: dict[str, Any] = {}
    report["offline"] = {}
    for split in ("train", "dev"):
        report["offline"][split], state[split] = offline_split(split, limit, tag, judges)
    report["chosen_on_train"] = choose(report, state)
    if not args.no_llm:
        n, m = (2, 12) if args.quick else (args.llm_questions, args.llm_max_candidates)
        report["llm_judges_dev_subset"] = llm_subset("dev", n, m, judges)
        from _selection_sampled import sampled_best_of_n

        report["best_of_n_sampled"] = sampled_best_of_n(3 if args.quick else args.sampled_questions, judges, CACHE,
                                                         weighted_orders)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_end"] = os.getloadavg()
    if args.quick:  # a quick run checks the pipeline; its figures are not kept
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        write_report(report, args.output, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""LLM re-ranking quality and cost: listwise (RankGPT windows) and pointwise (P(yes)) with the bundled
SmolLM2-135M.

On trec-dl-2019-passage (the BM25 top-100 pool in bm25_top100.run) and scifact (bm25s BM25, k1=0.9 b=0.4,
stemmed, title+text, full collection), for a seeded subset of judged queries, each method re-ranks the BM25
top-``depth`` candidates (the rest keep BM25 order below them). Reported: nDCG@10 (pytrec_eval) of BM25 and of
each method on the same queries, the listwise parse-repair rate, LLM calls and tokens per query, and seconds
per query, with the machine's load average (these machines are shared: seconds are only comparable within one
run).

Usage:
    python benchmarks/llm_rerank.py                       # 10 queries per dataset, top-20, both methods
    python benchmarks/llm_rerank.py --queries 20 --depth 30 --methods listwise --datasets scifact
Writes benchmarks/results/llm.json (and prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from _report import code_version, machine_info, write_report

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # llama.cpp's OpenMP threads: no spinning on a shared machine

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
METHODS = ("listwise", "pointwise")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            qid, did, rel = line.split("\t")
            qrels.setdefault(qid, {})[did] = int(rel)
    return qrels


def bm25_pool_run(folder: Path) -> dict[str, list[str]]:
    """The given TREC run file: query -> doc ids in rank order."""
    rows: dict[str, list[tuple[int, str]]] = {}
    with (folder / "bm25_top100.run").open() as fh:
        for line in fh:
            qid, _, did, rank, _score, _tag = line.split()
            rows.setdefault(qid, []).append((int(rank), did))
    return {q: [d for _, d in sorted(v)] for q, v in rows.items()}


def bm25_full_run(
    corpus: list[dict[str, Any]], queries: dict[str, str], depth: int = 100
) -> dict[str, list[str]]:
    """bm25s over the whole collection (k1=0.9, b=0.4, English stemmer and stop words, title + text)."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = [d["_id"] for d in corpus]
    texts = [f"{d.get('title', '')} {d['text']}".strip() for d in corpus]
    index = bm25s.BM25(k1=0.9, b=0.4)
    index.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )
    qids = list(queries)
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    docs, _scores = index.retrieve(tokens, k=depth, show_progress=False, n_threads=1)
    return {q: [ids[i] for i in row] for q, row in zip(qids, docs)}


def ndcg10(qrels: dict[str, dict[str, int]], run: dict[str, list[str]]) -> dict[str, float]:
    """Per-query nDCG@10 by pytrec_eval (the ranking order is encoded in strictly decreasing scores)."""
    import pytrec_eval

    scored = {q: {d: float(len(ds) - i) for i, d in enumerate(ds)} for q, ds in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in run}, {"ndcg_cut.10"})
    return {q: v["ndcg_cut_10"] for q, v in evaluator.evaluate(scored).items()}


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_method(method: str, reranker: Any, dataset: dict[str, Any], depth: int) -> dict[str, Any]:
    docs_by_id, queries, base = dataset["docs"], dataset["queries"], dataset["run"]
    run: dict[str, list[str]] = {}
    reports = []
    began = time.perf_counter()
    for qid in dataset["subset"]:
        pool = base[qid]
        candidates = [
            {"text": docs_by_id[d]["text"], "title": docs_by_id[d].get("title") or None, "id": d}
            for d in pool[:depth]
        ]
        results, report = reranker.rank_with_report(queries[qid], candidates)
        run[qid] = [r.document.id for r in results] + pool[depth:]
        reports.append(report.to_dict())
    seconds = time.perf_counter() - began
    per_query = ndcg10(dataset["qrels"], run)
    n = len(reports)
    out: dict[str, Any] = {
        "ndcg@10": round(mean(list(per_query.values())), 4),
        "per_query_ndcg@10": {q: round(v, 4) for q, v in sorted(per_query.items())},
        "llm_calls_per_query": round(sum(r["calls"] for r in reports) / n, 2),
        "prompt_tokens_per_query": round(sum(r["prompt_tokens"] for r in reports) / n, 1),
        "completion_tokens_per_query": round(sum(r["completion_tokens"] for r in reports) / n, 1),
        "seconds_per_query": round(seconds / n, 2),
    }
    if method == "listwise":
        windows = sum(r["windows"] for r in reports)
        out.update(
            {
                "windows_per_query": round(windows / n, 2),
                "parse_repair_rate": round(sum(r["repaired_windows"] for r in reports) / windows, 4)
                if windows
                else 0.0,
                "unparseable_window_rate": round(sum(r["unparseable_windows"] for r in reports) / windows, 4)
                if windows
                else 0.0,
                "repairs": {k: sum(r[k] for r in reports) for k in ("duplicates", "out_of_range", "missing")},
                "example_replies": [
                    r["replies"][0][:300] for r in reports[:3] if r["replies"]
                ],  # first 300 chars
            }
        )
    else:
        out.update(
            {
                k: sum(r[k] for r in reports)
                for k in ("from_logits", "from_logprobs", "from_text", "no_verdict")
            }
        )
    return out


def load(name: str, n_queries: int, seed: int) -> dict[str, Any]:
    folder = DATA / name
    corpus = read_jsonl(folder / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(folder / "qrels" / "test.tsv")
    judged = sorted(q for q in qrels if q in queries and any(v > 0 for v in qrels[q].values()))
    if (folder / "bm25_top100.run").is_file():
        run, first_stage = bm25_pool_run(folder), "bm25_top100.run (given pool)"
    else:
        run = bm25_full_run(corpus, {q: queries[q] for q in judged})
        first_stage = "bm25s k1=0.9 b=0.4, English stemmer + stop words, title+text, full collection, top-100"
    judged = [q for q in judged if q in run]
    subset = sorted(random.Random(seed).sample(judged, min(n_queries, len(judged))))
    all_queries_bm25 = mean(list(ndcg10(qrels, {q: run[q] for q in judged}).values()))
    return {
        "docs": {d["_id"]: d for d in corpus},
        "queries": queries,
        "qrels": qrels,
        "run": run,
        "subset": subset,
        "first_stage": first_stage,
        "bm25_all_queries": round(all_queries_bm25, 4),
        "judged_queries": len(judged),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="trec-dl-2019-passage,scifact")
    parser.add_argument("--methods", default="listwise,pointwise")
    parser.add_argument("--queries", type=int, default=10, help="judged queries per dataset (seeded sample)")
    parser.add_argument("--depth", type=int, default=20, help="BM25 candidates re-ranked per query")
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument(
        "--max-passage-tokens", type=int, default=100, help="per-passage budget, both methods"
    )
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model", default=None, help="a GGUF path (default: the bundled SmolLM2-135M-Instruct)"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "llm.json"))
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(map(repr, unknown))}; use {' and/or '.join(METHODS)}")
    return args


def make_reranker(method: str, client: Any, args: argparse.Namespace) -> Any:
    from rankwise.rerankers.llm_listwise import ListwiseLLMReranker
    from rankwise.rerankers.llm_pointwise import PointwiseLLMReranker

    if method == "listwise":
        return ListwiseLLMReranker(
            client=client, window=args.window, step=args.step, max_passage_tokens=args.max_passage_tokens
        )
    return PointwiseLLMReranker(client=client, max_passage_tokens=args.max_passage_tokens)


def measure_dataset(name: str, client: Any, args: argparse.Namespace) -> dict[str, Any]:
    """BM25 and each method's nDCG@10 on a seeded sample of ``name``'s judged queries."""
    dataset = load(name, args.queries, args.seed)
    bm25 = ndcg10(dataset["qrels"], {q: dataset["run"][q] for q in dataset["subset"]})
    entry: dict[str, Any] = {
        "first_stage": dataset["first_stage"],
        "judged_queries": dataset["judged_queries"],
        "bm25_ndcg@10_all_judged_queries": dataset["bm25_all_queries"],
        "queries": dataset["subset"],
        "bm25": {
            "ndcg@10": round(mean(list(bm25.values())), 4),
            "per_query_ndcg@10": {q: round(v, 4) for q, v in sorted(bm25.items())},
        },
    }
    for method in args.methods:
        entry[method] = run_method(method, make_reranker(method, client, args), dataset, args.depth)
        print(
            f"{name} {method}: nDCG@10 {entry[method]['ndcg@10']} (BM25 {entry['bm25']['ndcg@10']}), "
            f"{entry[method]['seconds_per_query']} s/query",
            file=sys.stderr,
            flush=True,
        )
    return entry


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import llama_cpp

    from rankwise.llm import LlamaCppChatClient

    client = LlamaCppChatClient(args.model, n_ctx=4096, n_threads=args.n_threads)
    result: dict[str, Any] = {
        "benchmark": "llm_rerank",
        "model": client.model,
        "backend": f"llama-cpp-python {llama_cpp.__version__}, in process, n_ctx 4096, n_threads {args.n_threads}",
        "config": {
            "queries_per_dataset": args.queries,
            "query_sample_seed": args.seed,
            "depth": args.depth,
            "window": args.window,
            "step": args.step,
            "max_passage_tokens": args.max_passage_tokens,
            "prompts": {
                "listwise": "rankwise/prompts/listwise.txt",
                "pointwise": "rankwise/prompts/pointwise.txt",
            },
            "metric": "nDCG@10 (pytrec_eval ndcg_cut_10); candidates below depth keep BM25 order",
        },
        "machine": {**machine_info("cpu"), "load_average_start": load_average()},
        "code": code_version(),
        "datasets": {name: measure_dataset(name, client, args) for name in args.datasets.split(",") if name},
    }
    result["machine"]["load_average_end"] = load_average()
    client.close()
    write_report(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

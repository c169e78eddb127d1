"""``rankwise search DIR "query"``: ranked passages from an index (BM25, dense or hybrid; optionally re-ranked)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rankwise.cli._args import load_model, positive_int
from rankwise.cli._io import json_line, printable, write


def add_retrieval_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``search`` and ``ask``."""
    p.add_argument("index", metavar="DIR", help="the index folder (from `rankwise index`)")
    p.add_argument("query", help="the query / question")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default=None,
                   help="first stage (default: hybrid when the index has both parts)")
    p.add_argument("--fusion", choices=("zscore", "minmax", "rrf"), default="zscore", help="hybrid fusion method")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_retrieval_arguments(p)
    p.add_argument("--top-k", "-k", type=positive_int, default=10, help="passages to show (default 10)")
    p.add_argument("--rerank", default="none", metavar="PRESET",
                   help="re-rank with a preset or model folder (e.g. default); 'none' (default) keeps retrieval order")
    p.add_argument("--candidates", type=positive_int, default=50, help="passages retrieved for re-ranking (default 50)")
    p.add_argument("--format", "-f", choices=("table", "json", "jsonl"), default="table", help="output format")


def build_reranker(name: str, index: Any) -> Any:
    """The re-ranker for ``--rerank NAME`` (None for ``none``).

    ``default`` and ``minilm-bi-encoder`` score with the vectors the index stores when the bundled model embedded it
    (:mod:`rankwise.retrieval.presets`): same scores, no embedding.
    """
    if name.lower() in ("none", "off", ""):
        return None
    from rankwise.retrieval.presets import preset_for_index

    return preset_for_index(name, index) or load_model(name)


def load_models(args: argparse.Namespace) -> tuple[Any, Any, Any, float]:
    """``(index, retriever, reranker, seconds)``: everything loaded before the first query, and how long it took.

    The dense retriever's embedding model loads on first use; it is loaded here, so the search time that is printed
    is the search alone, not model loading (seconds on a CPU, once per process).
    """
    from rankwise.retrieval import Index

    started = time.perf_counter()
    index = Index.load(args.index)
    retriever = index.retriever(args.mode, method=args.fusion)
    reranker = build_reranker(args.rerank, index)
    if retriever.mode != "bm25" and getattr(index, "dense", None) is not None:
        index.dense.embedder  # noqa: B018 - the property loads the model
    return index, retriever, reranker, time.perf_counter() - started


def _line(text: str, width: int) -> str:
    return " ".join(text.split())[:width]


def run(args: argparse.Namespace) -> int:
    from rankwise.rag.pipeline import Pipeline

    _index, retriever, reranker, load_seconds = load_models(args)
    depth = max(args.candidates, args.top_k) if reranker is not None else args.top_k
    pipeline = Pipeline(retriever, reranker, None, top_k=depth, top_n=args.top_k, context_tokens=10**9, merge="none")
    result = pipeline.run(args.query)
    rows = [
        {"rank": c.number, "score": c.score, "scores": dict(c.scores), **c.passage.to_dict()} for c in result.passages
    ]
    if args.format == "json":  # timings: the search's stages; loading the index and models is apart from them
        payload = {"query": args.query, "results": rows, "timings": dict(result.timings), "load_seconds": load_seconds}
        write(json_line(payload, indent=2))
    elif args.format == "jsonl":
        for row in rows:
            write(json_line(row))
    else:
        ranked_by = retriever.mode + (f" + {reranker.name}" if reranker is not None else "")
        write(printable(
            f"{len(rows)} passages from {args.index} ({ranked_by}; search {result.timings['total'] * 1000:.0f} ms, "
            f"loading the index and models {load_seconds:.1f} s)"
        ))
        write("rank  score      doc / passage         text")
        for row in rows:
            shown = f"{row['title']}: {row['text']}" if row.get("title") else row["text"]
            write(printable(f"{row['rank']:<4}  {row['score']:>9.4f}  {_line(row['id'], 20):<20}  {_line(shown, 80)}"))
    return 0

"""``rankwise search DIR "query"``: ranked passages from an index (BM25, dense or hybrid; optionally re-ranked)."""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "search an index built by `rankwise index`: ranked passages (BM25, dense or hybrid, optional re-ranking)"


def add_retrieval_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``search`` and ``ask``."""
    p.add_argument("index", metavar="DIR", help="the index folder (from `rankwise index`)")
    p.add_argument("query", help="the query / question")
    p.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default=None,
                   help="first stage (default: hybrid when the index has both parts)")
    p.add_argument("--fusion", choices=("zscore", "minmax", "rrf"), default="zscore", help="hybrid fusion method")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_retrieval_arguments(p)
    p.add_argument("--top-k", "-k", type=int, default=10, help="passages to show (default 10)")
    p.add_argument("--rerank", default="none", metavar="PRESET",
                   help="re-rank with a preset or model folder (e.g. default); 'none' (default) keeps retrieval order")
    p.add_argument("--candidates", type=int, default=50, help="passages retrieved for re-ranking (default 50)")
    p.add_argument("--format", "-f", choices=("table", "json", "jsonl"), default="table", help="output format")


def build_reranker(name: str, index: Any) -> Any:
    """The re-ranker for ``--rerank NAME`` (None for ``none``).

    The ``default`` and ``minilm-bi-encoder`` presets, on an index embedded by the same bundled model, score with the
    vectors the index already stores (:class:`~rankwise.retrieval.StoredVectorReranker`): same scores, no embedding.
    """
    import rankwise

    if name.lower() in ("none", "off", ""):
        return None
    dense = getattr(index, "dense", None)
    if name in ("default", "minilm-bi-encoder") and dense is not None:
        from rankwise.retrieval.dense import BUNDLED_MODEL
        from rankwise.retrieval.stored import StoredVectorReranker

        if dense.model == BUNDLED_MODEL:
            if name == "minilm-bi-encoder":
                return StoredVectorReranker(index)
            from rankwise.registry import presets
            from rankwise.rerankers.fusion import build_fusion

            options = dict(presets()["default"].options)
            members = list(options.pop("members", ()))
            if "minilm-bi-encoder" in members:
                stored = StoredVectorReranker(index)
                return build_fusion([stored if m == "minilm-bi-encoder" else m for m in members], **options)
    return rankwise.load(name)


def _line(text: str, width: int) -> str:
    return " ".join(text.split())[:width]


def run(args: argparse.Namespace) -> int:
    from rankwise.pipeline import Pipeline
    from rankwise.retrieval import Index

    index = Index.load(args.index)
    reranker = build_reranker(args.rerank, index)
    retriever = index.retriever(args.mode, method=args.fusion)
    depth = max(args.candidates, args.top_k) if reranker is not None else args.top_k
    pipeline = Pipeline(retriever, reranker, None, top_k=depth, top_n=args.top_k, context_tokens=10**9, merge="none")
    result = pipeline.run(args.query)
    rows = [
        {"rank": c.number, "score": c.score, "scores": dict(c.scores), **c.passage.to_dict()} for c in result.passages
    ]
    if args.format == "json":
        print(json.dumps({"query": args.query, "results": rows, "timings": dict(result.timings)},
                         ensure_ascii=False, indent=2, default=str))
    elif args.format == "jsonl":
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
    else:
        ranked_by = retriever.mode + (f" + {reranker.name}" if reranker is not None else "")
        print(f"{len(rows)} passages from {args.index} ({ranked_by}, {result.timings['total'] * 1000:.0f} ms)")
        print("rank  score      doc / passage         text")
        for row in rows:
            shown = f"{row['title']}: {row['text']}" if row.get("title") else row["text"]
            print(f"{row['rank']:<4}  {row['score']:>9.4f}  {_line(row['id'], 20):<20}  {_line(shown, 80)}")
    return 0

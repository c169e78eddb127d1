"""What scoring long documents by their best passage changes for the bi-encoder (and the `default` preset).

all-MiniLM-L6-v2 reads 256 tokens; sentence-transformers cuts longer texts there without a word. rankwise's
bi-encoder now splits them into overlapping 254-token windows and scores the best one (``overflow="chunk"``, the
default); ``overflow="truncate"`` keeps the old behaviour. For each shared collection this script re-ranks the BM25
top-100 both ways and reports nDCG@10 of the bi-encoder alone and of the default fusion (z-score BM25 over the
candidates + 2x bi-encoder), the share of candidates longer than the window, and the embedding cost.

The default is chosen on train/dev splits (scifact/train, nfcorpus/dev); the test splits are reported, not tuned on.
Short documents are embedded once and shared by both modes (same text, same vector), so the extra cost of chunking
is the passages of long documents only.

    python benchmarks/bi_encoder_long.py                          # writes benchmarks/results/bi_encoder_long.json
    python benchmarks/bi_encoder_long.py --datasets scifact:train --max-queries 50
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import code_version, machine_info, write_report  # noqa: E402

DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "bi_encoder_long.json"
DATASETS = ["scifact:train", "nfcorpus:dev", "scifact", "nfcorpus", "trec-dl-2019-passage", "cranfield", "medline",
            "cisi", "vaswani"]


def score_both(bi: Any, bm25: Any, query: str, docs: list[Any]) -> dict[str, np.ndarray]:
    """Bi-encoder scores by best passage and by the first window, and the default fusion of each with BM25."""
    from rankwise.documents import document_text
    from rankwise.rerankers.fusion import fuse

    texts = [document_text(d, bi.fields) for d in docs]
    query_vector = bi.embed_query(query).astype(np.float64)
    truncated = bi.embed_documents(texts).astype(np.float64) @ query_vector  # the text as one (cut) input
    chunked = np.asarray(bi.score(query, docs))
    lexical = np.asarray(bm25.score(query, docs))
    return {
        "bi-encoder truncate": truncated,
        "bi-encoder chunk": chunked,
        "default truncate": fuse([lexical, truncated], [1.0, 2.0], "zscore"),
        "default chunk": fuse([lexical, chunked], [1.0, 2.0], "zscore"),
    }


def run_dataset(name: str, split: str, bi: Any, bm25: Any, max_queries: int | None) -> dict[str, Any]:
    from rankwise.evaluation import (
        candidate_documents,
        evaluate_run,
        first_stage_run,
        load_dataset,
        mean_scores,
    )

    dataset = load_dataset(DATA / name, split=split)
    first = first_stage_run(dataset, depth=100)
    queries = [q for q in dataset.queries if q in dataset.qrels and first.get(q)][:max_queries]
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {}
    long_docs = total_docs = passages = 0
    seen: set[str] = set()
    began = time.monotonic()
    for q in queries:
        docs = candidate_documents(dataset, first[q])
        for doc in docs:
            if doc.id not in seen:
                seen.add(doc.id)
                pieces = bi.passages([_text(doc, bi)])[0]
                total_docs += 1
                long_docs += len(pieces) > 1
                passages += len(pieces)
        for label, scores in score_both(bi, bm25, dataset.queries[q], docs).items():
            runs.setdefault(label, {})[q] = [(d.id, float(s)) for d, s in zip(docs, scores)]
    seconds = time.monotonic() - began
    ndcg = {}
    for label, run in {"bm25": {q: first[q] for q in queries}, **runs}.items():
        per_query = evaluate_run(run, {q: dataset.qrels[q] for q in queries}, ["ndcg@10"])
        ndcg[label] = round(mean_scores(per_query)["ndcg@10"], 4)
    return {
        "split": split, "queries": len(queries), "candidates": total_docs, "longer_than_window": long_docs,
        "share_longer": round(long_docs / max(total_docs, 1), 3), "passages": passages, "ndcg@10": ndcg,
        "chunk_minus_truncate": {
            "bi-encoder": round(ndcg["bi-encoder chunk"] - ndcg["bi-encoder truncate"], 4),
            "default": round(ndcg["default chunk"] - ndcg["default truncate"], 4),
        },
        "seconds": round(seconds, 1),
    }


def _text(doc: Any, bi: Any) -> str:
    from rankwise.documents import document_text

    return document_text(doc, bi.fields)


def main(argv: list[str] | None = None) -> int:
    import rankwise

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="NAME or NAME:SPLIT, comma-separated")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    bi = rankwise.load("minilm-bi-encoder", device="cpu", cache_size=2_000_000, cache_bytes=4 << 30)
    bm25 = rankwise.load("bm25")
    report: dict[str, Any] = {"machine": machine_info("cpu"), "code": code_version(), "window_tokens": bi._splitter.window,
                              "stride_tokens": bi._splitter.stride, "datasets": {}}
    for item in args.datasets.split(","):
        name, _, split = item.partition(":")
        key = f"{name}/{split or 'test'}"
        report["datasets"][key] = run_dataset(name, split or "test", bi, bm25, args.max_queries)
        print(key, json.dumps(report["datasets"][key]), flush=True)
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

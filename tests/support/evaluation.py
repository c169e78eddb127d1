"""Helpers for the evaluation tests: a tiny BEIR folder written on the spot, and nDCG@10 by its definition.

Imported by tests/test_evaluation*.py as ``from tests.support.evaluation import make_beir``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def make_beir(root: Path, *, run: str | None = None, extra_qrels: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = [
        {"_id": "d1", "title": "LSTM", "text": "long short-term memory networks keep information with gates"},
        {"_id": "d2", "title": "CNN", "text": "convolutional networks see images with filters"},
        {"_id": "d3", "title": "", "text": "transformers use attention over all tokens"},
        {"_id": "d4", "text": "gradient descent trains neural networks", "metadata": {"year": 1986}},
    ]
    queries = [
        {"_id": "q1", "text": "lstm memory gates"},
        {"_id": "q2", "text": "image filters"},
        {"_id": "q3", "text": "a query nobody judged"},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t0\nq2\td2\t1\nq2\td9\t1\nq7\td1\t1\n" + extra_qrels
    )
    if run is not None:
        (root / "pool.run").write_text(run)
    return root


def ndcg10(labels: list[int], scores: list[float]) -> float:
    """nDCG@10 by its definition (exponential gain, log2 discount, ties by input order), written out plainly as the
    reference the library's own implementations are checked against."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:10]
    dcg = sum((2 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(order))
    ideal = sorted(labels, reverse=True)[:10]
    idcg = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0

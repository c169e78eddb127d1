"""Synthetic batch inputs for benchmarks/batch.py: N BM25-scorable (query, candidate) pairs from the SciFact corpus,
as JSONL groups and/or Parquet pairs, written in a streaming way (memory does not grow with N).

Each group is one query (a few words of a random abstract's title) and ``group_size`` random SciFact abstracts (cut to
``max_words`` words to keep 1M-pair files near 250 MB); ids are ``q<n>`` and the abstracts' own ids. The same seed gives
the same files.

    python benchmarks/_batch_data.py /tmp/b 10000              # /tmp/b/groups-10000.jsonl and pairs-10000.parquet

Library use:
    >>> from benchmarks._batch_data import write_inputs                # doctest: +SKIP
    >>> write_inputs(Path("/tmp/b/g.jsonl"), Path("/tmp/b/p.parquet"), pairs=1_000_000)  # doctest: +SKIP
    {'groups': 10000, 'pairs': 1000000, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RANKWISE_DATA", ROOT / ".." / "shared" / "data")).resolve()
SCIFACT_CORPUS = DATA / "scifact" / "corpus.jsonl"
PARQUET_ROWS = 5_000  # rows per Parquet row group: the same for every size, so peak memory compares like with like


def _corpus(path: Path, max_words: int | None) -> list[tuple[str, str, str]]:
    """``(id, title, text)`` of every document (SciFact: 5,183 abstracts, a few MB)."""
    docs = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                words = obj.get("text", "").split()
                text = " ".join(words[:max_words] if max_words else words)
                docs.append((str(obj["_id"]), obj.get("title") or "", text))
    return docs


def groups(
    pairs: int, *, group_size: int = 100, max_words: int | None = 40, seed: int = 0, corpus: Path = SCIFACT_CORPUS
) -> Iterator[dict[str, Any]]:
    """``{"query_id", "query", "candidates": [{"doc_id", "title", "text"}]}`` groups holding ``pairs`` pairs in all."""
    docs = _corpus(corpus, max_words)
    rng = random.Random(seed)
    left, n = pairs, 0
    while left > 0:
        size = min(group_size, left)
        picked = rng.sample(docs, size)
        title_words = picked[0][1].split() or picked[0][2].split()
        query = " ".join(title_words[: rng.randint(3, 8)]) or "query"
        candidates = [{"doc_id": d, "title": t, "text": x} for d, t, x in picked]
        yield {"query_id": f"q{n}", "query": query, "candidates": candidates}
        left, n = left - size, n + 1


def write_inputs(
    jsonl: Path | None, parquet: Path | None, pairs: int, *, group_size: int = 100, max_words: int | None = 40,
    seed: int = 0, corpus: Path = SCIFACT_CORPUS,
) -> dict[str, Any]:
    """Write the same ``pairs`` pairs as JSONL groups (``jsonl``) and/or Parquet rows (``parquet``); returns counts
    and file sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.string()) for c in ("query_id", "query", "doc_id", "title", "text")])
    out_json = jsonl.open("w", encoding="utf-8") if jsonl else None
    writer = pq.ParquetWriter(parquet, schema) if parquet else None
    rows: dict[str, list[str]] = {c: [] for c in schema.names}
    count = {"groups": 0, "pairs": 0}
    try:
        for group in groups(pairs, group_size=group_size, max_words=max_words, seed=seed, corpus=corpus):
            count["groups"] += 1
            count["pairs"] += len(group["candidates"])
            if out_json:
                out_json.write(json.dumps(group, ensure_ascii=False) + "\n")
            if writer:
                for c in group["candidates"]:
                    for key, value in (("query_id", group["query_id"]), ("query", group["query"]), *c.items()):
                        rows[key].append(value)
                if len(rows["query_id"]) >= PARQUET_ROWS:
                    writer.write_table(pa.table(rows, schema=schema))
                    rows = {c: [] for c in schema.names}
        if writer and rows["query_id"]:
            writer.write_table(pa.table(rows, schema=schema))
    finally:
        if out_json:
            out_json.close()
        if writer:
            writer.close()
    sizes = {name: p.stat().st_size for name, p in (("jsonl_bytes", jsonl), ("parquet_bytes", parquet)) if p}
    return {**count, **sizes, "group_size": group_size, "max_words": max_words, "seed": seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("pairs", type=int)
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--max-words", type=int, default=40)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    info = write_inputs(
        args.folder / f"groups-{args.pairs}.jsonl", args.folder / f"pairs-{args.pairs}.parquet", args.pairs,
        group_size=args.group_size, max_words=args.max_words,
    )
    print(json.dumps(info))


if __name__ == "__main__":
    main()

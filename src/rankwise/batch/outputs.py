"""What a batch job writes: Parquet shards, rejects, and the TREC run / JSONL exports made from the shards.

Layout of an output folder::

    manifest.json                 settings and input identity (checked by --resume), status, final counts
    shards/part-00000.parquet     query_id (string), doc_id (string), score (float64), rank (int32)
    rejects/part-00000.jsonl      {"where": "<file>:<line or row>", "query_id", "reason"[, "doc_id", "candidate"]}
    rejects/corpus-lines.jsonl    (BEIR) corpus / queries lines that could not be indexed
    index/                        (BEIR) id -> byte offset indexes of queries.jsonl and corpus.jsonl

``pyarrow.dataset.dataset(out_dir / "shards")`` reads every shard as one table, in input order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rankwise.batch._files import atomic_path, jsonl_dump
from rankwise.batch.inputs import Reject
from rankwise.errors import InvalidInputError, require
from rankwise.types import rank_order

_COUNTS_KEY = b"rankwise.shard"


def _pyarrow() -> tuple[Any, Any]:
    pa = require("pyarrow", "batch", "batch re-ranking")
    pq = require("pyarrow.parquet", "batch", "batch re-ranking")
    return pa, pq


def shard_schema() -> Any:
    """The schema of every shard file."""
    pa, _ = _pyarrow()
    return pa.schema(
        [("query_id", pa.string()), ("doc_id", pa.string()), ("score", pa.float64()), ("rank", pa.int32())]
    )


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / "shards" / f"part-{index:05d}.parquet"


def rejects_path(out_dir: Path, index: int) -> Path:
    return out_dir / "rejects" / f"part-{index:05d}.jsonl"


ROW_GROUP_ROWS = 10_000  # rows buffered before a Parquet row group is written: memory per shard stays flat


class ShardWriter:
    """Writes one shard's rows as they come: each group's candidates by rank (its best ``top_k``), in row groups of
    :data:`ROW_GROUP_ROWS`. Made by :func:`open_shard`; the file's bytes depend only on its rows and counts (no time,
    no host), so two runs write identical files."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        self.rows = 0
        self._columns: dict[str, list[Any]] = {"query_id": [], "doc_id": [], "score": [], "rank": []}

    def add(self, query_id: str, doc_ids: Sequence[str], scores: Sequence[float], top_k: int | None) -> None:
        order = rank_order(scores)  # the library's one ordering rule: score descending, ties by input position
        cols = self._columns
        for rank, i in enumerate(order[:top_k], start=1):
            cols["query_id"].append(query_id)
            cols["doc_id"].append(doc_ids[i])
            cols["score"].append(float(scores[i]))
            cols["rank"].append(rank)
        if len(cols["rank"]) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._columns["rank"]:
            pa, _ = _pyarrow()
            self._writer.write_table(pa.Table.from_pydict(self._columns, schema=shard_schema()))
            self.rows += len(self._columns["rank"])
            self._columns = {name: [] for name in self._columns}

    def finish(self, counts: Mapping[str, int]) -> None:
        """Write the last rows and ``counts`` (groups, pairs, rejects) into the file's metadata, so a resumed job
        reports the whole job without rereading the input."""
        self._flush()
        self._writer.add_key_value_metadata({_COUNTS_KEY: json.dumps(dict(counts), sort_keys=True)})


@contextmanager
def open_shard(out_dir: Path, index: int) -> Iterator[ShardWriter]:
    """A :class:`ShardWriter` for ``shards/part-NNNNN.parquet``: the file appears (atomically) only when the block
    ends without an error; call ``finish(counts)`` last inside it."""
    _, pq = _pyarrow()
    with atomic_path(shard_path(out_dir, index)) as tmp:
        parquet = pq.ParquetWriter(tmp, shard_schema())
        try:
            yield ShardWriter(parquet)
        finally:
            parquet.close()


def read_shard_counts(out_dir: Path, index: int) -> dict[str, int] | None:
    """``{"groups", "pairs", "rejects", "rows"}`` of a finished shard; None when its file does not exist."""
    path = shard_path(out_dir, index)
    if not path.is_file():
        return None
    _, pq = _pyarrow()
    metadata = pq.read_metadata(path)
    counts = json.loads((metadata.metadata or {}).get(_COUNTS_KEY, b"{}"))
    return {"groups": 0, "pairs": 0, "rejects": 0, **counts, "rows": metadata.num_rows}


def write_rejects(out_dir: Path, index: int, rejects: Iterable[Reject]) -> Path | None:
    """Write ``rejects/part-NNNNN.jsonl`` atomically when there are rejects (and remove a stale one otherwise)."""
    final = rejects_path(out_dir, index)
    lines = [jsonl_dump(r.to_dict()) + "\n" for r in rejects]
    if not lines:
        final.unlink(missing_ok=True)
        return None
    with atomic_path(final) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")
    return final


def count_lines(path: Path) -> int:
    """Non-blank lines of a rejects file (0 when it does not exist)."""
    if not path.is_file():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


# -- exports --------------------------------------------------------------------------------------------------------
def _shard_batches(out_dir: Path, indices: Iterable[int]) -> Iterator[tuple[int, dict[str, list[Any]]]]:
    """``(shard index, columns)`` of each record batch of the shards, in order (one batch in memory at a time)."""
    _, pq = _pyarrow()
    for index in indices:
        for batch in pq.ParquetFile(shard_path(out_dir, index)).iter_batches(batch_size=65_536):
            yield index, batch.to_pydict()


def _groups(out_dir: Path, indices: Iterable[int]) -> Iterator[tuple[int, str, list[tuple[str, float, int]]]]:
    """``(shard, query_id, [(doc_id, score, rank)])`` per group; a group never spans two shards."""
    current: tuple[int, str, list[tuple[str, float, int]]] | None = None
    for index, cols in _shard_batches(out_dir, indices):
        for q, d, s, r in zip(cols["query_id"], cols["doc_id"], cols["score"], cols["rank"]):
            if current is None or q != current[1] or index != current[0] or r == 1:
                if current is not None:
                    yield current
                current = (index, q, [])
            current[2].append((d, s, r))
    if current is not None:
        yield current


def export_trec(out_dir: Path, indices: Sequence[int], path: str | Path, tag: str) -> Path:
    """The shards as a TREC run (``qid Q0 docid rank score tag``, scores in full precision), written atomically.

    Raises:
        InvalidInputError: an id holds whitespace, which a TREC run cannot carry (the shards are unaffected).
    """
    tag = "".join(tag.split()) or "rankwise"
    final = Path(path)
    with atomic_path(final) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for index, query_id, ranked in _groups(out_dir, indices):
            for doc_id, score, rank in ranked:
                if _has_space(query_id) or _has_space(doc_id):
                    bad = query_id if _has_space(query_id) else doc_id
                    raise InvalidInputError(
                        f"cannot write the TREC run {str(final)!r}: id {bad!r} (shard {index}) holds whitespace, "
                        f"which a TREC run cannot carry; the scores are complete in {out_dir / 'shards'}: export "
                        "them with jsonl= instead."
                    )
                fh.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {tag}\n")
    return final


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


def export_jsonl(out_dir: Path, indices: Sequence[int], path: str | Path) -> Path:
    """The shards as JSONL, one line per query: ``{"query_id", "results": [{"doc_id", "score", "rank"}, ...]}``."""
    final = Path(path)
    with atomic_path(final) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for _, query_id, ranked in _groups(out_dir, indices):
            results = [{"doc_id": d, "score": s, "rank": r} for d, s, r in ranked]
            fh.write(jsonl_dump({"query_id": query_id, "results": results}) + "\n")
    return final

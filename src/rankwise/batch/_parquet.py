"""Parquet pairs: rows ``(query_id, query, doc_id, text[, title, other columns])``, a query's rows contiguous.

Read with pyarrow in record batches (planning reads only the ``query_id`` column), so memory holds one shard, never
the file. Other columns become the candidate's metadata: ``fields=("title", "body")`` can pick them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankwise.batch.inputs import (
    Group,
    GroupBuilder,
    InputSource,
    Reject,
    Unit,
    id_problem,
    query_problem,
    record_document,
)
from rankwise.errors import InvalidInputError, require

if TYPE_CHECKING:
    from rankwise.batch.shards import ShardSpec

SCAN_ROWS = 65_536  # rows per batch when planning (the query_id column only)
READ_ROWS = 1_024  # rows per batch when reading a shard (every column, as Python objects)
_PAIR_KEYS = ("query_id", "query", "doc_id")


def _parquet_file(path: str) -> Any:
    pq = require("pyarrow.parquet", "batch", "batch re-ranking of Parquet input")
    # pre_buffer=False + a read buffer: pages are read as batches need them, not whole column chunks up front
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


def scan(source: InputSource) -> Iterator[Unit]:
    """Each run of consecutive rows with the same ``query_id``, as one unit (positions are row numbers)."""
    pf = _parquet_file(source.path)
    row = 0
    current: list[Any] | None = None  # [start row, key, rows]
    for batch in pf.iter_batches(batch_size=SCAN_ROWS, columns=["query_id"]):
        for value in batch.column(0).to_pylist():
            if current is not None and value == current[1]:
                current[2] += 1
            else:
                if current is not None:
                    yield _unit(current)
                current = [row, value, 1]
            row += 1
    if current is not None:
        yield _unit(current)


def _unit(current: list[Any]) -> Unit:
    start, key, rows = current
    return Unit(start, start + rows, start, key if id_problem(key, "query_id") is None else None, rows)


def _rows(source: InputSource, start: int, stop: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number, row)`` for rows ``start <= row < stop``, reading only the row groups that hold them."""
    pf = _parquet_file(source.path)
    groups, first, offset = [], None, 0
    for i in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        if offset + n > start and offset < stop:
            groups.append(i)
            first = offset if first is None else first
        offset += n
    if first is None:  # past the end of the file
        return
    row = first
    for batch in pf.iter_batches(batch_size=READ_ROWS, row_groups=groups, use_threads=False):
        if row + batch.num_rows <= start:
            row += batch.num_rows
            continue
        for record in batch.to_pylist():
            if start <= row < stop:
                yield row, record
            row += 1
        if row >= stop:
            return


def read(source: InputSource, spec: ShardSpec, out_dir: Path) -> Iterator[Group | Reject]:
    """The groups of ``spec``'s rows, after the rejects of rows that cannot be scored."""
    name = Path(source.path).name
    strays = dict(spec.strays)
    rows: list[tuple[int, dict[str, Any]]] = []
    for row, record in _rows(source, spec.start, spec.stop):
        if rows and record["query_id"] != rows[0][1]["query_id"]:
            yield from group_rows(rows, name, strays, source.fields)
            rows = []
        rows.append((row, record))
    if rows:
        yield from group_rows(rows, name, strays, source.fields)


def group_rows(
    rows: list[tuple[int, dict[str, Any]]], name: str, strays: dict[int, int], fields: tuple[str, ...] | None
) -> Iterator[Group | Reject]:
    """One query's consecutive ``(row number, row)`` pairs as a group after the rejects of its unusable rows (all
    rows are rejects when the query is unusable or its first row is in ``strays``). Also used by
    :mod:`rankwise.distributed` on rows Ray Data read."""
    first_row, first = rows[0]
    query_id, query = first["query_id"], first["query"]
    problem = id_problem(query_id, "query_id") or query_problem(query)
    if problem is None and first_row in strays:
        problem = (
            f"query_id {query_id!r} has earlier rows (from row {strays[first_row]}); a query's rows must be "
            "contiguous: sort the file by query_id (e.g. pyarrow: table.sort_by('query_id')) or group its rows."
        )
    if problem is not None:
        yield from (Reject(f"{name}:{row}", query_id, problem, record["doc_id"]) for row, record in rows)
        return
    group = Group(query_id, query, f"{name}:{first_row}", rows=[])
    builder = GroupBuilder(group, fields)
    for row, record in rows:
        reject = _add(builder, row, record, name, first_row)
        if reject is not None:
            yield reject
    if group.documents:
        yield group


def _add(builder: GroupBuilder, row: int, record: dict[str, Any], name: str, first_row: int) -> Reject | None:
    where, query_id, doc_id = f"{name}:{row}", builder.group.query_id, record["doc_id"]
    if record["query"] != builder.group.query:
        reason = f"query text differs from this query's first row ({first_row}); one query_id, one query text."
        return Reject(where, query_id, reason, doc_id)
    fields = {k: v for k, v in record.items() if k not in _PAIR_KEYS}
    if fields.get("text") is None:
        fields["text"] = ""  # a null text is a missing one: rejected below unless `fields` picks other columns
    try:
        document = record_document(fields, row)
    except InvalidInputError as exc:
        return Reject(where, query_id, str(exc), doc_id)
    return builder.add(doc_id, document, where)


_group = group_rows  # the earlier name, still imported by rankwise.distributed._scoring

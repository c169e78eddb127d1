"""BEIR-layout input: ``queries.jsonl`` + ``corpus.jsonl`` + a TREC run (``qid Q0 docid rank score tag``).

A group is a run of consecutive run-file lines with the same query id. Texts are never all in memory: each JSONL file
gets an id -> byte offset index on disk (:class:`rankwise.batch._index.OffsetIndex`, built once per output folder),
and a shard reads only the queries and documents its lines name.

Candidates are ordered as :func:`rankwise.evaluation.loader.read_run` orders them (run score descending, ties by the
rank column), and carry ``first_stage_score`` and ``first_stage_rank`` in their metadata as in ``rankwise eval``, so
the ``hybrid`` preset can use the run's score.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankwise.batch._index import OffsetIndex, numbered_lines
from rankwise.batch.inputs import (
    Group,
    GroupBuilder,
    InputSource,
    Reject,
    Unit,
    query_problem,
    record_document,
)
from rankwise.errors import InvalidInputError
from rankwise.types import Document

if TYPE_CHECKING:
    from rankwise.batch.shards import ShardSpec

INDEX_FILES = {"queries": "queries.jsonl", "corpus": "corpus.jsonl"}


@dataclass(frozen=True)
class _Line:
    """One parsed run line."""

    where: str
    doc_id: str
    rank: int
    score: float


def _key(line: bytes) -> bytes:
    parts = line.split(maxsplit=1)
    return parts[0] if parts else b""


def _text(key: bytes) -> str | None:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def scan(source: InputSource) -> Iterator[Unit]:
    """Each run of consecutive run-file lines with the same query id, as one unit."""
    current: list[Any] | None = None  # [start, stop, line, key bytes, pairs]
    for number, start, line in numbered_lines(Path(source.run or "")):
        key = _key(line)
        if current is not None and key == current[3]:
            current[1], current[4] = start + len(line), current[4] + 1
            continue
        if current is not None:
            yield Unit(current[0], current[1], current[2], _text(current[3]), current[4])
        current = [start, start + len(line), number, key, 1]
    if current is not None:
        yield Unit(current[0], current[1], current[2], _text(current[3]), current[4])


def index_paths(out_dir: Path) -> dict[str, tuple[Path, Path]]:
    """``{"queries"|"corpus": (sqlite index, rejects file)}`` inside a job's output folder."""
    return {
        what: (out_dir / "index" / f"{what}.sqlite", out_dir / "rejects" / f"{what}-lines.jsonl")
        for what in INDEX_FILES
    }


def prepare(source: InputSource, out_dir: Path) -> dict[str, OffsetIndex]:
    """The offset indexes of the folder's queries and corpus, built on first use."""
    folder = Path(source.path)
    return {
        what: OffsetIndex.open(folder / INDEX_FILES[what], db, rejects)
        for what, (db, rejects) in index_paths(out_dir).items()
    }


def read(source: InputSource, spec: ShardSpec, out_dir: Path) -> Iterator[Group | Reject]:
    """The groups of ``spec``'s run lines, after the rejects of lines that cannot be scored. One group's lines and
    texts are in memory at a time."""
    run = Path(source.run or "")
    indexes = prepare(source, out_dir)
    strays = dict(spec.strays)
    for query_id, start, lines in _runs(numbered_lines(run, spec.start, spec.stop, spec.line), run.name):
        if start in strays:
            reason = (
                f"query {query_id!r} has earlier lines in the run (from line {strays[start]}); a query's lines must "
                f"be contiguous: sort the run by query id (sort -s -k1,1 {run.name})."
            )
            for where, raw in lines:
                line = _parse(raw, where)[0]
                yield Reject(where, query_id, reason, None if line is None else line.doc_id)
            continue
        yield from _group(query_id, lines, indexes, source.fields)


def _runs(
    lines: Iterator[tuple[int, int, bytes]], name: str
) -> Iterator[tuple[str | None, int, list[tuple[str, bytes]]]]:
    """``(query id, byte offset of its first line, [(where, line)])`` for each run of lines with equal query ids."""
    current: tuple[bytes, str | None, int, list[tuple[str, bytes]]] | None = None
    for number, start, line in lines:
        key = _key(line)
        if current is None or key != current[0]:
            if current is not None:
                yield current[1], current[2], current[3]
            current = (key, _text(key), start, [])
        current[3].append((f"{name}:{number}", line))
    if current is not None:
        yield current[1], current[2], current[3]


def _parse(line: bytes, where: str) -> tuple[_Line | None, str | None]:
    """A run line as ``(_Line, None)``, or ``(None, reason)``."""
    try:
        parts = line.decode("utf-8").split()
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc.reason} at byte {exc.start}); convert the run to UTF-8."
    if len(parts) != 6:
        return None, f"a TREC run line has 6 columns 'qid Q0 docid rank score tag', got {len(parts)}."
    try:
        rank, score = int(parts[3]), float(parts[4])
    except ValueError:
        return None, f"rank {parts[3]!r} must be an integer and score {parts[4]!r} a number."
    return _Line(where, parts[2], rank, score), None


def _group(
    query_id: str | None,
    lines: list[tuple[str, bytes]],
    indexes: dict[str, OffsetIndex],
    fields: tuple[str, ...] | None,
) -> Iterator[Group | Reject]:
    parsed: list[_Line] = []
    for where, raw in lines:
        line, reason = _parse(raw, where)
        if line is None:
            yield Reject(where, query_id, reason or "")
        else:
            parsed.append(line)
    if not parsed or query_id is None:
        return
    queries = indexes["queries"].records([query_id])
    problem = _query_problem(query_id, queries)
    if problem is not None:
        yield from (Reject(line.where, query_id, problem, line.doc_id) for line in parsed)
        return
    corpus = indexes["corpus"].records([line.doc_id for line in parsed])
    group = Group(query_id, queries[query_id]["text"], parsed[0].where, rows=[])
    builder = GroupBuilder(group, fields)
    ordered = sorted(parsed, key=lambda x: (-x.score, x.rank))  # read_run's order: score, then the rank column
    for position, line in enumerate(ordered, start=1):
        reject = _add(builder, line, position, corpus)
        if reject is not None:
            yield reject
    if group.documents:
        yield group


def _query_problem(query_id: str, queries: dict[str, dict[str, Any]]) -> str | None:
    if query_id not in queries:
        return f"query id {query_id!r} is not in queries.jsonl."
    problem = query_problem(queries[query_id].get("text"))
    return None if problem is None else f"queries.jsonl: query {query_id!r}: {problem}"


def _add(builder: GroupBuilder, line: _Line, position: int, corpus: dict[str, dict[str, Any]]) -> Reject | None:
    query_id = builder.group.query_id
    record = corpus.get(line.doc_id)
    if record is None:
        return Reject(line.where, query_id, f"doc id {line.doc_id!r} is not in corpus.jsonl.", line.doc_id)
    try:
        doc = record_document(record, position)
    except InvalidInputError as exc:
        return Reject(line.where, query_id, f"corpus.jsonl: document {line.doc_id!r}: {exc}", line.doc_id)
    meta = {**doc.metadata, "first_stage_score": line.score, "first_stage_rank": position}
    document = Document(text=doc.text, id=line.doc_id, title=doc.title, metadata=meta)
    return builder.add(line.doc_id, document, line.where)

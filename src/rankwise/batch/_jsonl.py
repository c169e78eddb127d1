"""JSONL groups: one query and its candidates per line.

``{"query_id": "q1", "query": "what is an lstm", "candidates": ["text", {"doc_id": "d2", "text": "...", ...}]}``

A line is read in binary and parsed alone, so a broken line (bad JSON, not UTF-8) is one reject and never stops the
job. Positions are byte offsets: a shard seeks straight to its first line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankwise.batch._index import numbered_lines
from rankwise.batch.inputs import (
    Group,
    GroupBuilder,
    InputSource,
    Reject,
    Unit,
    candidate_id,
    id_problem,
    query_problem,
    record_document,
)
from rankwise.errors import InvalidInputError

if TYPE_CHECKING:
    from rankwise.batch.shards import ShardSpec


def scan(source: InputSource) -> Iterator[Unit]:
    """Every non-blank line as a unit; its key is the query id when the line reads as a group with one."""
    for number, start, line in numbered_lines(Path(source.path)):
        key, pairs = None, 0
        try:
            obj = json.loads(line)
        except ValueError:  # bad JSON or not UTF-8: a reject when the shard is read
            obj = None
        if isinstance(obj, dict):
            candidates = obj.get("candidates")
            pairs = len(candidates) if isinstance(candidates, list) else 0
            query_id = obj.get("query_id")
            key = query_id if id_problem(query_id, "query_id") is None else None  # a bad id is rejected later
        yield Unit(start, start + len(line), number, key, pairs)


def read(source: InputSource, spec: ShardSpec, out_dir: Path) -> Iterator[Group | Reject]:
    """The groups of ``spec``'s lines, and a reject for each line or candidate that cannot be scored."""
    path = Path(source.path)
    strays = dict(spec.strays)
    for number, start, line in numbered_lines(path, spec.start, spec.stop, spec.line):  # one line in memory
        where = f"{path.name}:{number}"
        if start in strays:
            yield from _stray(line, where, strays[start])
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield Reject(where, None, _json_problem(exc))
            continue
        yield from parse_group(obj, where, source.fields)


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line); convert the file to UTF-8."
    return f"not a JSON line ({exc}); each line must be one JSON object."


def _stray(line: bytes, where: str, first: int) -> Iterator[Reject]:
    query_id = json.loads(line).get("query_id")
    yield Reject(
        where,
        query_id,
        f"query_id {query_id!r} already has a group at line {first}; each query must be one line: merge these "
        "candidates into that line.",
    )


def parse_group(obj: Any, where: str, fields: tuple[str, ...] | None) -> Iterator[Group | Reject]:
    """One JSONL record as a group (after the rejects of its unusable candidates), or the reject of the line."""
    if not isinstance(obj, Mapping):
        yield Reject(where, None, f'expected a JSON object {{"query_id", "query", "candidates"}}, got '
                                  f"{type(obj).__name__}.")
        return
    query_id, candidates = obj.get("query_id"), obj.get("candidates")
    problem = id_problem(query_id, "query_id") or query_problem(obj.get("query"))
    if problem is None and not isinstance(candidates, list):
        shown = "missing" if candidates is None else f"a {type(candidates).__name__}"
        problem = f'"candidates" is {shown}; it must be a list of strings or objects with "text".'
    if problem is None and not candidates:
        problem = "no candidates: the candidates list is empty."
    if problem is not None:
        yield Reject(where, query_id, problem)
        return
    group = Group(query_id, obj["query"], where)
    builder = GroupBuilder(group, fields)
    for position, record in enumerate(candidates):
        reject = _add(builder, record, position, where)
        if reject is not None:
            yield reject
    if group.documents:
        yield group


def _add(builder: GroupBuilder, record: Any, position: int, where: str) -> Reject | None:
    query_id = builder.group.query_id
    if not isinstance(record, (str, Mapping)):
        reason = f'a candidate must be a string or an object with "text", got {type(record).__name__}.'
        return Reject(where, query_id, reason, candidate=position)
    doc_id = candidate_id(record, position)
    try:
        document = record_document(record, position)
    except InvalidInputError as exc:
        return Reject(where, query_id, str(exc), doc_id, position)
    return builder.add(doc_id, document, where, position)

"""Disk-backed lookups that keep a batch job's memory flat: an id -> line index of a JSONL file, and a set of keys.

Why sqlite (standard library): a corpus of millions of documents cannot be held in memory, and the job needs random
access by id. One streaming pass records each line's byte offset under its id; a lookup then reads just those lines.
sqlite's page cache is bounded (a few MB), so memory does not grow with the corpus.

Example:
    >>> import json, tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "c.jsonl").write_text(json.dumps({"_id": "d1", "text": "Hi."}) + "\\n")
    >>> index = OffsetIndex.open(tmp / "c.jsonl", tmp / "c.sqlite", tmp / "rejects.jsonl")
    >>> index.records(["d1", "nope"])
    {'d1': {'_id': 'd1', 'text': 'Hi.'}}
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rankwise.batch._files import atomic_path, jsonl_dump, lock_file

if TYPE_CHECKING:  # typing.Self is 3.11+ (rankwise supports 3.10); type checkers ship typing_extensions
    from typing_extensions import Self

_CHUNK = 5_000  # rows per executemany; ids per SELECT ... IN (...) (sqlite allows 32766 variables)
_SCHEMA_VERSION = "1"


class OffsetIndex:
    """``id -> the JSON object on that line`` of a JSONL file (``_id`` or ``id``), read on demand.

    Built once by :meth:`open` (a later call reuses it while the file's size and mtime are unchanged). A line that
    is not a JSON object with an id, and a repeated id (the first line wins), are written to ``rejects`` as
    ``{"where", "query_id": null, "reason"}`` lines.
    """

    def __init__(self, source: Path, db_path: Path) -> None:
        self.source, self.db_path = source, db_path

    @classmethod
    def open(cls, source: str | Path, db_path: str | Path, rejects: str | Path) -> OffsetIndex:
        """The index of ``source`` stored at ``db_path``, built (with its ``rejects`` file) unless current."""
        source, db_path, rejects = Path(source), Path(db_path), Path(rejects)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_file(db_path.with_suffix(".lock")):  # Ray workers of one job may arrive here together
            if _stamp(db_path) != _identity(source):
                _build(source, db_path, rejects)
        return cls(source, db_path)

    def records(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The records of the ``ids`` found (missing ids are absent), each line read from the file once."""
        found: list[tuple[str, int, int]] = []
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            unique = list(dict.fromkeys(ids))
            for i in range(0, len(unique), _CHUNK):
                chunk = unique[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found += db.execute(f"SELECT id, offset, length FROM lines WHERE id IN ({marks})", chunk).fetchall()
        out: dict[str, dict[str, Any]] = {}
        with self.source.open("rb") as fh:
            for key, offset, length in sorted(found, key=lambda row: row[1]):  # forward reads
                fh.seek(offset)
                out[key] = json.loads(fh.read(length))
        return out


def _identity(source: Path) -> str:
    stat = source.stat()
    return f"{_SCHEMA_VERSION}:{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _stamp(db_path: Path) -> str | None:
    """The identity of the file an existing index was built from; None when there is no usable index."""
    if not db_path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def _line_id(line: bytes) -> tuple[str | None, str | None]:
    """``(id, None)`` for a JSON object line with an id, ``(None, reason)`` otherwise."""
    try:
        obj = json.loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError (not UTF-8) are both ValueErrors
        return None, f"not a JSON line ({exc})."
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}."
    raw = obj.get("_id", obj.get("id"))
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).strip():
        return None, 'missing "_id" (a string).'
    return str(raw), None


def numbered_lines(
    path: Path, start: int = 0, stop: int | None = None, first_line: int = 1
) -> Iterator[tuple[int, int, bytes]]:
    """``(line number, byte offset, line)`` of each non-blank line, read in binary one line at a time (a UTF-8 BOM
    skipped); ``start``/``stop``: only the bytes from ``start`` (a line's start, numbered ``first_line``) to
    ``stop``."""
    offset = start
    with path.open("rb") as fh:
        fh.seek(start)
        for number, raw in enumerate(fh, start=first_line):
            if stop is not None and offset >= stop:
                return
            begin, offset = offset, offset + len(raw)
            if begin == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw, begin = raw[3:], begin + 3
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield number, begin, line


def _build(source: Path, db_path: Path, rejects: Path) -> None:
    """One streaming pass over ``source``: offsets into a fresh sqlite file, bad lines into ``rejects``."""
    name = source.name
    with (
        atomic_path(db_path) as tmp_db,
        atomic_path(rejects) as tmp_rejects,
        tmp_rejects.open("w", encoding="utf-8") as bad,
        closing(sqlite3.connect(tmp_db)) as db,
    ):
        db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE lines (id TEXT, offset INTEGER, length INTEGER, line INTEGER);"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        )
        rows: list[tuple[str, int, int, int]] = []
        for number, start, line in numbered_lines(source):
            key, reason = _line_id(line)
            if key is None:
                bad.write(jsonl_dump({"where": f"{name}:{number}", "query_id": None, "reason": reason}) + "\n")
                continue
            rows.append((key, start, len(line), number))
            if len(rows) >= _CHUNK:
                db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?)", rows)
                rows.clear()
        db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?)", rows)
        _drop_duplicates(db, name, bad)
        db.execute("INSERT INTO meta VALUES ('identity', ?)", (_identity(source),))
        db.commit()


def _drop_duplicates(db: sqlite3.Connection, name: str, bad: Any) -> None:
    """Keep each id's first line; reject the others; then index the ids."""
    db.execute("CREATE INDEX by_id ON lines (id, line)")
    repeated = db.execute(
        "SELECT l.id, l.line, (SELECT MIN(line) FROM lines f WHERE f.id = l.id) AS first FROM lines l "
        "WHERE l.id IN (SELECT id FROM lines GROUP BY id HAVING COUNT(*) > 1) ORDER BY l.line"
    )
    for key, line, first in repeated.fetchall():
        if line != first:
            reason = f"duplicate id {key!r}; the first, at line {first}, is used."
            bad.write(jsonl_dump({"where": f"{name}:{line}", "query_id": None, "reason": reason}) + "\n")
    db.execute("DELETE FROM lines WHERE line > (SELECT MIN(line) FROM lines f WHERE f.id = lines.id)")


class SeenKeys:
    """A set of keys on disk: where each key was first seen. Used to find a query whose rows are not contiguous.

    Memory stays flat however many queries the input holds (a temporary sqlite file, removed on :meth:`close`).
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="rankwise-batch-")
        self._db = sqlite3.connect(os.path.join(self._dir.name, "seen.sqlite"))
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE seen (key PRIMARY KEY, first INTEGER);"
        )

    def first(self, key: str, place: int) -> int | None:
        """None the first time ``key`` is seen (it is recorded at ``place``); the recorded place afterwards."""
        cursor = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (key, place))
        if cursor.rowcount == 1:
            return None
        return int(self._db.execute("SELECT first FROM seen WHERE key = ?", (key,)).fetchone()[0])

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

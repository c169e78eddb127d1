"""The on-disk score cache of remote re-rankers (opt-in with ``cache_dir=``): one SQLite file per folder.

A score is stored under three BLAKE2b-128 digests: the *space* (provider, endpoint, model and the options that change
scores), the query and the document text. Texts are never stored, only their digests, so the file holds no document
content. A remote score depends on nothing but the (query, document) pair for the providers that use this cache
(``independent_scores``), so a hit is exactly what the provider would answer again.

Safe for the threads of one process (one connection behind a lock) and for several processes (SQLite's own locking,
write-ahead log, a busy timeout). A file that is not a cache fails with a message that names it and the fix.

Example:
    >>> import tempfile
    >>> cache = ScoreCache(tempfile.mkdtemp())
    >>> space, q = digest("cohere|https://api.cohere.com|rerank-v3.5|v2"), digest("lstm")
    >>> cache.put(space, q, {digest("gates"): 0.75})
    >>> cache.get(space, q, [digest("gates"), digest("pooling")])
    [0.75, None]
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from rankwise.errors import InvalidInputError

FILE_NAME = "remote-scores.sqlite3"
_CHUNK = 500  # digests per SELECT: under SQLite's limit on bound variables (999 in old builds)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS scores (space BLOB NOT NULL, query BLOB NOT NULL, document BLOB NOT NULL, "
    "score REAL NOT NULL, PRIMARY KEY (space, query, document)) WITHOUT ROWID"
)


def digest(text: str) -> bytes:
    """BLAKE2b-128 of ``text`` (UTF-8, lone surrogates kept): what the cache stores instead of the text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class ScoreCache:
    """Scores on disk, keyed by (space, query digest, document digest).

    Args:
        folder: where ``remote-scores.sqlite3`` lives (made if missing). Several re-rankers may share a folder:
            their spaces differ.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder).expanduser() / FILE_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one connection shared by the threads of a process (the lock below serialises its use)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise InvalidInputError(
                f"cannot use {str(self.path)!r} as the remote score cache ({type(exc).__name__}: {exc}); pass a "
                "writable cache_dir, or delete the file if it is not a rankwise cache."
            ) from exc
        self._lock = threading.Lock()

    def get(self, space: bytes, query: bytes, documents: Sequence[bytes]) -> list[float | None]:
        """The stored score of each document digest (None where there is none), in order."""
        found: dict[bytes, float] = {}
        unique = list(dict.fromkeys(documents))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT document, score FROM scores WHERE space = ? AND query = ? AND document IN ({marks})",
                    (space, query, *chunk),
                ).fetchall()
                found.update((bytes(d), float(s)) for d, s in rows)
        # a non-finite value can only come from a file edited by hand: treat it as absent, never hand it on
        return [s if (s := found.get(d)) is not None and math.isfinite(s) else None for d in documents]

    def put(self, space: bytes, query: bytes, scores: Mapping[bytes, float]) -> None:
        """Store ``document digest -> score`` for one query (in one transaction)."""
        rows = [(space, query, d, float(s)) for d, s in scores.items() if math.isfinite(s)]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        """Close the connection (a later call fails; make a new ScoreCache to use the file again)."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ScoreCache({str(self.path)!r})"

"""Small file helpers of the batch package: atomic writes, JSON lines that always encode, an inter-process lock.

Every file a batch job writes appears whole or not at all: it is written under a hidden temporary name in the same
folder (``.NAME.<random>.tmp``: readers such as ``pyarrow.dataset`` skip names starting with a dot), flushed to
disk, then renamed with :func:`os.replace`, which is atomic on POSIX and Windows. A job killed at any instant leaves
at most a temporary file, which :func:`remove_temporary` deletes when the job resumes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError

TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path to write; on a clean exit it is synced and renamed to ``final``, else removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}")
    try:
        yield tmp
        if tmp.exists():
            _fsync(tmp)
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync(path: Path) -> None:
    """Flush ``path`` to disk before it is renamed: after a power cut the final name never holds a partial file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporary(folder: Path) -> int:
    """Delete the temporary files a killed job left in ``folder``; returns how many."""
    if not folder.is_dir():
        return 0
    count = 0
    for path in folder.glob(f".*{TMP_SUFFIX}"):
        path.unlink(missing_ok=True)
        count += 1
    return count


def jsonl_dump(value: Any) -> str:
    """``value`` as one JSON line: readable non-ASCII, but ASCII escapes when a string holds a lone surrogate (which
    UTF-8 cannot carry); Unicode line separators are always escaped, so a reader never splits the line."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, default=str)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")


@contextmanager
def lock_file(path: Path, *, wait: bool = True, holder: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed). The operating system releases it when the process
    dies, so a job killed with SIGKILL never leaves a stale lock.

    ``wait=False``: raise :class:`InvalidInputError` at once when another process holds it (``holder`` says who
    that is, in the message). Without ``fcntl`` (Windows) the lock is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise InvalidInputError(
                f"{holder or str(path)!r} is in use by another running job; wait for it to finish (or stop it), "
                "then run again."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

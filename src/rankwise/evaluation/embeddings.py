"""Document embeddings kept on disk between evaluation runs.

A bi-encoder embeds each document once, whatever the query, and that is its whole cost. Evaluations re-rank
the same collection again and again (several configurations, tuning, the final benchmark), so the harness
stores each bi-encoder's document vectors under ``<cache>/embeddings/`` keyed by the model, its window and
prefix, and the SHA-1 of each text it embeds (a whole document, or each passage of a document longer than the
model's window), and loads them into the re-ranker before scoring. Only documents that some query's candidate list
holds are embedded.

Example:
    >>> store = EmbeddingStore("/tmp/rankwise-eval-cache")       # doctest: +SKIP
    >>> store.prepare(bi_encoder, texts, dataset="scifact")       # doctest: +SKIP
    {'computed': 4127, 'from_disk': 0}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rankwise.rerankers.base import Reranker

if TYPE_CHECKING:
    from rankwise.rerankers.bi_encoder import BiEncoderReranker

CHUNK = 512  # documents embedded between two saves (an interrupted run keeps its work)


def bi_encoders(reranker: Reranker) -> Iterator[BiEncoderReranker]:
    """Every bi-encoder in ``reranker``: itself, or the members of a composite (:meth:`~rankwise.Reranker.members`,
    recursively), each once, in order.

    The store is a bi-encoder's own cache (its model's settings, its ``preload`` and ``embed_documents``), so it
    picks bi-encoders by their class: an ability on every :class:`Reranker` for one backend's vectors would put a
    bi-encoder detail into the interface all backends share.
    """
    from rankwise.rerankers.bi_encoder import BiEncoderReranker

    seen: set[int] = set()

    def walk(r: Reranker) -> Iterator[BiEncoderReranker]:
        if id(r) in seen:
            return
        seen.add(id(r))
        if isinstance(r, BiEncoderReranker):
            yield r
        for member in r.members():
            yield from walk(member)

    yield from walk(reranker)


def _namespace(bi: BiEncoderReranker) -> str:
    key = {"model": bi.name, "max_length": bi.model.max_seq_length, "prefix": bi.document_prefix}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return f"{bi.name.replace('/', '__')}-{digest}"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingStore:
    """Vectors per (model settings, dataset) in ``<root>/embeddings/<model>-<hash>/<dataset>.npz``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "embeddings"

    def _path(self, bi: BiEncoderReranker, dataset: str) -> Path:
        return self.root / _namespace(bi) / f"{dataset}.npz"

    def _read(self, path: Path) -> dict[str, np.ndarray]:
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {k.decode("ascii"): v for k, v in zip(data["keys"], data["vectors"])}

    def _write(self, path: Path, fresh: dict[str, np.ndarray]) -> None:
        """Add ``fresh`` vectors to the file: read, merge and replace under a lock, so two processes filling
        the same store never drop each other's vectors."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")):
            vectors = self._read(path)
            vectors.update(fresh)
            tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
            keys = np.array([k.encode("ascii") for k in vectors], dtype="S40")  # hex: no NUL bytes to lose
            np.savez(tmp, keys=keys, vectors=np.stack(list(vectors.values())).astype(np.float32))
            os.replace(tmp, path)

    def prepare(
        self,
        bi: BiEncoderReranker,
        texts: Iterable[str],
        dataset: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Make ``bi`` hold the embedding of every text -- of each passage it scores the text by (a text longer
        than its window is scored by its best passage, :meth:`BiEncoderReranker.passages`) -- from disk when
        stored, else computed and stored.

        Returns ``{"computed": n, "from_disk": m}`` (counts of passages).
        """
        wanted = list(dict.fromkeys(p for ps in bi.passages(list(dict.fromkeys(texts))) for p in ps))
        path = self._path(bi, dataset)
        stored = self._read(path)
        have = [t for t in wanted if _key(t) in stored]
        if have:
            bi.preload(have, np.stack([stored[_key(t)] for t in have]))
        missing = [t for t in wanted if _key(t) not in stored]
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            self._write(path, {_key(t): v for t, v in zip(chunk, bi.embed_documents(chunk))})
            if progress is not None:
                progress(min(start + CHUNK, len(missing)), len(missing))
        return {"computed": len(missing), "from_disk": len(have)}


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``lock_path`` (POSIX ``flock``; no locking where fcntl does not
    exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


"""A searchable collection: passages, a BM25 index and a dense index, saved together under one versioned manifest.

Example:
    >>> from rankwise.retrieval import Index
    >>> index = Index.build([{"id": "a", "text": "LSTMs keep long-term memory."},
    ...                      {"id": "b", "text": "CNNs see images."}], dense=False)
    >>> index.search("lstm memory", top_k=1)[0].passage.doc_id
    'a'

Layout of a saved index folder::

    manifest.json      format + versions, splitter, BM25 and dense settings, counts, build timings
    passages.jsonl     one passage per line (id, doc_id, position, text, title, start, end, metadata)
    bm25/              bm25s's matrices + the token ids of every passage (for adding documents)
    dense/faiss.index  the FAISS index of the passage vectors
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rankwise.documents import DocumentLike, EmptyCorpusError, prepare_documents
from rankwise.errors import InvalidInputError
from rankwise.retrieval.bm25 import BM25Index
from rankwise.retrieval.dense import DenseIndex, Embedder
from rankwise.retrieval.errors import IndexCompatibilityError
from rankwise.retrieval.hybrid import Hit, HybridRetriever, Mode
from rankwise.retrieval.manifest import FORMAT, FORMAT_VERSION, check_model, read_manifest, write_manifest
from rankwise.retrieval.passages import Passage, PassageSplitter

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` while indexing; stage is ``"bm25"`` or ``"dense"``."""


class Index:
    """Passages plus the indexes that search them. Build with :meth:`build`, reopen with :meth:`load`.

    Args:
        splitter: how documents become passages.
        bm25: a :class:`BM25Index`, True for the default one, or None/False for none.
        dense: a :class:`DenseIndex`, True for the default (bundled all-MiniLM-L6-v2), or None/False for none.
    """

    def __init__(
        self,
        *,
        splitter: PassageSplitter | None = None,
        bm25: BM25Index | bool | None = True,
        dense: DenseIndex | bool | None = True,
    ) -> None:
        self.splitter = splitter or PassageSplitter()
        self.bm25: BM25Index | None = BM25Index() if bm25 is True else (None if bm25 is False else bm25)
        self.dense: DenseIndex | None = DenseIndex() if dense is True else (None if dense is False else dense)
        if self.bm25 is None and self.dense is None:
            raise InvalidInputError("an index needs BM25, dense, or both; got neither.")
        self.passages: list[Passage] = []
        self.doc_ids: set[str] = set()
        self.timings: dict[str, float] = {"split": 0.0, "bm25": 0.0, "dense": 0.0}
        self.created = _now()

    @classmethod
    def build(
        cls,
        docs: Iterable[DocumentLike],
        *,
        splitter: PassageSplitter | None = None,
        bm25: BM25Index | bool | None = True,
        dense: DenseIndex | bool | None = True,
        embedder: Embedder | None = None,
        progress: Progress | None = None,
    ) -> Index:
        """Split ``docs`` into passages and index them.

        Args:
            docs: strings, dicts or Documents (see :func:`~rankwise.documents.read_corpus` to read files).
            embedder: the embedding model for the dense index (default: bundled all-MiniLM-L6-v2).

        Raises:
            EmptyCorpusError: no document has any text.
        """
        if embedder is not None and dense is True:
            dense = DenseIndex(embedder)
        index = cls(splitter=splitter, bm25=bm25, dense=dense)
        index.add(docs, progress=progress)
        return index

    @property
    def default_mode(self) -> Mode:
        if self.bm25 is not None and self.dense is not None:
            return "hybrid"
        return "bm25" if self.bm25 is not None else "dense"

    def __len__(self) -> int:
        return len(self.passages)

    def add(self, docs: Iterable[DocumentLike], *, progress: Progress | None = None) -> int:
        """Split and index more documents without rebuilding: returns how many passages were added.

        Only the new passages are tokenized and embedded. Ids must be new. Documents whose text and title are both
        empty yield no passage. Searching is safe from many threads; adding is not safe while other threads search
        the same index (add to a copy loaded with :meth:`load`, then swap, for a live service).

        Raises:
            EmptyCorpusError: the index is empty and ``docs`` hold no text.
        """
        started = time.perf_counter()
        documents = prepare_documents(docs, existing_ids=self.doc_ids, start=len(self.doc_ids))
        passages = self.splitter.split_all(documents)
        if not passages:
            if not self.passages:
                raise EmptyCorpusError(
                    f"no text to index: got {len(documents)} document(s), all with empty text and title."
                )
            return 0
        self.timings["split"] += time.perf_counter() - started
        vectors = None
        if self.dense is not None:  # embed first: if the model fails, nothing has changed yet
            started = time.perf_counter()
            dense_progress = (lambda done, total: progress("dense", done, total)) if progress else None
            vectors = self.dense.embed_passages(passages, progress=dense_progress)
            self.timings["dense"] += time.perf_counter() - started
        if self.bm25 is not None:
            started = time.perf_counter()
            self.bm25.add(passages)
            self.timings["bm25"] += time.perf_counter() - started
            if progress is not None:
                progress("bm25", len(passages), len(passages))
        if self.dense is not None:
            self.dense.add(passages, vectors=vectors)
        self.passages.extend(passages)
        self.doc_ids.update(d.id for d in documents if d.id is not None)  # type: ignore[misc]
        return len(passages)

    def retriever(self, mode: Mode | None = None, **options: Any) -> HybridRetriever:
        """A :class:`HybridRetriever` over this index (``options``: method, weights, candidates, rrf_k)."""
        return HybridRetriever(self, mode=mode, **options)

    def search(self, query: str, top_k: int = 10, *, mode: Mode | None = None, **options: Any) -> list[Hit]:
        """The ``top_k`` best passages for ``query`` (hybrid when the index has both parts)."""
        return self.retriever(mode, **options).retrieve(query, top_k)

    def manifest(self) -> dict[str, Any]:
        """What :meth:`save` writes to ``manifest.json``."""
        from rankwise import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rankwise_version": __version__,
            "created": self.created,
            "updated": _now(),
            "splitter": self.splitter.to_dict(),
            "counts": {"documents": len(self.doc_ids), "passages": len(self.passages)},
            "bm25": None if self.bm25 is None else self.bm25.config(),
            "dense": None if self.dense is None else self.dense.config(),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the index to ``folder`` (replacing an index already there only once the new one is complete)."""
        target = Path(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; an index folder is an ordinary folder
        try:
            with (staging / "passages.jsonl").open("w", encoding="utf-8") as f:
                for p in self.passages:
                    f.write(_passage_json(p) + "\n")
            if self.bm25 is not None:
                self.bm25.save(staging / "bm25")
            if self.dense is not None:
                self.dense.save(staging / "dense")
            write_manifest(staging, self.manifest())
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(old)
            staging.rename(target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, folder: str | os.PathLike[str], *, embedder: Embedder | None = None) -> Index:
        """Open a saved index, checking its manifest (format, rankwise version, embedding model).

        Args:
            folder: the index folder.
            embedder: the embedding model to use for queries; it must be the one the index was built with
                (default: that model, loaded on the first dense query).

        Raises:
            IndexNotFoundError: no such folder, or no manifest in it.
            IndexCompatibilityError: another format version, a newer rankwise, another embedding model, or damage.
        """
        root = Path(folder)
        manifest = read_manifest(root)
        where = str(root)
        if embedder is not None:
            check_model(manifest, embedder.name, where)
        splitter = PassageSplitter(**manifest["splitter"])
        bm25 = BM25Index.load(root / "bm25", manifest["bm25"]) if manifest.get("bm25") else None
        dense = DenseIndex.load(root / "dense", manifest["dense"], embedder) if manifest.get("dense") else None
        index = cls(splitter=splitter, bm25=bm25, dense=dense)
        with (root / "passages.jsonl").open(encoding="utf-8") as f:
            index.passages = [Passage.from_dict(json.loads(line)) for line in f if line.strip()]
        index.doc_ids = {p.doc_id for p in index.passages}
        index.created = manifest.get("created", index.created)
        index.timings.update(manifest.get("timings") or {})
        expected = manifest.get("counts", {}).get("passages")
        for name, part in (("bm25", bm25), ("dense", dense)):
            if part is not None and len(part) != len(index.passages):
                raise IndexCompatibilityError(
                    f"index {where}: {name} holds {len(part)} passages but passages.jsonl has {len(index.passages)} "
                    f"(manifest: {expected}); the index is damaged: rebuild it with `rankwise index`."
                )
        return index

    def __repr__(self) -> str:
        parts = "+".join(n for n, p in (("bm25", self.bm25), ("dense", self.dense)) if p is not None)
        return f"Index({len(self.doc_ids)} documents, {len(self.passages)} passages, {parts})"


def _passage_json(p: Passage) -> str:
    try:
        return json.dumps(p.to_dict(), ensure_ascii=False)
    except TypeError as exc:
        raise InvalidInputError(
            f"document {p.doc_id!r}: its metadata cannot be saved as JSON ({exc}); keep metadata to JSON values "
            "(str, numbers, bools, None, lists, dicts)."
        ) from exc


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

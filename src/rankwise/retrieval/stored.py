"""Bi-encoder re-ranking from the vectors an index already holds.

Re-ranking retrieved passages with the same bi-encoder that embedded the index needs no new embedding: each
candidate's vector is in FAISS, and the query's was computed (and cached) by the dense search. This re-ranker gives the
scores :class:`~rankwise.rerankers.bi_encoder.BiEncoderReranker` would (cosine of the same unit vectors) at the cost of
a lookup. A candidate that is not a passage of the index (other id, or other text) is embedded as usual.

Example:
    >>> from rankwise.retrieval import Index                                         # doctest: +SKIP
    >>> index = Index.load("docs.index")                                             # doctest: +SKIP
    >>> hits = index.search("lstm memory", top_k=50)                                 # doctest: +SKIP
    >>> StoredVectorReranker(index).rank("lstm memory", [h.passage.to_document() for h in hits])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rankwise.documents import document_text
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document

if TYPE_CHECKING:
    from rankwise.retrieval.dense import Embedder
    from rankwise.retrieval.index import Index


class StoredVectorReranker(Reranker):
    """Cosine of the query's and each candidate's vector, taken from ``index``'s dense part when stored there.

    Registered as the ``stored-vectors`` backend: ``rankwise.load("docs.index", backend="stored-vectors")``.

    Args:
        index: an :class:`~rankwise.retrieval.index.Index` with a dense part, or the folder of a saved one.
        embedder: for a folder, the embedding model to open it with (default: the one it was built with, loaded on
            the first query); it must be the index's own model.
    """

    independent_scores: ClassVar[bool] = True  # a cosine per candidate

    def __init__(self, index: Index | str | os.PathLike[str], *, embedder: Embedder | None = None) -> None:
        if isinstance(index, (str, os.PathLike)):
            from rankwise.retrieval.index import Index

            index = Index.load(index, embedder=embedder)
        elif embedder is not None:
            raise InvalidInputError(
                "embedder= is for opening an index folder; a loaded Index already has its model (pass the folder, "
                "or leave embedder out)."
            )
        if index.dense is None:
            raise InvalidInputError("StoredVectorReranker needs an index with a dense part (built with dense=True).")
        self.index = index
        self.name = index.dense.model
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()

    def _position_map(self) -> dict[str, int]:
        passages = self.index.passages
        with self._lock:
            if len(self._positions) != len(passages):  # first use, or passages were added since
                self._positions = {p.id: i for i, p in enumerate(passages)}
            return self._positions

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        dense = self.index.dense
        assert dense is not None
        positions = self._position_map()
        passages = self.index.passages
        stored: list[int] = []
        rows: list[int] = []
        fresh: list[int] = []
        for i, doc in enumerate(documents):
            at = positions.get(str(doc.id)) if doc.id is not None else None
            if at is not None and passages[at].text == doc.text and passages[at].title == doc.title:
                stored.append(at)
                rows.append(i)
            else:
                fresh.append(i)
        vectors = np.zeros((len(documents), dense.dim or 0), dtype=np.float32)
        if stored:
            vectors[rows] = dense.vectors(stored)
        if fresh:
            texts = [document_text(documents[i], dense.fields) for i in fresh]
            vectors[fresh] = np.asarray(dense.embedder.embed_documents(texts), dtype=np.float32)
        scores = vectors @ dense.embed_query(query)
        if progress is not None:
            progress(len(documents), len(documents))
        return scores.astype(float).tolist()

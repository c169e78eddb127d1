"""First-stage retrieval: read documents, split them into passages, index them with BM25 and FAISS, search.

Example:
    >>> from rankwise.retrieval import Index, read_corpus                       # doctest: +SKIP
    >>> index = Index.build(read_corpus("docs/"))     # BM25 + all-MiniLM-L6-v2 vectors   # doctest: +SKIP
    >>> index.save("docs.index")                                                # doctest: +SKIP
    >>> index = Index.load("docs.index")                                        # doctest: +SKIP
    >>> for hit in index.search("how do transformers handle long inputs?", top_k=5):  # doctest: +SKIP
    ...     print(hit.rank, hit.passage.doc_id, hit.scores)

Names are imported lazily: ``import rankwise.retrieval`` imports neither bm25s, FAISS nor torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "read_corpus": "rankwise.retrieval.corpus",
    "prepare_documents": "rankwise.retrieval.corpus",
    "Passage": "rankwise.retrieval.passages",
    "PassageSplitter": "rankwise.retrieval.passages",
    "merge_passages": "rankwise.retrieval.passages",
    "BM25Index": "rankwise.retrieval.bm25",
    "DenseIndex": "rankwise.retrieval.dense",
    "Embedder": "rankwise.retrieval.dense",
    "load_embedder": "rankwise.retrieval.dense",
    "Hit": "rankwise.retrieval.hybrid",
    "HybridRetriever": "rankwise.retrieval.hybrid",
    "Retriever": "rankwise.retrieval.hybrid",
    "Index": "rankwise.retrieval.index",
    "StoredVectorReranker": "rankwise.retrieval.stored",
    "IndexNotFoundError": "rankwise.retrieval.errors",
    "IndexCompatibilityError": "rankwise.retrieval.errors",
    "EmptyCorpusError": "rankwise.retrieval.errors",
    "CorpusError": "rankwise.retrieval.errors",
    "FORMAT_VERSION": "rankwise.retrieval.manifest",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rankwise.retrieval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from rankwise.retrieval.bm25 import BM25Index
    from rankwise.retrieval.corpus import prepare_documents, read_corpus
    from rankwise.retrieval.dense import DenseIndex, Embedder, load_embedder
    from rankwise.retrieval.errors import (
        CorpusError,
        EmptyCorpusError,
        IndexCompatibilityError,
        IndexNotFoundError,
    )
    from rankwise.retrieval.hybrid import Hit, HybridRetriever, Retriever
    from rankwise.retrieval.index import Index
    from rankwise.retrieval.manifest import FORMAT_VERSION
    from rankwise.retrieval.passages import Passage, PassageSplitter, merge_passages
    from rankwise.retrieval.stored import StoredVectorReranker

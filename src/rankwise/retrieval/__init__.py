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

from typing import TYPE_CHECKING

from rankwise._lazy import by_name, lazy_attributes

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below imports each name
    from rankwise.documents import CorpusError, EmptyCorpusError, prepare_documents, read_corpus
    from rankwise.retrieval.bm25 import BM25Index
    from rankwise.retrieval.dense import DenseIndex, Embedder, load_embedder
    from rankwise.retrieval.errors import IndexCompatibilityError, IndexNotFoundError
    from rankwise.retrieval.hybrid import Hit, HybridRetriever, Retriever
    from rankwise.retrieval.index import Index
    from rankwise.retrieval.manifest import FORMAT_VERSION
    from rankwise.retrieval.passages import Passage, PassageSplitter, merge_passages
    from rankwise.retrieval.stored import StoredVectorReranker

_LAZY: dict[str, str] = by_name(
    {
        # documents are read by rankwise.documents, shared with the CLI and evaluation
        "rankwise.documents": ("read_corpus", "prepare_documents", "CorpusError", "EmptyCorpusError"),
        "rankwise.retrieval.passages": ("Passage", "PassageSplitter", "merge_passages"),
        "rankwise.retrieval.bm25": ("BM25Index",),
        "rankwise.retrieval.dense": ("DenseIndex", "Embedder", "load_embedder"),
        "rankwise.retrieval.hybrid": ("Hit", "HybridRetriever", "Retriever"),
        "rankwise.retrieval.index": ("Index",),
        "rankwise.retrieval.stored": ("StoredVectorReranker",),
        "rankwise.retrieval.errors": ("IndexNotFoundError", "IndexCompatibilityError"),
        "rankwise.retrieval.manifest": ("FORMAT_VERSION",),
    }
)

__all__ = list(_LAZY)


# PEP 562 hooks: each name is imported on first use, so importing this package stays light.
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)

"""LangChain adapters: any rankwise re-ranker as a document compressor, and a rankwise index as a retriever.

* :class:`RankwiseRerank` is a ``BaseDocumentCompressor``: put it in a ``ContextualCompressionRetriever`` (from
  ``langchain_classic.retrievers`` in LangChain 1.x, ``langchain.retrievers`` before) to re-rank what any retriever
  returns. Each returned document is a copy of the input with *all* its metadata plus the re-rank score under
  ``score_key`` (the inputs are not modified).
* :class:`RankwiseRetriever` is a ``BaseRetriever`` over a :class:`rankwise.retrieval.Index`.

Both have async variants (``acompress_documents``, ``ainvoke``) that run the model in a worker thread.

Example:
    >>> import rankwise
    >>> from langchain_core.documents import Document
    >>> from rankwise.integrations.langchain import RankwiseRerank
    >>> compressor = RankwiseRerank(reranker=rankwise.load("bm25"), top_n=1)
    >>> docs = [Document("CNNs see images.", metadata={"src": "a"}), Document("LSTMs keep memory.", metadata={"src": "b"})]
    >>> best = compressor.compress_documents(docs, "lstm memory")[0]
    >>> best.metadata["src"], round(best.metadata["relevance_score"], 3) > 0
    ('b', True)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from rankwise.errors import require
from rankwise.integrations._common import check_reranker, check_top_n, to_document

_documents = require("langchain_core.documents", "langchain", "The LangChain adapter")
_retrievers = require("langchain_core.retrievers", "langchain", "The LangChain adapter")
_pydantic = require("pydantic", "langchain", "The LangChain adapter")

LCDocument = _documents.Document


def _to_rankwise(doc: Any, title_key: str | None) -> Any:
    return to_document(doc.page_content, getattr(doc, "id", None), doc.metadata, title_key)


class RankwiseRerank(_documents.BaseDocumentCompressor):
    """Re-rank LangChain documents with any rankwise :class:`~rankwise.Reranker`.

    Attributes:
        reranker: the re-ranker (``rankwise.load("default")``, a cross-encoder, an LLM re-ranker...).
        top_n: documents to keep (None keeps all, re-ordered).
        score_key: the metadata key that receives the re-rank score (a score already there, e.g. from an earlier
            re-ranker, is replaced; every other key is kept).
        title_key: a metadata key whose string value is passed to the re-ranker as the title (None: no title).
    """

    model_config = _pydantic.ConfigDict(arbitrary_types_allowed=True)

    reranker: Any
    top_n: int | None = 3
    score_key: str = "relevance_score"
    title_key: str | None = "title"

    # The same rules and messages as the LlamaIndex adapter (see rankwise.integrations._common).
    _check_reranker = _pydantic.field_validator("reranker")(staticmethod(check_reranker))
    _check_top_n = _pydantic.field_validator("top_n")(staticmethod(check_top_n))

    def compress_documents(self, documents: Sequence[Any], query: str, callbacks: Any = None) -> Sequence[Any]:
        """The best ``top_n`` documents for ``query``, best first, each with its score in ``metadata``."""
        docs = list(documents)
        if not docs:
            return []
        ranked = self.reranker.rank(query, [_to_rankwise(d, self.title_key) for d in docs], top_k=self.top_n)
        return [
            docs[r.index].model_copy(update={"metadata": {**docs[r.index].metadata, self.score_key: r.score}})
            for r in ranked
        ]

    async def acompress_documents(
        self, documents: Sequence[Any], query: str, callbacks: Any = None
    ) -> Sequence[Any]:
        """Async :meth:`compress_documents` (the model runs in a worker thread)."""
        return await asyncio.to_thread(self.compress_documents, documents, query, callbacks)


class RankwiseRetriever(_retrievers.BaseRetriever):
    """A LangChain retriever over a rankwise :class:`~rankwise.retrieval.Index` (BM25, dense or hybrid).

    Each document's metadata holds the passage's document metadata plus ``doc_id``, ``passage_id``, ``position``,
    ``title``, ``retrieval_score`` and ``retrieval_scores`` (per stage); a key the document's own metadata also has
    keeps the document's value.
    """

    model_config = _pydantic.ConfigDict(arbitrary_types_allowed=True)

    index: Any
    top_k: int = 10
    mode: str | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Any]:
        hits = self.index.search(query, top_k=self.top_k, mode=self.mode)
        return [hit_to_document(h) for h in hits]

    async def _aget_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Any]:
        return await asyncio.to_thread(self._get_relevant_documents, query)


def hit_to_document(hit: Any) -> Any:
    """A LangChain ``Document`` for a retrieval :class:`~rankwise.retrieval.Hit`."""
    p = hit.passage
    ours = {
        "doc_id": p.doc_id, "passage_id": p.id, "position": p.position, "title": p.title,
        "retrieval_score": hit.score, "retrieval_scores": dict(hit.scores),
    }
    return LCDocument(page_content=p.text, metadata={**ours, **p.metadata}, id=p.id)

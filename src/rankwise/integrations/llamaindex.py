"""LlamaIndex adapters: any rankwise re-ranker as a node postprocessor, and a rankwise index as a retriever.

* :class:`RankwiseRerank` is a ``BaseNodePostprocessor`` (``node_postprocessors=[...]`` of a query engine). Each
  returned ``NodeWithScore`` carries the re-rank score as its ``score`` and a copy of the node whose metadata is
  *all* the original metadata plus ``rerank_score`` and ``retrieval_score`` (the score the node came in with). Those
  two keys are excluded from the LLM and embedding views of the node, and the input nodes are not modified.
* :class:`RankwiseRetriever` is a ``BaseRetriever`` over a :class:`rankwise.retrieval.Index`.

``apostprocess_nodes`` / ``aretrieve`` run the model in a worker thread.

Example:
    >>> import rankwise
    >>> from llama_index.core.schema import NodeWithScore, TextNode
    >>> from rankwise.integrations.llamaindex import RankwiseRerank
    >>> nodes = [NodeWithScore(node=TextNode(text="CNNs see images.", metadata={"src": "a"}), score=0.9),
    ...          NodeWithScore(node=TextNode(text="LSTMs keep memory.", metadata={"src": "b"}), score=0.1)]
    >>> best = RankwiseRerank(reranker=rankwise.load("bm25"), top_n=1).postprocess_nodes(nodes, query_str="lstm memory")
    >>> best[0].node.metadata["src"], best[0].node.metadata["retrieval_score"]
    ('b', 0.1)
"""

from __future__ import annotations

import asyncio
from typing import Any

from rankwise.errors import InvalidInputError, require
from rankwise.integrations._common import check_reranker, check_top_n, to_document

_post = require("llama_index.core.postprocessor.types", "llamaindex", "The LlamaIndex adapter")
_schema = require("llama_index.core.schema", "llamaindex", "The LlamaIndex adapter")
_retrievers = require("llama_index.core.retrievers", "llamaindex", "The LlamaIndex adapter")
_bridge = require("llama_index.core.bridge.pydantic", "llamaindex", "The LlamaIndex adapter")

_SCORE_KEYS = ("rerank_score", "retrieval_score")


def _with_scores(node: Any, extra: dict[str, Any]) -> Any:
    """A copy of ``node`` with ``extra`` added to its metadata, hidden from the LLM and embedding views."""
    return node.model_copy(update={
        "metadata": {**node.metadata, **extra},
        "excluded_llm_metadata_keys": list(dict.fromkeys([*node.excluded_llm_metadata_keys, *extra])),
        "excluded_embed_metadata_keys": list(dict.fromkeys([*node.excluded_embed_metadata_keys, *extra])),
    })


class RankwiseRerank(_post.BaseNodePostprocessor):
    """Re-rank LlamaIndex nodes with any rankwise :class:`~rankwise.Reranker`.

    Attributes:
        reranker: the re-ranker.
        top_n: nodes to keep (None keeps all, re-ordered).
        title_key: a metadata key whose string value is passed to the re-ranker as the title (None: no title).
    """

    model_config = _bridge.ConfigDict(arbitrary_types_allowed=True)

    reranker: Any = _bridge.Field(exclude=True)
    top_n: int | None = 3
    title_key: str | None = "title"

    # The same rules and messages as the LangChain adapter (see rankwise.integrations._common).
    _check_reranker = _bridge.field_validator("reranker")(staticmethod(check_reranker))
    _check_top_n = _bridge.field_validator("top_n")(staticmethod(check_top_n))

    @classmethod
    def class_name(cls) -> str:
        return "RankwiseRerank"

    def _postprocess_nodes(self, nodes: list[Any], query_bundle: Any = None) -> list[Any]:
        if query_bundle is None:
            raise InvalidInputError("RankwiseRerank needs the query: pass query_str= or query_bundle=.")
        if not nodes:
            return []
        text_only = _schema.MetadataMode.NONE  # the metadata travels separately, in Document.metadata
        docs = [
            to_document(
                n.node.get_content(metadata_mode=text_only), n.node.node_id, n.node.metadata, self.title_key
            )
            for n in nodes
        ]
        ranked = self.reranker.rank(query_bundle.query_str, docs, top_k=self.top_n)
        return [
            _schema.NodeWithScore(
                node=_with_scores(nodes[r.index].node, {"rerank_score": r.score, "retrieval_score": nodes[r.index].score}),
                score=r.score,
            )
            for r in ranked
        ]

    async def _apostprocess_nodes(self, nodes: list[Any], query_bundle: Any = None) -> list[Any]:
        return await asyncio.to_thread(self._postprocess_nodes, nodes, query_bundle)


class RankwiseRetriever(_retrievers.BaseRetriever):
    """A LlamaIndex retriever over a rankwise :class:`~rankwise.retrieval.Index` (BM25, dense or hybrid).

    Each node is a ``TextNode`` with the passage text, id ``passage_id`` and metadata: the document's metadata plus
    ``doc_id``, ``position`` and ``title`` (a key the document's own metadata also has keeps the document's value).
    """

    def __init__(self, index: Any, *, top_k: int = 10, mode: str | None = None, **kwargs: Any) -> None:
        self._index, self._top_k, self._mode = index, top_k, mode
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: Any) -> list[Any]:
        hits = self._index.search(query_bundle.query_str, top_k=self._top_k, mode=self._mode)
        return [hit_to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: Any) -> list[Any]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def hit_to_node(hit: Any) -> Any:
    """A LlamaIndex ``NodeWithScore`` for a retrieval :class:`~rankwise.retrieval.Hit`."""
    p = hit.passage
    ours = {"doc_id": p.doc_id, "position": p.position, "title": p.title}
    node = _schema.TextNode(id_=p.id, text=p.text, metadata={**ours, **p.metadata})
    return _schema.NodeWithScore(node=node, score=hit.score)

"""The LangChain compressor and the LlamaIndex postprocessor inside their own frameworks (langchain-core /
langchain-classic's ContextualCompressionRetriever, llama-index-core's RetrieverQueryEngine), backed by real rankwise
re-rankers: order, scores, and every piece of original metadata kept; async variants; the rankwise retrievers."""

from __future__ import annotations

import asyncio
import copy

import pytest

import rankwise
from tests.support.retrieval import bm25_index

QUERY = "lstm long-term memory"
TEXTS = [
    "Convolutional networks see images through local filters.",
    "LSTM networks keep long-term memory with gates and a cell state.",
    "Transformers use self-attention over the whole sequence.",
    "Memory in LSTM cells: the forget gate decides what long-term state to keep.",
]
METADATA = [
    {"source": "a.pdf", "page": 3, "tags": ["cv"], "nested": {"author": {"name": "X"}}, "score": 0.12},
    {"source": "b.pdf", "page": 1, "tags": ["rnn"], "nested": {"author": {"name": "Y"}}, "title": "LSTM"},
    {"source": "c.pdf", "page": 7, "tags": [], "nested": {}, "none": None},
    {"source": "d.pdf", "page": 2, "url": "http://x", "relevance": "high"},
]


@pytest.fixture(scope="module")
def bm25():
    return rankwise.load("bm25")


def expected_order(reranker) -> list[int]:
    return [r.index for r in reranker.rank(QUERY, TEXTS)]


# -- LangChain --------------------------------------------------------------------------------------------------------
def lc_docs():
    lc_documents = pytest.importorskip("langchain_core.documents")
    return [lc_documents.Document(page_content=t, metadata=copy.deepcopy(m), id=f"id{i}")
            for i, (t, m) in enumerate(zip(TEXTS, METADATA))]


def check_lc_output(out, reranker, top_n, originals):
    from rankwise.types import Document

    order = [r.index for r in reranker.rank(
        QUERY, [Document(d.page_content, title=d.metadata.get("title")) for d in originals])]
    assert [d.page_content for d in out] == [TEXTS[i] for i in order[:top_n]]
    scores = [d.metadata["relevance_score"] for d in out]
    assert scores == sorted(scores, reverse=True) and all(isinstance(s, float) for s in scores)
    for d in out:
        i = TEXTS.index(d.page_content)
        assert d.id == f"id{i}"
        assert {k: v for k, v in d.metadata.items() if k != "relevance_score"} == METADATA[i]
    assert [d.metadata for d in originals] == METADATA  # inputs untouched


def test_langchain_compressor_keeps_all_metadata(bm25):
    docs = lc_docs()
    from rankwise.integrations.langchain import RankwiseRerank

    compressor = RankwiseRerank(reranker=bm25, top_n=3)
    check_lc_output(compressor.compress_documents(docs, QUERY), bm25, 3, docs)
    check_lc_output(asyncio.run(compressor.acompress_documents(docs, QUERY)), bm25, 3, docs)
    assert len(RankwiseRerank(reranker=bm25, top_n=None).compress_documents(docs, QUERY)) == 4
    assert RankwiseRerank(reranker=bm25).compress_documents([], QUERY) == []


def test_langchain_compressor_validates_its_fields(bm25):
    pytest.importorskip("langchain_core")
    from rankwise.integrations.langchain import RankwiseRerank

    with pytest.raises(ValueError, match="Reranker"):
        RankwiseRerank(reranker="bm25")
    with pytest.raises(ValueError, match="top_n"):
        RankwiseRerank(reranker=bm25, top_n=0)
    out = RankwiseRerank(reranker=bm25, score_key="rw").compress_documents(lc_docs(), QUERY)
    assert "rw" in out[0].metadata and "relevance_score" not in out[0].metadata


def test_langchain_contextual_compression_retriever(bm25):
    pytest.importorskip("langchain_core")
    retrievers = pytest.importorskip("langchain_classic.retrievers")
    from langchain_core.retrievers import BaseRetriever

    from rankwise.integrations.langchain import RankwiseRerank

    class FixedRetriever(BaseRetriever):
        """A first stage that returns the same documents for any query."""

        def _get_relevant_documents(self, query, *, run_manager=None):
            return lc_docs()

    pipeline = retrievers.ContextualCompressionRetriever(
        base_compressor=RankwiseRerank(reranker=bm25, top_n=2), base_retriever=FixedRetriever()
    )
    check_lc_output(pipeline.invoke(QUERY), bm25, 2, lc_docs())
    check_lc_output(asyncio.run(pipeline.ainvoke(QUERY)), bm25, 2, lc_docs())


def test_langchain_retriever_over_a_rankwise_index(bi_encoder):
    pytest.importorskip("langchain_core")
    from rankwise.integrations.langchain import RankwiseRerank, RankwiseRetriever

    index = bm25_index("medline")
    base = RankwiseRetriever(index=index, top_k=20)
    docs = base.invoke("lung cancer surgery")
    assert len(docs) == 20 and docs[0].metadata["passage_id"] == docs[0].id
    assert {"doc_id", "position", "retrieval_score", "retrieval_scores"} <= set(docs[0].metadata)
    assert [d.id for d in asyncio.run(base.ainvoke("lung cancer surgery"))] == [d.id for d in docs]
    retrievers = pytest.importorskip("langchain_classic.retrievers")
    compressed = retrievers.ContextualCompressionRetriever(
        base_compressor=RankwiseRerank(reranker=bi_encoder, top_n=5), base_retriever=base
    ).invoke("lung cancer surgery")
    assert len(compressed) == 5 and {d.id for d in compressed} <= {d.id for d in docs}
    for d in compressed:  # the first stage's metadata survives the re-ranker
        original = next(o for o in docs if o.id == d.id)
        assert {k: v for k, v in d.metadata.items() if k != "relevance_score"} == original.metadata


# -- LlamaIndex -------------------------------------------------------------------------------------------------------
def li_nodes():
    li_schema = pytest.importorskip("llama_index.core.schema")
    return [li_schema.NodeWithScore(node=li_schema.TextNode(id_=f"n{i}", text=t, metadata=copy.deepcopy(m)),
                                    score=0.5 - i / 10)
            for i, (t, m) in enumerate(zip(TEXTS, METADATA))]


def check_li_output(out, reranker, top_n, originals):
    from llama_index.core.schema import MetadataMode

    from rankwise.types import Document

    order = [r.index for r in reranker.rank(
        QUERY, [Document(n.node.text, title=n.node.metadata.get("title")) for n in originals])]
    assert [n.node.text for n in out] == [TEXTS[i] for i in order[:top_n]]
    assert [n.score for n in out] == sorted((n.score for n in out), reverse=True)
    for n in out:
        i = TEXTS.index(n.node.text)
        assert n.node.node_id == f"n{i}"
        assert n.node.metadata["rerank_score"] == n.score
        assert n.node.metadata["retrieval_score"] == pytest.approx(0.5 - i / 10)
        assert {k: v for k, v in n.node.metadata.items() if k not in ("rerank_score", "retrieval_score")} == METADATA[i]
        llm_view = n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "rerank_score" not in llm_view and "source: " in llm_view  # scores hidden from the prompt
    assert [n.node.metadata for n in originals] == METADATA and [n.score for n in originals] == [
        pytest.approx(0.5 - i / 10) for i in range(4)]


def test_llamaindex_postprocessor_keeps_all_metadata(bm25):
    nodes = li_nodes()
    from rankwise.integrations.llamaindex import RankwiseRerank

    post = RankwiseRerank(reranker=bm25, top_n=3)
    check_li_output(post.postprocess_nodes(nodes, query_str=QUERY), bm25, 3, nodes)
    check_li_output(asyncio.run(post.apostprocess_nodes(nodes, query_str=QUERY)), bm25, 3, nodes)
    assert post.postprocess_nodes([], query_str=QUERY) == []
    with pytest.raises(ValueError, match="query"):
        post.postprocess_nodes(nodes)
    with pytest.raises(ValueError, match="Reranker"):
        RankwiseRerank(reranker=None)


def test_llamaindex_query_engine_with_a_custom_retriever(bm25):
    pytest.importorskip("llama_index.core")
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.retrievers import BaseRetriever

    from rankwise.integrations.llamaindex import RankwiseRerank

    class FixedRetriever(BaseRetriever):
        def _retrieve(self, query_bundle):
            return li_nodes()

    engine = RetrieverQueryEngine.from_args(  # MockLLM echoes its prompt: we see the context the LLM would get
        FixedRetriever(), node_postprocessors=[RankwiseRerank(reranker=bm25, top_n=2)], llm=_mock_llm(),
    )
    response = engine.query(QUERY)
    check_li_output(response.source_nodes, bm25, 2, li_nodes())
    prompt = str(response)
    assert all(n.node.text in prompt for n in response.source_nodes)
    assert "rerank_score" not in prompt and "retrieval_score" not in prompt and "source: b.pdf" in prompt
    check_li_output(asyncio.run(engine.aquery(QUERY)).source_nodes, bm25, 2, li_nodes())


def test_llamaindex_retriever_over_a_rankwise_index(bi_encoder):
    pytest.importorskip("llama_index.core")
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rankwise.integrations.llamaindex import RankwiseRerank, RankwiseRetriever

    index = bm25_index("medline")
    retriever = RankwiseRetriever(index, top_k=20)
    nodes = retriever.retrieve("lung cancer surgery")
    assert len(nodes) == 20 and nodes[0].node.node_id == index.search("lung cancer surgery", 1)[0].passage.id
    engine = RetrieverQueryEngine.from_args(
        retriever, node_postprocessors=[RankwiseRerank(reranker=bi_encoder, top_n=4)], llm=_mock_llm()
    )
    sources = engine.query("lung cancer surgery").source_nodes
    assert len(sources) == 4
    by_id = {n.node.node_id: n for n in nodes}
    for s in sources:
        first = by_id[s.node.node_id]
        assert s.node.metadata["retrieval_score"] == first.score and s.node.metadata["doc_id"] == first.node.metadata["doc_id"]
    assert [n.node.node_id for n in asyncio.run(retriever.aretrieve("lung cancer surgery"))] == list(by_id)


def _mock_llm():
    from llama_index.core.llms import MockLLM

    return MockLLM()

"""The dense (FAISS) index and hybrid retrieval with the real bundled all-MiniLM-L6-v2 on adi (and medline, slow):
recall on the qrels, save/load, the embedding-model and dimension checks, and adding documents without a rebuild."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from rankwise.retrieval import DenseIndex, HybridRetriever, Index, IndexCompatibilityError, read_corpus
from rankwise.retrieval.dense import BUNDLED_MODEL
from tests.support.retrieval import collection, hybrid_index, mean_recall, queries


@pytest.fixture(scope="module")
def adi(bi_encoder):
    return hybrid_index("adi", bi_encoder)


def test_dense_and_hybrid_recall_on_adi(adi):
    assert adi.dense.model == BUNDLED_MODEL and adi.dense.dim == 384 and len(adi.dense) == len(adi)
    # measured here: recall@10 bm25 0.51, dense 0.60, hybrid 0.60 (35 queries); floors well below
    bm25 = mean_recall(lambda q: adi.search(q, 30, mode="bm25"), "adi", 10)
    dense = mean_recall(lambda q: adi.search(q, 30, mode="dense"), "adi", 10)
    hybrid = mean_recall(lambda q: adi.search(q, 30), "adi", 10)
    assert dense > 0.45 and hybrid > 0.45
    assert hybrid >= min(bm25, dense)


def test_hybrid_hits_carry_every_stage_score(adi):
    hits = adi.search(queries("adi")["3"], top_k=5)
    assert all(set(h.scores) == {"bm25", "dense", "hybrid"} and h.score == h.scores["hybrid"] for h in hits)
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    dense_only = {h.passage.id: h.score for h in adi.search(queries("adi")["3"], 100, mode="dense")}
    for h in hits:  # the dense score reported for a fused hit is its real cosine
        assert h.scores["dense"] == pytest.approx(dense_only[h.passage.id], abs=1e-5)


def test_fusion_methods_and_weights(adi):
    q = queries("adi")["7"]
    for method in ("zscore", "minmax", "rrf"):
        assert len(HybridRetriever(adi, method=method).retrieve(q, 10)) == 10
    only_bm25 = HybridRetriever(adi, weights=(1.0, 0.0), candidates=200).retrieve(q, 5)
    assert [h.passage.id for h in only_bm25] == [h.passage.id for h in adi.search(q, 5, mode="bm25")]
    with pytest.raises(ValueError, match="weights"):
        HybridRetriever(adi, weights=(0, 0))
    with pytest.raises(ValueError, match="method"):
        HybridRetriever(adi, method="max")


def test_save_load_round_trip_and_lazy_model(adi, tmp_path, bi_encoder):
    folder = adi.save(tmp_path / "idx")
    loaded = Index.load(folder)  # no embedder given: the manifest's model is loaded on the first dense query
    assert loaded.dense._embedder is None
    q = queries("adi")["1"]
    assert loaded.search(q, 5, mode="bm25") == adi.search(q, 5, mode="bm25")
    assert loaded.dense._embedder is None  # BM25 search never loads the embedding model
    with_model = Index.load(folder, embedder=bi_encoder)
    assert [h.passage.id for h in with_model.search(q, 10)] == [h.passage.id for h in adi.search(q, 10)]
    np.testing.assert_allclose(
        [h.score for h in with_model.search(q, 10)], [h.score for h in adi.search(q, 10)], rtol=1e-5
    )


def test_load_with_another_embedding_model_is_refused(adi, tmp_path):
    folder = adi.save(tmp_path / "idx")

    class OtherModel:
        name = "intfloat/e5-small-v2"

        def embed_documents(self, texts):
            return np.zeros((len(texts), 384), dtype=np.float32)

        def embed_query(self, query):
            return np.zeros(384, dtype=np.float32)

    with pytest.raises(IndexCompatibilityError, match="embedded with 'sentence-transformers/all-MiniLM-L6-v2'.*"
                                                      "'intfloat/e5-small-v2'"):
        Index.load(folder, embedder=OtherModel())


def test_a_model_of_another_dimension_is_refused_at_the_first_query(adi, tmp_path):
    folder = adi.save(tmp_path / "idx")

    class Wrong:  # same name, 8-d vectors: e.g. a different checkpoint saved under the same name
        name = BUNDLED_MODEL

        def embed_documents(self, texts):
            return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)

        def embed_query(self, query):
            return np.ones(8, dtype=np.float32) / np.sqrt(8)

    loaded = Index.load(folder, embedder=Wrong())
    with pytest.raises(IndexCompatibilityError, match="8-dimensional vectors but the index holds 384-d"):
        loaded.search("information", mode="dense")
    with pytest.raises(IndexCompatibilityError, match="8-dimensional"):
        loaded.add(["new text here"])
    assert len(loaded) == len(adi) and len(loaded.bm25) == len(adi)  # a failed add changes nothing


def test_add_documents_without_rebuilding(bi_encoder, tmp_path):
    docs = read_corpus(collection("adi") / "corpus.jsonl")
    full = hybrid_index("adi", bi_encoder)
    part = Index.build(docs[:50], embedder=bi_encoder)
    part.save(tmp_path / "idx")
    reopened = Index.load(tmp_path / "idx", embedder=bi_encoder)
    reopened.add(docs[50:])
    assert reopened.passages == full.passages and len(reopened.dense) == len(full.dense)
    ids = np.arange(len(full))
    np.testing.assert_allclose(
        reopened.dense._index.reconstruct_batch(ids), full.dense._index.reconstruct_batch(ids), atol=1e-5
    )
    q = queries("adi")["5"]
    assert [h.passage.id for h in reopened.search(q, 10)] == [h.passage.id for h in full.search(q, 10)]


def test_embedder_protocol_is_checked():
    with pytest.raises(ValueError, match="embed_documents"):
        DenseIndex(embedder=object())


def test_import_rankwise_retrieval_does_not_import_torch():
    import subprocess

    code = ("import rankwise.retrieval, rankwise.rag, rankwise.rag.pipeline, sys; "
            "print('torch' in sys.modules, 'faiss' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.slow
def test_dense_and_hybrid_recall_on_medline(bi_encoder):
    index = hybrid_index("medline", bi_encoder)
    bm25 = mean_recall(lambda q: index.search(q, 300, mode="bm25"), "medline", 100)
    dense = mean_recall(lambda q: index.search(q, 300, mode="dense"), "medline", 100)
    hybrid = mean_recall(lambda q: index.search(q, 300, candidates=300), "medline", 100)
    assert dense > 0.5 and hybrid > 0.65
    assert hybrid >= min(bm25, dense)


def test_stored_vector_reranker_gives_the_bi_encoders_scores_without_embedding(adi, bi_encoder):
    from rankwise.cli.search import build_reranker
    from rankwise.rerankers.fusion import FusionReranker
    from rankwise.rerankers.lexical import BM25Reranker
    from rankwise.retrieval import StoredVectorReranker
    from rankwise.types import Document

    q = queries("adi")["2"]
    docs = [h.passage.to_document() for h in adi.search(q, 20)]
    docs.append(Document("a candidate that is not in the index about indexing", id="outside"))
    stored = StoredVectorReranker(adi)
    np.testing.assert_allclose(stored.score(q, docs), bi_encoder.score(q, docs), atol=1e-4)
    fused = build_reranker("default", adi)
    assert isinstance(fused.bi_encoder, StoredVectorReranker)
    from rankwise.registry import presets

    default = presets()["default"].options  # the same method and weights as the shipped preset
    # Given the index, the default keeps BM25 over the candidates (rankwise.retrieval.presets says why)
    assert fused.signals_for(docs) == ("candidate-bm25", bi_encoder.name)
    reference = FusionReranker([BM25Reranker(), bi_encoder], method=default["method"], weights=default["weights"])
    np.testing.assert_allclose(fused.score(q, docs), reference.score(q, docs), atol=1e-3)
    assert isinstance(build_reranker("minilm-bi-encoder", adi), StoredVectorReranker)
    assert build_reranker("none", adi) is None


def test_pipeline_given_a_preset_name_uses_the_index(adi):
    from rankwise.rag.pipeline import Pipeline
    from rankwise.retrieval import StoredVectorReranker
    from rankwise.types import Document

    q = queries("adi")["2"]
    pipeline = Pipeline(adi, "default", top_k=20, top_n=3)
    docs = [h.passage.to_document() for h in adi.search(q, 20)]
    assert isinstance(pipeline.reranker.bi_encoder, StoredVectorReranker)
    assert pipeline.reranker.signals_for(docs)[0] == "candidate-bm25"
    # a candidate list that carries its first-stage score still uses it first (rule 1 of the default)
    carried = [Document(d.text, id=d.id, title=d.title, metadata={**d.metadata, "first_stage_score": float(i)})
               for i, d in enumerate(docs)]
    assert pipeline.reranker.signals_for(carried)[0] == "first-stage-score"
    result = pipeline.run(q)
    assert len(result.passages) == 3 and all("rerank" in c.scores for c in result.passages)
    assert isinstance(Pipeline(adi, "minilm-bi-encoder").reranker, StoredVectorReranker)


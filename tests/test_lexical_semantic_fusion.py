import numpy as np
import pytest

import rankwise
from rankwise import BM25Reranker, Document, FusionReranker, InvalidInputError
from rankwise.rerankers.fusion import fuse, reciprocal_ranks

from .conftest import SEED_DOCS, SEED_QUERY


def test_bm25_prefers_the_document_sharing_query_terms():
    results = BM25Reranker().rank("lstm long-term memory", ["cnn filters images", "an lstm keeps long-term memory"])
    assert results[0].index == 1 and results[0].score > 0 and results[1].score == 0


def test_bm25_stems_and_drops_stop_words():
    bm25 = BM25Reranker()
    assert bm25.tokenize(["The networks are remembering"])[0] == ["network", "rememb"]
    assert bm25.score("the and of", ["the cat", "of mice"]) == [0.0, 0.0]


def test_bm25_uses_the_chosen_fields():
    docs = [{"name": "waterproof hiking boot", "body": "leather"}, {"name": "sandal", "body": "waterproof strap"}]
    by_name = BM25Reranker(fields=("name",)).rank("waterproof boot", docs)
    assert by_name[0].index == 0 and by_name[1].score == 0  # "waterproof" is only in the unused body
    assert BM25Reranker(fields=("body",)).rank("waterproof boot", docs)[0].index == 1


def test_bm25_rejects_bad_parameters():
    with pytest.raises(InvalidInputError, match="k1 >= 0"):
        BM25Reranker(k1=-1)
    with pytest.raises(InvalidInputError, match="unknown stemmer language 'klingon'"):
        BM25Reranker(stemmer="klingon")


def test_bi_encoder_puts_lstm_first_on_the_seed_example(bi_encoder):
    results = bi_encoder.rank(SEED_QUERY, SEED_DOCS)
    assert results[0].index == 0
    assert -1.0 <= min(results.scores) and max(results.scores) <= 1.0


def test_bi_encoder_caches_document_vectors(bi_encoder):
    first = bi_encoder.embed_documents(SEED_DOCS)
    assert all(d in bi_encoder._cache for d in SEED_DOCS)
    np.testing.assert_allclose(bi_encoder.embed_documents(SEED_DOCS), first)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


def test_rrf_matches_hand_computed_values():
    np.testing.assert_allclose(reciprocal_ranks(np.array([0.2, 0.9, 0.2]), k=60), [1 / 62, 1 / 61, 1 / 63])
    fused = fuse([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0]], [1.0, 1.0], "rrf", rrf_k=1)
    np.testing.assert_allclose(fused, [1 / 2 + 1 / 4, 1 / 4 + 1 / 2, 1 / 3 + 1 / 3])


def test_zscore_fusion_weights_members():
    fused = fuse([[0.0, 2.0], [10.0, 0.0]], [1.0, 3.0], "zscore")
    np.testing.assert_allclose(fused, [-1 + 3 * 1, 1 + 3 * -1])
    np.testing.assert_allclose(fuse([[5.0, 5.0]], [1.0], "zscore"), [0.0, 0.0])  # constant scores carry no signal
    np.testing.assert_allclose(fuse([[1.0, 3.0]], [1.0], "minmax"), [0.0, 1.0])


def test_fusion_is_a_reranker_and_keeps_documents():
    meta = {"k": 1}
    fused = FusionReranker([BM25Reranker(), BM25Reranker(k1=1.2, b=0.75)], weights=[1, 2])
    results = fused.rank("lstm memory", [Document("cnn images", id="a"), Document("lstm memory", id="b", metadata=meta)])
    assert results[0].document.id == "b" and results[0].document.metadata is meta
    assert results.model == "zscore(bm25+bm25)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "borda"}, "method must be one of"), ({"weights": [1]}, "weights must be 2"),
     ({"weights": [0, 0]}, "not all zero"), ({"rrf_k": 0}, "rrf_k must be > 0")],
)
def test_fusion_options_are_checked(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        FusionReranker([BM25Reranker(), BM25Reranker()], **kwargs)


def test_default_preset_is_offline_and_ranks_the_seed_example():
    reranker = rankwise.load("default")
    results = reranker.rank(SEED_QUERY, SEED_DOCS)
    assert results[0].index == 0
    assert "bm25" in results.model and "MiniLM" in results.model


def test_bi_encoder_preload_serves_given_vectors_without_a_forward_pass(bi_encoder):
    vectors = bi_encoder.embed_documents(SEED_DOCS[:2])
    aliases = ["preload alias one (never embedded)", "preload alias two (never embedded)"]
    given = vectors.copy()
    assert bi_encoder.preload(aliases, given) == 2
    given[:] = 0.0  # the cache holds a copy: changing the caller's array afterwards changes nothing
    query = bi_encoder.embed_query(SEED_QUERY)
    np.testing.assert_allclose(bi_encoder.score(SEED_QUERY, aliases), vectors @ query, rtol=1e-6)


@pytest.mark.parametrize(
    ("texts", "vectors", "message"),
    [
        (["a", "b"], np.ones((1, 384), np.float32) / np.sqrt(384), "got 2 texts and vectors of shape"),
        (["a"], np.ones((1, 3), np.float32) / np.sqrt(3), "3 dimensions"),
        (["a"], np.ones((1, 384), np.float32), "unit length"),
        (["a"], np.full((1, 384), np.nan, np.float32), "NaN"),
        ([7], np.ones((1, 384), np.float32) / np.sqrt(384), "must be strings"),
    ],
)
def test_bi_encoder_preload_rejects_bad_vectors(bi_encoder, texts, vectors, message):
    with pytest.raises(InvalidInputError, match=message):
        bi_encoder.preload(texts, vectors)


def test_hybrid_preset_fuses_the_first_stage_score_with_the_bi_encoder(bi_encoder):
    docs = [{"text": t, "first_stage_score": s} for t, s in zip(SEED_DOCS, (2.0, 9.0, 4.0))]
    hybrid = rankwise.load("hybrid")
    bi = np.array(bi_encoder.score(SEED_QUERY, SEED_DOCS))
    first = np.array([2.0, 9.0, 4.0])
    expected = (first - first.mean()) / first.std() + 2.5 * (bi - bi.mean()) / bi.std()
    np.testing.assert_allclose(hybrid.score(SEED_QUERY, docs), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(InvalidInputError, match="first_stage_score"):
        hybrid.score(SEED_QUERY, SEED_DOCS)


def test_bi_encoder_reuses_a_query_vector_and_hands_out_copies(bi_encoder):
    query = "query cache probe: how do gates keep memory?"
    first = bi_encoder.embed_query(query)
    first[:] = 0.0  # the caller's copy; the cached vector must not change
    again = bi_encoder.embed_query(query)
    np.testing.assert_allclose(np.linalg.norm(again), 1.0, atol=1e-5)
    np.testing.assert_array_equal(again, bi_encoder._encode([query])[0])
    assert query in bi_encoder._query_cache

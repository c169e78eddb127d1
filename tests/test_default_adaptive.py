"""The ``default`` preset chooses its lexical signal per call: first-stage score, corpus BM25, or candidate BM25.

Most tests use cheap real members (BM25, a metadata score) in place of the bi-encoder, so they test the choice and
the fusion without a model; a few use the bundled all-MiniLM-L6-v2 through ``rankwise.load("default")``.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.rerankers.adaptive import (
    CANDIDATES,
    CORPUS,
    FIRST_STAGE,
    AdaptiveDefaultReranker,
    usable_score,
)
from rankwise.rerankers.corpus_bm25 import CorpusBM25Reranker, CorpusStats
from rankwise.rerankers.fusion import FusionReranker
from rankwise.rerankers.lexical import BM25Reranker
from rankwise.rerankers.metadata_score import MetadataScoreReranker

from .support.fuzzing import fuzz_settings

CORPUS_TEXTS = [
    "Long short-term memory networks keep memory across long sequences.",
    "Convolutional networks see images and learn filters.",
    "Memory chips store bits; memory is cheap today.",
    "Transformers attend to every token of a sequence.",
    "Recurrent networks process sequences one token at a time.",
    "Gradient descent trains networks by following the gradient.",
    "The attention mechanism weighs tokens by relevance.",
    "",  # an empty document still counts in N, as bm25s counts it
    "Sequence to sequence models translate sentences.",
    "Images are grids of pixels; pixels hold colours.",
    "Vanishing gradients hurt recurrent networks on long sequences.",
    "the of and",  # only stop words: length 0 after tokenizing
]
QUERIES = [
    "long memory networks",
    "memory memory sequence",  # a repeated token counts twice, as in bm25s
    "pixels and colours of images",
    "quantum entanglement",  # no token in the corpus: all zeros
    "gradient in recurrent networks",
]


def _semantic() -> MetadataScoreReranker:
    """A cheap, real stand-in for the bi-encoder: each document's ``sem`` metadata number."""
    return MetadataScoreReranker(field="sem", name="sem")


def _adaptive(corpus: CorpusStats | None = None) -> AdaptiveDefaultReranker:
    return AdaptiveDefaultReranker(
        _semantic(), candidate_bm25=BM25Reranker(),
        corpus_bm25=None if corpus is None else CorpusBM25Reranker(corpus),
    )


def _docs(texts: list[str], first_stage: list[object] | None = None) -> list[dict]:
    docs = []
    for i, text in enumerate(texts):
        doc: dict = {"text": text or "empty", "id": f"d{i}", "sem": float((i * 7) % 5)}
        if first_stage is not None and first_stage[i] is not ...:
            doc["first_stage_score"] = first_stage[i]
        docs.append(doc)
    return docs


# -- corpus BM25 -----------------------------------------------------------------------------------------------------


def test_corpus_bm25_equals_bm25s_over_the_whole_corpus():
    import bm25s

    tokenizer = BM25Reranker()
    index = bm25s.BM25(k1=0.9, b=0.4)
    index.index(tokenizer.tokenize(CORPUS_TEXTS), show_progress=False)
    scorer = CorpusBM25Reranker(CorpusStats.from_documents(CORPUS_TEXTS))
    picked = [0, 2, 4, 7, 9, 10, 11]  # a candidate subset: its scores are the corpus's, not the subset's
    for query in QUERIES:
        tokens = [t for t in tokenizer.tokenize([query])[0] if t in index.vocab_dict]
        full = np.asarray(index.get_scores(tokens)) if tokens else np.zeros(len(CORPUS_TEXTS))
        ours = scorer.score(query, [CORPUS_TEXTS[i] for i in picked])
        np.testing.assert_allclose(ours, full[picked], rtol=1e-5, atol=1e-6, err_msg=query)
    assert scorer.score("long memory networks", [CORPUS_TEXTS[0]])[0] > 0


_WORDS = ["memory", "memories", "network", "networks", "long", "the", "of", "lstm", "pixel", "café", "Ωmega", "a1b2"]


@fuzz_settings(40)
@given(
    corpus=st.lists(st.lists(st.sampled_from(_WORDS), max_size=12).map(" ".join), min_size=1, max_size=12),
    query=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=5).map(" ".join),
    k1=st.sampled_from([0.0, 0.9, 1.5]),
    b=st.sampled_from([0.0, 0.4, 1.0]),
)
def test_fuzz_corpus_bm25_equals_bm25s_on_any_small_corpus(corpus, query, k1, b):
    import bm25s

    tokenizer = BM25Reranker()
    tokens = tokenizer.tokenize(corpus)
    stats = CorpusStats.from_documents(corpus, k1=k1, b=b)
    ours = CorpusBM25Reranker(stats).score(query, corpus)
    query_tokens = [t for t in tokenizer.tokenize([query])[0] if any(t in doc for doc in tokens)]
    if not query_tokens:  # bm25s cannot index a corpus without tokens; nothing matches: all zeros
        assert ours == [0.0] * len(corpus)
        return
    index = bm25s.BM25(k1=k1, b=b)
    index.index(tokens, show_progress=False)
    np.testing.assert_allclose(ours, index.get_scores(query_tokens), rtol=1e-5, atol=1e-6)


def test_corpus_statistics_from_an_index_equal_those_from_the_documents(tmp_path):
    from rankwise.retrieval import Index

    docs = [{"id": f"d{i}", "text": t} for i, t in enumerate(CORPUS_TEXTS) if t]
    index = Index.build(docs, dense=False)
    folder = index.save(tmp_path / "idx")
    counted = CorpusStats.from_documents(docs)
    for source in (index, index.bm25, folder, str(folder)):
        stats = CorpusStats.from_index(source)
        assert stats.n_documents == counted.n_documents == len(docs)
        assert dict(stats.document_frequencies) == dict(counted.document_frequencies)
        assert stats.average_length == pytest.approx(counted.average_length)
        assert (stats.k1, stats.b, stats.stemmer, stats.fields) == (0.9, 0.4, "english", ("title", "text"))
    # and the index's own BM25 search scores are what corpus BM25 gives the same passages
    positions, scores = index.bm25.search("long memory networks", 3)
    ours = CorpusBM25Reranker(folder).score("long memory networks", [index.passages[int(p)].text for p in positions])
    np.testing.assert_allclose(ours, scores, rtol=1e-5)


@pytest.mark.parametrize(
    ("corpus", "message"),
    [([], "empty"), (42, "corpus must be CorpusStats"), ("no/such/index", "no/such/index")],
)
def test_a_bad_corpus_is_a_clear_error(corpus, message):
    with pytest.raises(rankwise.errors.RankwiseError, match=message):
        CorpusBM25Reranker(corpus)


def test_a_single_string_corpus_or_an_index_without_bm25_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="wrap it in a list"):
        CorpusStats.from_documents("one long string")
    with pytest.raises(InvalidInputError, match="no BM25 part"):
        CorpusStats.from_index(type("NoBM25", (), {"bm25": None})())


# -- the choice ------------------------------------------------------------------------------------------------------


def test_every_candidate_with_a_first_stage_score_uses_it_at_the_hybrid_weights():
    default = _adaptive()
    docs = _docs(CORPUS_TEXTS[:6], [3.0, 1.5, 9, 0.0, -2.0, np.float32(4.5)])
    reference = FusionReranker([MetadataScoreReranker(), _semantic()], weights=(1.0, 2.5))
    np.testing.assert_allclose(default.score("memory", docs), reference.score("memory", docs))
    results = default.rank("memory", docs)
    assert results.signals == (FIRST_STAGE, "sem")
    assert results.scores == sorted(reference.score("memory", docs), reverse=True)


def test_without_first_stage_scores_it_is_the_old_default():
    default = _adaptive()
    docs = _docs(CORPUS_TEXTS[:6])
    reference = FusionReranker([BM25Reranker(), _semantic()], weights=(1.0, 2.0))
    np.testing.assert_allclose(default.score("memory networks", docs), reference.score("memory networks", docs))
    assert default.rank("memory networks", docs).signals == (CANDIDATES, "sem")


def test_with_corpus_statistics_it_uses_corpus_bm25_at_the_first_stage_weights():
    stats = CorpusStats.from_documents(CORPUS_TEXTS)
    default = _adaptive(stats)
    docs = _docs(CORPUS_TEXTS[:6])
    reference = FusionReranker([CorpusBM25Reranker(stats), _semantic()], weights=(1.0, 2.5))
    np.testing.assert_allclose(default.score("memory networks", docs), reference.score("memory networks", docs))
    assert default.rank("memory networks", docs).signals == (CORPUS, "sem")
    with_scores = _docs(CORPUS_TEXTS[:6], [1.0] * 6)  # the first-stage score still comes first
    assert default.signals_for(with_scores) == (FIRST_STAGE, "sem")


def test_some_scores_missing_falls_back_without_mixing_and_says_so():
    default = _adaptive()
    docs = _docs(CORPUS_TEXTS[:4], [3.0, ..., 1.0, "2.0"])  # one missing, one a string
    results = default.rank("memory", docs)
    assert results.signals == (CANDIDATES, "sem", f"skipped:{FIRST_STAGE} (2 of 4 candidates)")
    reference = FusionReranker([BM25Reranker(), _semantic()], weights=(1.0, 2.0))
    np.testing.assert_allclose(default.score("memory", docs), reference.score("memory", docs))
    assert default.signals_for(docs) == results.signals


def test_signals_survive_top_k_pickling_and_iterators_and_an_empty_list_has_none():
    default = _adaptive()
    docs = _docs(CORPUS_TEXTS[:5], [5.0, 4.0, 3.0, 2.0, 1.0])
    results = default.rank("memory", iter(docs), top_k=2)  # a one-shot iterator is read once
    assert len(results) == 2 and results.signals == (FIRST_STAGE, "sem")
    assert results.top_k(1).signals == results.signals
    assert pickle.loads(pickle.dumps(results)) == results
    assert default.rank("memory", []).signals == () and default.signals_for([]) == ()
    plain = BM25Reranker().rank("memory", docs)
    assert plain.signals == ()  # other re-rankers: nothing changes
    assert all(docs[r.index] is not None for r in results)


def test_callers_documents_are_untouched():
    default = _adaptive()
    docs = _docs(CORPUS_TEXTS[:3], [2.0, ..., 1.0])
    before = json.dumps(docs, sort_keys=True)
    default.rank("memory", docs)
    assert json.dumps(docs, sort_keys=True) == before


@pytest.mark.parametrize(
    ("value", "usable"),
    [(1, True), (-2.5, True), (np.float64(3.0), True), (0, True), (None, False), ("3.2", False), (True, False),
     (float("nan"), False), (float("inf"), False), (-math.inf, False), (10**400, False), ([1.0], False)],
)
def test_what_counts_as_a_first_stage_score(value, usable):
    assert usable_score(value) is usable


_VALUES = st.one_of(
    st.just(...),  # key absent
    st.none(), st.booleans(), st.text(max_size=5), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("nan"), math.inf, -math.inf, "nan"]),
    st.lists(st.floats(), max_size=2),
)


@fuzz_settings(60)
@given(values=st.lists(_VALUES, min_size=1, max_size=8), with_corpus=st.booleans())
def test_fuzz_any_metadata_never_crashes_and_the_choice_follows_the_rule(values, with_corpus):
    default = _adaptive(CorpusStats.from_documents(CORPUS_TEXTS) if with_corpus else None)
    docs = _docs([CORPUS_TEXTS[i % len(CORPUS_TEXTS)] for i in range(len(values))], values)
    results = default.rank("long memory networks", docs)
    carrying = sum(v is not ... and usable_score(v) for v in values)
    fallback = CORPUS if with_corpus else CANDIDATES
    expected = (FIRST_STAGE,) if carrying == len(values) else (fallback,)
    assert results.signals[0] == expected[0]
    assert any(s.startswith("skipped:") for s in results.signals) == (0 < carrying < len(values))
    assert all(math.isfinite(s) for s in results.scores) and sorted(r.index for r in results) == list(range(len(docs)))


# -- the preset, with the bundled bi-encoder ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default(bi_encoder):
    return rankwise.load("default", bi_encoder=bi_encoder)


def test_the_preset_matches_hybrid_with_first_stage_scores_and_the_old_default_without(default, bi_encoder):
    query = "how do recurrent networks remember long sequences"
    docs = _docs(CORPUS_TEXTS[:8], [12.0, 3.0, 7.5, 1.0, 9.0, 2.0, 0.5, 4.0])
    hybrid = rankwise.load("hybrid", members=["first-stage-score", bi_encoder])
    np.testing.assert_allclose(default.score(query, docs), hybrid.score(query, docs), rtol=1e-6)
    assert default.rank(query, docs).signals == (FIRST_STAGE, bi_encoder.name)  # a member passed as an object
    old = FusionReranker([BM25Reranker(), bi_encoder], method="zscore", weights=[1, 2])  # today's default
    plain = [{"text": d["text"]} for d in docs]
    np.testing.assert_allclose(default.score(query, plain), old.score(query, plain), rtol=1e-6)
    assert default.rank(query, plain).signals == (CANDIDATES, bi_encoder.name)


def test_the_preset_takes_a_corpus_folder_and_checks_fields(tmp_path, bi_encoder):
    from rankwise.retrieval import Index

    folder = Index.build([{"id": str(i), "text": t} for i, t in enumerate(CORPUS_TEXTS) if t], dense=False).save(
        tmp_path / "idx"
    )
    with_corpus = rankwise.load("default", corpus=str(folder), bi_encoder=bi_encoder)
    assert with_corpus.rank("long memory", ["memory chips", "long short-term memory"]).signals[0] == CORPUS
    with pytest.raises(InvalidInputError, match="counted over fields"):
        rankwise.load("default", corpus=str(folder), fields=["text"], bi_encoder=bi_encoder)
    listed = rankwise.load("default", corpus=CORPUS_TEXTS, fields=["text"], bi_encoder=bi_encoder)
    assert listed.corpus_bm25.stats.fields == ("text",)


def test_options_still_reach_the_members():
    loaded = rankwise.load("default", fields=["name", "body"], batch_size=3, k1=1.2, device="cpu")
    bm25_member, bi_member = loaded.rerankers
    assert bm25_member.fields == ("name", "body") and bi_member.fields == ("name", "body")
    assert bi_member.batch_size == 3 and bm25_member.k1 == 1.2 and loaded.independent_scores is False
    items = [{"name": "rain jacket", "body": "keeps you dry"}, {"name": "waterproof boots", "body": "dry feet"}]
    assert loaded.rank("waterproof boots", items)[0].index == 1
    assert {m.name for m in loaded.members()} >= {"bm25", "metadata:first_stage_score", bi_member.name}
    with pytest.raises(InvalidInputError, match="default does not take colour; valid options are: bi_encoder, corpus"):
        rankwise.load("default", colour="red")


def test_rerank_cli_shows_the_signals(tmp_path, capsys):
    from rankwise.cli import main

    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps(d) for d in _docs(CORPUS_TEXTS[:3], [3.0, 2.0, 1.0])) + "\n")
    assert main(["rerank", "-q", "long memory", "-d", str(docs), "-f", "json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["signals"] == [FIRST_STAGE, "minilm-bi-encoder"] and len(out["results"]) == 3


def test_the_server_answers_with_the_same_choice_as_the_library(default):
    from starlette.testclient import TestClient

    from rankwise.server import ServerConfig, create_app

    query = "long memory networks"
    with_scores = [{"text": t, "first_stage_score": float(s)} for t, s in zip(CORPUS_TEXTS[:4], [1, 9, 4, 2])]
    partial = [with_scores[0], {"text": CORPUS_TEXTS[5]}, with_scores[2]]
    with TestClient(create_app({"default": default}, ServerConfig())) as client:
        for docs in (with_scores, partial, CORPUS_TEXTS[:4]):
            answer = client.post("/v1/rerank", json={"model": "default", "query": query, "documents": docs})
            assert answer.status_code == 200, answer.text
            expected = default.rank(query, docs)
            assert [r["index"] for r in answer.json()["results"]] == [r.index for r in expected]
            got = [r["relevance_score"] for r in answer.json()["results"]]
            np.testing.assert_allclose(got, expected.scores, rtol=1e-5)

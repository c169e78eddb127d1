"""Issue 10, library core: every text ranks, options reach preset members, caches stay bounded, progress moves and
can abort, and the same text gets the same score, bit for bit.

Models are the offline presets and the tiny random BERT cross-encoder from ``conftest.py``; each loads once.
"""

from __future__ import annotations

import json
import pickle
import threading

import numpy as np
import pytest

import rankwise
from rankwise import CrossEncoderReranker, Document, InvalidInputError
from rankwise._cache import ENTRY_OVERHEAD, BoundedLRU, text_digest
from rankwise.documents import document_text, field_text, model_text
from rankwise.registry import options_of
from rankwise.rerankers.cross_encoder.pairs import PairEncoder, load_fast_tokenizer
from rankwise.rerankers.fusion import fuse
from rankwise.rerankers.metadata_score import MetadataScoreReranker

NO_TOKEN_CANDIDATES = [["A", "B", "C", "D"], ["7", "8"], ["👍", "👎"], ["the of", "it is"], ["", " "]]


@pytest.fixture(scope="module")
def bm25():
    return rankwise.load("bm25")


@pytest.fixture(scope="module")
def default():
    return rankwise.load("default", device="cpu")


@pytest.fixture(scope="module")
def hybrid():
    return rankwise.load("hybrid", device="cpu")


@pytest.fixture(scope="module")
def tiny(tiny_cross_encoder):
    return CrossEncoderReranker(tiny_cross_encoder, device="cpu", batch_size=2)


# -- 1. no crash on any text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("docs", NO_TOKEN_CANDIDATES)
def test_bm25_scores_zero_for_candidates_without_an_indexable_token(bm25, docs):
    assert bm25.score("lstm memory", docs) == [0.0] * len(docs)
    assert [r.index for r in bm25.rank("lstm memory", docs)] == list(range(len(docs)))  # ties keep input order


def test_bm25_ignores_query_tokens_no_candidate_holds(bm25):
    docs = ["lstm memory cells", "A", ""]
    scores = bm25.score("lstm zebra", docs)
    assert scores[0] > 0 and scores[1:] == [0.0, 0.0]
    assert bm25.score("the of it", docs) == [0.0, 0.0, 0.0]  # a query of stop words only


@pytest.mark.parametrize("docs", NO_TOKEN_CANDIDATES)
def test_fusion_presets_rank_candidates_without_bm25_tokens(default, docs):
    results = default.rank("lstm memory", docs)
    assert sorted(r.index for r in results) == list(range(len(docs)))
    assert all(np.isfinite(results.scores))


def test_blank_candidates_tie_and_keep_input_order(default):
    # "" and " " give the model the same (empty) text: equal scores, so input order decides
    results = default.rank("lstm memory", ["", " "])
    assert results.scores[0] == results.scores[1]
    assert [r.index for r in results] == [0, 1]


def test_lone_surrogates_rank_with_the_callers_objects_returned(bm25, default, hybrid, tiny, bi_encoder):
    query = "lstm \ud800 memory"
    meta = {"note": "unscored \udc00 field", "first_stage_score": 1.0}
    docs = [
        Document("lstm \ud800 gates", id="a\ud800", title="t\udfff", metadata=meta),
        {"text": "memory \ud83d", "title": "\ud800", "first_stage_score": 2.0},
        {"text": "\ud800", "first_stage_score": 0.5, "id": "\udc00"},
    ]
    for model in (bm25, default, hybrid, tiny, bi_encoder, rankwise.load("first-stage-score")):
        results = model.rank(query, docs)
        assert results.query is query
        by_index = {r.index: r.document for r in results}
        assert by_index[0] is docs[0] and by_index[0].metadata is meta
        assert by_index[1].text is docs[1]["text"] and by_index[1].title is docs[1]["title"]
        assert by_index[2].text is docs[2]["text"] and by_index[2].id is docs[2]["id"]
        assert all(np.isfinite(results.scores))


def test_the_model_sees_u_fffd_for_each_lone_surrogate(bm25):
    assert model_text("a\ud800b") == "a\ufffdb"
    assert model_text("\ud83d\udc4d") == "👍"  # a well-formed pair written as two code points is joined
    text = "plain text"
    assert model_text(text) is text
    docs = ["lstm \ud800 memory", "cnn"]
    assert bm25.score("lstm \udc00", docs) == bm25.score("lstm \ufffd", ["lstm \ufffd memory", "cnn"])


@pytest.mark.parametrize("docs", [None, 5, 3.5, object()])
def test_documents_that_are_not_a_list_are_an_invalid_input(bm25, docs):
    with pytest.raises(InvalidInputError, match="documents must be a list"):
        bm25.rank("query", docs)
    with pytest.raises(InvalidInputError, match="documents must be a list"):
        bm25.score("query", docs)


def test_options_reach_the_members_of_a_preset():
    fused = rankwise.load("default", fields=["name", "body"], batch_size=3, device="cpu")
    bm25_member, bi_member = fused.rerankers
    assert bm25_member.fields == ("name", "body") and bi_member.fields == ("name", "body")
    assert bi_member.batch_size == 3
    items = [{"name": "rain jacket", "body": "keeps you dry"}, {"name": "waterproof boots", "body": "dry feet"}]
    assert fused.rank("waterproof boots", items)[0].index == 1
    assert rankwise.load("hybrid", fields=["name"], device="cpu").rerankers[1].fields == ("name",)


def test_an_option_nobody_takes_names_the_valid_options():
    with pytest.raises(InvalidInputError) as info:
        rankwise.load("bm25", batch_size=3)
    assert str(info.value) == (
        "bm25 does not take batch_size; valid options are: k1, b, stemmer, stopwords, fields, name."
    )
    with pytest.raises(InvalidInputError, match="default does not take colour; valid options are: .*fields.*batch_"):
        rankwise.load("default", colour="red")
    with pytest.raises(InvalidInputError, match="the metadata-score backend does not take k1"):
        rankwise.load("x", backend="metadata-score", k1=1.0)
    assert options_of("bm25") == ("k1", "b", "stemmer", "stopwords", "fields", "name")
    assert "batch_size" in options_of("default") and "rrf_k" in options_of("default")


# -- 2. bounded memory --------------------------------------------------------------------------------------------


def test_bounded_lru_is_a_true_lru_bounded_by_count_and_bytes():
    cache: BoundedLRU[np.ndarray] = BoundedLRU(max_entries=3, max_bytes=10_000)
    for name in "abc":
        assert cache.put(name, np.zeros(10))
    assert cache.get("a") is not None  # a hit makes "a" the most recently used
    cache.put("d", np.zeros(10))
    assert "b" not in cache and all(k in cache for k in "acd") and cache.evictions == 1
    assert cache.nbytes == 3 * (80 + ENTRY_OVERHEAD)
    cache.put("big", np.zeros(1000))  # 8,256 bytes: evicts by bytes, least recently used first
    assert cache.nbytes <= 10_000 and "big" in cache and "c" not in cache
    assert not cache.put("huge", np.zeros(2000))  # larger than the whole bound: not cached at all
    assert set(cache._data) == {text_digest(t) for t in ("big",) + tuple(k for k in "ad" if k in cache)}
    assert all(isinstance(k, bytes) and len(k) == 16 for k in cache._data)  # digests, never the texts
    assert BoundedLRU(0, 100).put("x", np.zeros(1)) is False


def test_bounded_lru_is_thread_safe_and_pickles():
    cache: BoundedLRU[np.ndarray] = BoundedLRU(max_entries=50, max_bytes=50 * (800 + ENTRY_OVERHEAD))

    def work(seed: int) -> None:
        for i in range(300):
            cache.put(f"{seed}-{i % 70}", np.zeros(100))
            cache.get(f"{(seed + 1) % 4}-{i % 70}")

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) <= 50 and cache.nbytes == len(cache) * (800 + ENTRY_OVERHEAD)
    clone = pickle.loads(pickle.dumps(cache))
    assert len(clone) == len(cache) and clone.put("new", np.zeros(1))


def _big_documents(call: int, size: int) -> list[str]:
    """Two distinct ``size``-character texts: up to 100 kB of words (many token ids), then one long word (a few ids,
    but every character still goes through the tokenizer, which keeps the 2 MB case within seconds)."""
    words = (f"call{call} doc{{}} " + "memory cells keep state " * 4200)[:100_000]
    return [(words.format(j) + " " + "x" * size)[:size] for j in range(2)]


def _token_cache_stays_bounded(size: int, bound: int) -> None:
    from rankwise.bundled import bundled_minilm_path

    encoder = PairEncoder(load_fast_tokenizer(bundled_minilm_path()), max_length=128, cache_bytes=bound)
    for call in range(10):
        encoder.document_ids(_big_documents(call, size))  # what encode() looks up; chunking is not the point
        assert encoder._cache.nbytes <= bound
    assert encoder._cache.evictions > 0 and len(encoder._cache) >= 1


def test_token_id_cache_stays_within_its_byte_bound():
    _token_cache_stays_bounded(size=60_000, bound=100_000)  # 2 x 60 kB texts per call, ~40 kB of ids each


@pytest.mark.slow
def test_token_id_cache_stays_within_its_byte_bound_with_2mb_documents():
    _token_cache_stays_bounded(size=2_000_000, bound=150_000)  # ~67 kB of ids per text: two fit, never more


def test_bi_encoder_caches_are_keyed_by_hash_and_bounded_by_bytes(bi_encoder):
    from rankwise.rerankers.bi_encoder import BiEncoderReranker

    one = 384 * 4 + ENTRY_OVERHEAD
    small = BiEncoderReranker(device="cpu", cache_bytes=3 * one)
    for call in range(10):
        small.score(f"query {call}", [f"first document, call {call}", f"second document, call {call}"])
        assert small._cache.nbytes <= 3 * one and len(small._cache) <= 3
    assert small._cache.evictions == 17
    assert small.cache_size == 200_000  # the count option still works alongside the byte one
    long_query = "how do gates work " * 20_000
    bi_encoder.embed_query(long_query)
    assert long_query in bi_encoder._query_cache and bi_encoder._query_cache.nbytes < 4 << 20


# -- 3. progress that moves and can abort -------------------------------------------------------------------------


def test_bi_encoder_reports_after_each_batch_and_an_abort_keeps_finished_batches():
    from rankwise.rerankers.bi_encoder import BiEncoderReranker

    bi = BiEncoderReranker(device="cpu", batch_size=2)
    docs = [f"progress probe document {i}" for i in range(5)]
    seen: list[tuple[int, int]] = []

    def stop_after_first(done: int, total: int) -> None:
        seen.append((done, total))
        raise TimeoutError("deadline passed")

    with pytest.raises(TimeoutError):
        bi.score("query", docs, progress=stop_after_first)
    assert seen == [(2, 5)] and len(bi._cache) == 2  # the finished batch stays cached, nothing else
    seen.clear()
    bi.score("query", docs, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 5), (5, 5)]  # two documents were ready from the cache
    seen.clear()
    bi.score("query", docs, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(5, 5)]


def test_fusion_reports_one_combined_count():
    fused = rankwise.load("default", batch_size=2, device="cpu")
    seen: list[tuple[int, int]] = []
    fused.score("query", [f"combined progress probe {i}" for i in range(5)], progress=lambda d, t: seen.append((d, t)))
    assert seen == [(5, 10), (7, 10), (9, 10), (10, 10)]  # BM25 at once, then the bi-encoder's three batches


def test_cross_encoder_reports_per_batch_and_score_groups_takes_progress(tiny):
    seen: list[tuple[int, int]] = []
    tiny.score("query", [f"doc {i}" for i in range(5)], progress=lambda d, t: seen.append((d, t)))
    assert [d for d, _ in seen] == [2, 4, 5] and {t for _, t in seen} == {5}
    seen.clear()
    tiny.score_groups([("q1", ["a", "b", "c"]), ("q2", ["a"])], progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4) and len(seen) == 2

    def abort(done: int, total: int) -> None:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        tiny.score("query", [f"doc {i}" for i in range(5)], progress=abort)
    assert len(tiny.score("query", ["still", "works"])) == 2


# -- 4. same text, same score ------------------------------------------------------------------------------------


DUPLICATE = "LSTM gates keep a cell state over many steps."


def _with_duplicates(neighbours: list[str]) -> list[str]:
    docs = list(neighbours)
    for position in (0, 3, len(docs) + 1):
        docs.insert(position, DUPLICATE)
    return docs


@pytest.mark.parametrize("model_name", ["bi_encoder", "default", "bm25", "tiny"])
def test_identical_texts_get_identical_scores_wherever_they_stand(request, model_name):
    model = request.getfixturevalue(model_name)
    query = "how do lstm networks remember?"
    seen = []
    for neighbours in (
        [f"neighbour text number {i} about memory" for i in range(6)],
        ["short", "a much longer neighbour text " * 12, "cnn filters", "x"],
        [f"other set {i} " * (i + 1) for i in range(9)],
    ):
        docs = _with_duplicates(neighbours)
        scores = model.score(query, docs)
        mine = [s for d, s in zip(docs, scores) if d == DUPLICATE]
        assert len(set(mine)) == 1, mine  # exact equality, not approximate
        seen.append(mine[0])
    # Across calls: the bi-encoder reuses the text's cached vector and reduces its row on its own. (BM25 statistics
    # and fusion's standardisation come from the list; a cross-encoder pair batched with other neighbours may
    # differ in the last bits, so for those only the within-call guarantee holds.)
    if model_name == "bi_encoder":
        assert len(set(seen)) == 1, seen


def test_duplicate_pairs_in_score_groups_are_scored_once(tiny):
    seen: list[tuple[int, int]] = []
    a, b = tiny.score_groups(
        [("q", ["x", DUPLICATE, "y", DUPLICATE]), ("q", [DUPLICATE])], progress=lambda d, t: seen.append((d, t))
    )
    assert a[1] == a[3] == b[0]
    assert seen[-1] == (3, 3)  # three distinct (query, text) pairs went through the model, not five


# -- 5. the text rule ---------------------------------------------------------------------------------------------


def test_field_text_rule():
    assert field_text("brün") == "brün"
    assert [field_text(v) for v in (3, 2.5, True, None)] == ["3", "2.5", "True", "None"]
    value = {"b": 1, "a": ["ü", {"c": None}]}
    assert field_text(value) == json.dumps(value, ensure_ascii=False) == '{"b": 1, "a": ["ü", {"c": null}]}'
    assert field_text([1, "x"]) == '[1, "x"]'
    assert field_text({(1, 2): "key json cannot write"}) == "{(1, 2): 'key json cannot write'}"


def test_document_text_joins_fields_with_the_rule():
    doc = Document("body", title="T", metadata={"specs": {"size": 42}, "price": 9.5, "empty": "", "none": None,
                                                 "array": np.arange(3)})
    assert document_text(doc, ("title", "specs", "price", "empty", "none", "text")) == 'T\n{"size": 42}\n9.5\nbody'
    assert document_text(doc, ("array",)) == "[0 1 2]"  # no "truth value of an array is ambiguous"


# -- hardening the tests exposed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, "high"])
def test_metadata_scores_must_be_finite_numbers(value):
    with pytest.raises(InvalidInputError, match=r"document 0: metadata\['first_stage_score'\] .* is not a number"):
        MetadataScoreReranker().score("q", [{"text": "a", "first_stage_score": value}])


def test_fusion_of_huge_scores_stays_finite():
    fused = fuse([[1e300, -1e300, 0.0], [1.0, 2.0, 3.0]], [1.0, 1.0], "zscore")
    assert np.isfinite(fused).all()
    assert np.isfinite(fuse([[1e308, -1e308]], [1.0], "minmax")).all()


def test_fields_that_are_no_sequence_are_an_invalid_input():
    with pytest.raises(InvalidInputError, match="fields must be a non-empty sequence"):
        rankwise.load("bm25", fields=3)

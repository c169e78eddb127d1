from collections.abc import Iterator

import numpy as np
import pytest

import rankwise
from rankwise import CrossEncoderReranker, Document, InvalidInputError
from rankwise.rerankers._cross_encoder_base import CrossEncoderEngine, relevance_logit
from rankwise.tokenization import PairEncoder, load_fast_tokenizer


@pytest.fixture(scope="session")
def tiny(tiny_cross_encoder):
    return CrossEncoderReranker(tiny_cross_encoder, device="cpu")


@pytest.fixture(scope="session")
def reference(tiny_cross_encoder):
    import torch
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(tiny_cross_encoder), device="cpu", max_length=512, activation_fn=torch.nn.Identity())


def test_scores_match_sentence_transformers(tiny, reference):
    query = "how do gates help recurrent networks remember"
    docs = ["LSTM gates keep a cell state.", "Images are processed by convolutions.", "", "word " * 40]
    expected = reference.predict([(query, d) for d in docs], batch_size=2)
    np.testing.assert_allclose(tiny.score(query, docs), expected, atol=1e-5)


def test_batch_composition_does_not_change_scores(tiny_cross_encoder):
    docs = [f"document number {i} " + "filler " * (i * 7) for i in range(12)]
    small = CrossEncoderReranker(tiny_cross_encoder, device="cpu", batch_size=1).score("query", docs)
    big = CrossEncoderReranker(tiny_cross_encoder, device="cpu", batch_size=16).score("query", docs)
    np.testing.assert_allclose(small, big, atol=1e-5)


def test_rank_keeps_ids_and_metadata(tiny):
    meta = {"source": "wiki", "tags": ["a"]}
    docs = [Document("first text", id="d1", metadata=meta), {"text": "second", "id": 2, "url": "u"}]
    results = tiny.rank("q", docs)
    by_index = {r.index: r.document for r in results}
    assert by_index[0].metadata is meta and by_index[0].id == "d1"
    assert by_index[1].id == 2 and by_index[1].metadata == {"url": "u"}
    assert results.model == tiny.name


def test_normalize_applies_sigmoid(tiny_cross_encoder, tiny):
    raw = np.array(tiny.score("q", ["a", "b c"]))
    squashed = CrossEncoderReranker(tiny_cross_encoder, device="cpu", normalize=True).score("q", ["a", "b c"])
    np.testing.assert_allclose(squashed, 1 / (1 + np.exp(-raw)), atol=1e-6)


def test_load_resolves_a_local_cross_encoder_folder(tiny_cross_encoder, tiny):
    loaded = rankwise.load(str(tiny_cross_encoder), device="cpu")
    assert isinstance(loaded, CrossEncoderReranker)
    assert loaded.score("q", ["a"]) == pytest.approx(tiny.score("q", ["a"]), abs=1e-6)


def test_two_label_heads_use_log_odds_and_others_are_refused():
    np.testing.assert_allclose(relevance_logit(np.array([[0.0, 2.0], [1.0, 0.5]])), [2.0, -0.5])
    with pytest.raises(InvalidInputError, match="3 output labels"):
        relevance_logit(np.zeros((2, 3)))


# --- long documents: chunking --------------------------------------------------------------------------------


class KeywordEngine(CrossEncoderEngine):
    """The real encoder, batching and aggregation, with a transparent 'model': a passage scores 1 when it holds the
    token id of ``keyword`` in its document segment. It makes "which passage is relevant" unambiguous."""

    def __init__(self, tokenizer, keyword_id, **options):
        super().__init__(tokenizer=tokenizer, name="keyword", **options)
        self.keyword_id = keyword_id
        self.passages_seen = 0

    def _forward(self, batches) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in batches:
            in_doc = (batch.token_type_ids == 1) & (batch.input_ids == self.keyword_id)
            self.passages_seen += len(batch.rows)
            yield batch.rows, in_doc.any(axis=1).astype(np.float64)


@pytest.fixture(scope="module")
def tokenizer(tiny_cross_encoder):
    return load_fast_tokenizer(tiny_cross_encoder)


def test_relevant_sentence_at_the_end_of_a_long_document_still_wins(tokenizer):
    keyword_id = tokenizer.encode("lstm", add_special_tokens=False).ids[0]
    long_doc = "the weather was mild and the river was calm . " * 300 + "an lstm keeps long-term memory ."
    assert len(tokenizer.encode(long_doc, add_special_tokens=False).ids) > 3000
    docs = ["a short unrelated note", long_doc, "another unrelated note about rivers"]
    chunked = KeywordEngine(tokenizer, keyword_id)
    assert chunked.rank("what is an lstm", docs)[0].index == 1
    assert chunked.passages_seen > 3  # the long document was split into several passages
    truncated = KeywordEngine(tokenizer, keyword_id, overflow="truncate")
    assert truncated.score("what is an lstm", docs) == [0.0, 0.0, 0.0]  # the end was cut away


def test_passages_overlap_and_cover_the_whole_document(tokenizer):
    encoder = PairEncoder(tokenizer, max_length=64, stride=8)
    text = " ".join(f"w{i}" for i in range(400))
    doc_ids = encoder.document_ids([text])[0]
    pairs = encoder.encode("query", [text])
    head = len(encoder.template.prefix) + 1 + len(encoder.template.middle)  # "query" is one token
    pieces = [p[head:-len(encoder.template.suffix)] for p in pairs.input_ids]
    assert all(len(p) <= 64 for p in pairs.input_ids)
    assert np.array_equal(np.concatenate([pieces[0]] + [p[8:] for p in pieces[1:]])[: len(doc_ids)], doc_ids)
    assert set(pairs.owners.tolist()) == {0}


def test_a_very_long_query_keeps_room_for_the_document(tokenizer):
    encoder = PairEncoder(tokenizer, max_length=128)
    pairs = encoder.encode("query " * 500, ["a document"])
    ids = pairs.input_ids[0]
    assert len(ids) <= 128
    assert (pairs.token_type_ids[0] == 1).sum() >= 3  # "a document" + [SEP] survived


@pytest.mark.parametrize(
    ("options", "message"),
    [({"overflow": "cut"}, "overflow must be"), ({"max_length": 8}, "max_length=8 is too small"),
     ({"stride": 10_000}, "stride=10000"), ({"dtype": "int4"}, "dtype must be one of"),
     ({"batch_size": 0}, "batch_size must be >= 1"), ({"workers": 0}, "workers must be a positive integer"),
     ({"threads": -2}, "threads must be a positive integer or None, got -2")],
)
def test_bad_options_are_named(tiny_cross_encoder, options, message):
    with pytest.raises(InvalidInputError, match=message):
        CrossEncoderReranker(tiny_cross_encoder, device="cpu", **options)


def test_parallel_workers_keep_scores_and_never_touch_the_callers_threads(tiny_cross_encoder, tiny):
    import torch

    docs = [f"document {i} " + "filler " * (i % 9) for i in range(40)]
    before = torch.get_num_threads()
    parallel = CrossEncoderReranker(tiny_cross_encoder, device="cpu", workers=2, threads=2, batch_size=3)
    one_thread = CrossEncoderReranker(tiny_cross_encoder, device="cpu", workers=1, threads=1, batch_size=3)
    expected = tiny.score("query about filler", docs)
    np.testing.assert_allclose(parallel.score("query about filler", docs), expected, atol=1e-5)
    np.testing.assert_allclose(one_thread.score("query about filler", docs), expected, atol=1e-5)
    assert torch.get_num_threads() == before

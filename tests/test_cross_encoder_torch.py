"""The torch cross-encoder (rankwise.rerankers.cross_encoder.torch): scores equal sentence-transformers', batches and
workers never change them, options are checked."""

import numpy as np
import pytest

import rankwise
from rankwise import CrossEncoderReranker, Document, InvalidInputError


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

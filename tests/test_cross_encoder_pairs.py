"""Pair encoding (rankwise.rerankers.cross_encoder.pairs): long documents become overlapping passages that cover them,
and a long query never crowds the document out."""

import numpy as np
import pytest

from rankwise.rerankers.cross_encoder.pairs import PairEncoder, load_fast_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_cross_encoder):
    return load_fast_tokenizer(tiny_cross_encoder)


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

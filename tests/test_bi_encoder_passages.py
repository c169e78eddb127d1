"""The bi-encoder scores a document longer than its window by its best passage (``overflow="chunk"``, the default),
never by a silent cut; ``overflow="truncate"`` keeps sentence-transformers' first window."""

from __future__ import annotations

import numpy as np
import pytest

from rankwise import BiEncoderReranker, InvalidInputError

FILLER = " ".join(["The weather in Paris was mild and sunny that spring, and the markets were busy."] * 40)
LONG = "LSTM networks use gates to keep memory. " + FILLER + " Convolutional filters detect edges in images."
QUERY = "convolutional filters that detect image edges"


@pytest.fixture(scope="module")
def truncating(bi_encoder) -> BiEncoderReranker:  # noqa: ANN001
    return BiEncoderReranker(device="cpu", overflow="truncate")


def test_long_documents_are_split_into_overlapping_token_windows(bi_encoder) -> None:  # noqa: ANN001
    splitter = bi_encoder._splitter
    passages = bi_encoder.passages([LONG])[0]
    sizes = [len(splitter.tokenizer.encode(p, add_special_tokens=False).ids) for p in passages]
    assert len(passages) > 1 and max(sizes) <= splitter.window == 254  # 256 minus [CLS] and [SEP]
    assert all(p in LONG for p in passages)  # exact slices of the text
    assert LONG.startswith(passages[0]) and LONG.endswith(passages[-1])  # nothing at either end is lost
    first, second = (splitter.tokenizer.encode(p, add_special_tokens=False).ids for p in passages[:2])
    assert first[-splitter.stride :] == second[: splitter.stride]  # consecutive passages share `stride` tokens


def test_a_long_document_is_scored_by_its_best_passage(bi_encoder, truncating) -> None:  # noqa: ANN001
    passages = bi_encoder.passages([LONG])[0]
    query = bi_encoder.embed_query(QUERY).astype(np.float64)
    best = max(float((bi_encoder.embed_documents([p])[0].astype(np.float64) * query).sum()) for p in passages)
    chunked, truncated = bi_encoder.score(QUERY, [LONG])[0], truncating.score(QUERY, [LONG])[0]
    assert chunked == best  # the max over passages, bit for bit
    assert chunked > truncated + 0.1  # the match sits past the first window: truncation never saw it


def test_short_documents_score_the_same_either_way(bi_encoder, truncating) -> None:  # noqa: ANN001
    docs = ["LSTMs gate a cell state.", "CNNs see images.", "é" * 100]
    assert bi_encoder.passages(docs) == [[d] for d in docs]
    assert bi_encoder.score(QUERY, docs) == truncating.score(QUERY, docs)


def test_truncate_mode_embeds_each_text_whole(truncating) -> None:  # noqa: ANN001
    assert truncating.passages([LONG]) == [[LONG]]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"overflow": "cut"}, "overflow must be 'chunk' or 'truncate'"), ({"stride": 200}, "stride must be")],
)
def test_bad_overflow_options_name_the_value(options, message) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInputError, match=message):
        BiEncoderReranker(device="cpu", **options)


def test_the_evaluation_store_embeds_passages(bi_encoder, tmp_path) -> None:  # noqa: ANN001
    from rankwise.evaluation.embeddings import EmbeddingStore

    fresh = BiEncoderReranker(device="cpu")
    counts = EmbeddingStore(tmp_path).prepare(fresh, [LONG, "short text"], dataset="t")
    assert counts == {"computed": len(bi_encoder.passages([LONG])[0]) + 1, "from_disk": 0}
    again = BiEncoderReranker(device="cpu")
    assert EmbeddingStore(tmp_path).prepare(again, [LONG, "short text"], dataset="t")["from_disk"] == counts["computed"]
    # vectors batched with other texts differ from singly embedded ones in the last float32 bits only
    assert again.score(QUERY, [LONG]) == pytest.approx(bi_encoder.score(QUERY, [LONG]), abs=1e-6)

import pickle

import pytest

from rankwise import Document, InvalidInputError, RankedResults
from rankwise.documents import document_text, to_documents


def test_ranking_sorts_by_score_and_breaks_ties_by_input_order():
    docs = [Document("a"), Document("b"), Document("c"), Document("d")]
    results = RankedResults.from_scores("q", docs, [0.5, 0.9, 0.5, 0.1])
    assert [r.index for r in results] == [1, 0, 2, 3]
    assert [r.rank for r in results] == [1, 2, 3, 4]
    assert results.scores == [0.9, 0.5, 0.5, 0.1]


def test_top_k_keeps_the_best_and_validates_k():
    results = RankedResults.from_scores("q", [Document("a"), Document("b")], [0.1, 0.2])
    assert [r.text for r in results.top_k(1)] == ["b"]
    assert len(results.top_k(10)) == 2
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInputError, match="top_k"):
            results.top_k(bad)


def test_results_pickle_and_compare_by_value():
    docs = [Document("a", id="x", title="t", metadata={"k": [1, 2]}), Document("b")]
    results = RankedResults.from_scores("q", docs, [1.0, 2.0], model="m")
    clone = pickle.loads(pickle.dumps(results))
    assert clone == results
    assert clone.results[1].document.metadata == {"k": [1, 2]}
    assert RankedResults.from_scores("q", docs, [1.0, 2.5]) != results


def test_to_dicts_carries_id_title_metadata_and_index():
    meta = {"price": 3}
    results = RankedResults.from_scores("q", [Document("a", id=7, title="T", metadata=meta)], [0.3])
    assert results.to_dicts() == [{"rank": 1, "index": 0, "score": 0.3, "text": "a", "id": 7, "title": "T",
                                   "metadata": {"price": 3}}]
    assert results[0].document.metadata is meta  # the caller's own object, not a copy


def test_dict_inputs_keep_every_key():
    docs = to_documents([{"text": "t", "id": "d1", "url": "http://x", "metadata": {"a": 1}}, "plain"])
    assert docs[0].id == "d1"
    assert dict(docs[0].metadata) == {"a": 1, "url": "http://x"}
    assert docs[1] == Document("plain")


def test_structured_items_choose_their_fields():
    doc = to_documents([{"name": "Trail shoe", "body": "Grippy sole", "price": 90}])[0]
    assert document_text(doc, ("name", "body")) == "Trail shoe\nGrippy sole"
    assert document_text(Document("body", title="Title"), ("title", "text")) == "Title\nbody"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([3], "document 0 must be a str"),
        ([{"text": 5}], "document 0: 'text' must be a str"),
        ("just a string", "wrap it in a list"),
        ([{"text": "x", "metadata": 3}], "'metadata' must be a dict"),
    ],
)
def test_bad_documents_are_named(bad, message):
    with pytest.raises(InvalidInputError, match=message):
        to_documents(bad)


def test_document_rejects_non_string_text():
    with pytest.raises(InvalidInputError, match="Document.text must be a str, got int"):
        Document(42)


def test_rank_order_is_the_one_ordering_rule():
    import numpy as np

    from rankwise.types import rank_order

    scores = [0.5, 2.0, 0.5, 2.0, -1.0]
    assert rank_order(scores) == [1, 3, 0, 2, 4]  # best first, ties by input order
    assert rank_order(np.asarray(scores)) == rank_order(scores)  # the server's score arrays order the same
    ranked = RankedResults.from_scores("q", [Document(str(s)) for s in scores], scores)
    assert [r.index for r in ranked] == rank_order(scores)

"""Metrics, significance tests and the report against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rankwise.errors import InvalidInputError
from rankwise.evaluation import compare, evaluate_run, paired_t_test, randomization_test
from rankwise.evaluation.metrics import parse_metric, trec_order

# Two queries, graded judgements. q1: d1=1, d2=2, d3=0 (judged non-relevant), d9=1 (never retrieved).
QRELS = {"q1": {"d1": 1, "d2": 2, "d3": 0, "d9": 1}, "q2": {"e2": 1}}
RUN = {
    "q1": [("d3", 5.0), ("d1", 4.0), ("x", 3.0), ("d2", 2.0)],
    "q2": [("y", 2.0), ("z", 1.5), ("e2", 1.0)],
}
LOG2 = math.log2


def test_ndcg_at_10_matches_hand_computation() -> None:
    # q1: gains by rank 0,1,0,2 -> DCG = 1/log2(3) + 2/log2(5); ideal gains 2,1,1 -> 2 + 1/log2(3) + 1/log2(4)
    dcg = 1 / LOG2(3) + 2 / LOG2(5)
    idcg = 2 + 1 / LOG2(3) + 1 / LOG2(4)
    q2 = (1 / LOG2(4)) / 1.0
    scores = evaluate_run(RUN, QRELS, ["ndcg@10"])
    assert scores["ndcg@10"]["q1"] == pytest.approx(dcg / idcg, abs=1e-12)
    assert scores["ndcg@10"]["q2"] == pytest.approx(q2, abs=1e-12)


def test_ndcg_cut_ignores_documents_below_the_cut() -> None:
    scores = evaluate_run(RUN, QRELS, ["ndcg@2"])
    idcg2 = 2 + 1 / LOG2(3)
    assert scores["ndcg@2"]["q1"] == pytest.approx((1 / LOG2(3)) / idcg2, abs=1e-12)
    assert scores["ndcg@2"]["q2"] == 0.0


def test_mrr_recall_map_with_threshold_one_and_two() -> None:
    one = evaluate_run(RUN, QRELS, ["mrr@10", "mrr@2", "recall@3", "map"], relevance_threshold=1)
    assert one["mrr@10"] == {"q1": 0.5, "q2": pytest.approx(1 / 3)}
    assert one["mrr@2"] == {"q1": 0.5, "q2": 0.0}  # q2's first relevant is at rank 3, past the cut
    assert one["recall@3"]["q1"] == pytest.approx(1 / 3)  # d1 of {d1, d2, d9}
    # AP q1: relevant at ranks 2 (P=1/2) and 4 (P=2/4), 3 relevant in all -> (0.5 + 0.5) / 3
    assert one["map"]["q1"] == pytest.approx(1 / 3)
    two = evaluate_run(RUN, QRELS, ["mrr@10", "recall@3", "map"], relevance_threshold=2)
    assert two["mrr@10"]["q1"] == 0.25  # only d2 (grade 2) counts, at rank 4
    assert two["recall@3"]["q1"] == 0.0
    assert two["map"]["q1"] == pytest.approx(0.25)


def test_query_without_retrieved_documents_scores_zero() -> None:
    scores = evaluate_run({"q1": RUN["q1"]}, QRELS, ["ndcg@10", "mrr@10"])
    assert scores["ndcg@10"]["q2"] == 0.0 and scores["mrr@10"]["q2"] == 0.0
    assert set(scores["ndcg@10"]) == {"q1", "q2"}


def test_trec_order_breaks_ties_by_document_id_descending() -> None:
    assert trec_order([("a", 1.0), ("c", 1.0), ("b", 2.0)]) == [("b", 2.0), ("c", 1.0), ("a", 1.0)]
    # the cut for mrr@1 follows that order: "c" (relevant) wins the tie against "a"
    scores = evaluate_run({"q": [("a", 1.0), ("c", 1.0)]}, {"q": {"c": 1}}, ["mrr@1"])
    assert scores["mrr@1"]["q"] == 1.0


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "mrr@x", "bleu", ""])
def test_unknown_metric_names_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="metric"):
        parse_metric(bad)


def test_relevance_threshold_must_be_positive_int() -> None:
    with pytest.raises(InvalidInputError, match="relevance_threshold"):
        evaluate_run(RUN, QRELS, ["map"], relevance_threshold=0)


def test_randomization_test_exact_for_small_samples() -> None:
    # 3 queries all improved by 1: only the all-plus and all-minus sign patterns reach |mean| = 1 -> p = 2/8
    assert randomization_test(np.zeros(3), np.ones(3)) == pytest.approx(0.25)
    assert randomization_test(np.zeros(3), np.zeros(3)) == 1.0


def test_randomization_and_t_test_agree_on_a_clear_effect() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(200)
    b = a + 0.05 + rng.normal(0, 0.05, 200)
    assert randomization_test(a, b, trials=2000) < 0.01
    assert paired_t_test(a, b) < 0.01
    balanced = a + np.tile([0.1, -0.1], 100)  # mean change exactly 0
    assert randomization_test(a, balanced, trials=2000) > 0.9


def test_randomization_test_is_seeded() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(50), rng.random(50)
    assert randomization_test(a, b, trials=500, seed=3) == randomization_test(a, b, trials=500, seed=3)


def test_t_test_matches_scipy_and_handles_no_variance() -> None:
    from scipy import stats

    a, b = np.array([0.1, 0.5, 0.3, 0.9]), np.array([0.2, 0.4, 0.6, 1.0])
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert paired_t_test(a, a) == 1.0


def test_compare_counts_wins_ties_losses() -> None:
    c = compare({"a": 0.2, "b": 0.5, "c": 0.9}, {"a": 0.4, "b": 0.5, "c": 0.1}, metric="ndcg@10")
    assert (c.wins, c.ties, c.losses) == (1, 1, 1)
    assert c.delta == pytest.approx((0.4 + 0.5 + 0.1 - 0.2 - 0.5 - 0.9) / 3)
    with pytest.raises(InvalidInputError, match="different queries"):
        compare({"a": 1.0}, {"b": 1.0}, metric="map")

"""IR metrics computed by pytrec_eval (trec_eval's own code), per query.

Metric names: ``ndcg@K`` (graded gains, trec_eval's ``ndcg_cut``), ``mrr@K`` (reciprocal rank of the first
relevant document within the top K), ``recall@K``, ``p@K`` (precision) and ``map`` (over the whole ranked
list). Binary metrics (all but nDCG) count a document as relevant when its grade is
``>= relevance_threshold``; nDCG uses the grades as gains whatever the threshold. Queries that have
judgements but no retrieved documents score 0 (trec_eval ``-c``).

Documents are ordered as trec_eval orders them: by score, descending, ties by document id, descending.

Example:
    >>> qrels = {"q1": {"d1": 1, "d2": 2, "d3": 0}}
    >>> run = {"q1": [("d1", 3.0), ("d2", 2.0), ("d3", 1.0)]}
    >>> scores = evaluate_run(run, qrels, ["ndcg@10", "mrr@10"], relevance_threshold=2)
    >>> round(scores["ndcg@10"]["q1"], 4), scores["mrr@10"]["q1"]
    (0.8597, 0.5)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from rankwise.errors import InvalidInputError, require

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@100", "map")
_PATTERN = re.compile(r"^(ndcg|mrr|recall|p)@([1-9][0-9]*)$|^map$")


def parse_metric(name: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ``"map"`` -> ``("map", None)``.

    Raises:
        InvalidInputError: an unknown metric name.
    """
    text = name.strip().lower()
    match = _PATTERN.match(text)
    if match is None:
        raise InvalidInputError(
            f"unknown metric {name!r}; use ndcg@K, mrr@K, recall@K, p@K or map (e.g. ndcg@10)."
        )
    return ("map", None) if text == "map" else (match.group(1), int(match.group(2)))


def trec_order(ranked: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """``ranked`` in trec_eval's order: score descending, ties by document id descending."""
    by_id = sorted(ranked, key=lambda x: x[0], reverse=True)
    return sorted(by_id, key=lambda x: -x[1])


def _measure(kind: str, k: int | None) -> tuple[str, str]:
    """pytrec_eval measure to request and the key it answers under."""
    if kind == "ndcg":
        return f"ndcg_cut.{k}", f"ndcg_cut_{k}"
    if kind == "recall":
        return f"recall.{k}", f"recall_{k}"
    if kind == "p":
        return f"P.{k}", f"P_{k}"
    if kind == "mrr":
        return "recip_rank", "recip_rank"
    return "map", "map"


def evaluate_run(
    run: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    relevance_threshold: int = 1,
) -> dict[str, dict[str, float]]:
    """Per-query scores: ``{metric: {query id: value}}`` for every query in ``qrels``.

    Args:
        run: ``{query id: [(doc id, score), ...]}``; order within a list does not matter (scores decide).
        qrels: ``{query id: {doc id: grade}}``; only these queries are scored.
        metrics: names as in :data:`DEFAULT_METRICS`.
        relevance_threshold: minimum grade that counts as relevant for binary metrics (>= 1).
    """
    pytrec_eval = require("pytrec_eval", "eval", "Evaluation metrics (pytrec_eval-terrier)")
    if (
        isinstance(relevance_threshold, bool)
        or not isinstance(relevance_threshold, int)
        or relevance_threshold < 1
    ):
        raise InvalidInputError(f"relevance_threshold must be an int >= 1, got {relevance_threshold!r}.")
    parsed = {m: parse_metric(m) for m in metrics}
    qrels_plain = {q: {d: int(g) for d, g in j.items()} for q, j in qrels.items()}
    out: dict[str, dict[str, float]] = {m: {q: 0.0 for q in qrels_plain} for m in metrics}
    # mrr@K needs the run cut at K (trec_eval's recip_rank is uncut); group metrics by the cut they need.
    cuts: dict[int | None, list[str]] = {}
    for name, (kind, k) in parsed.items():
        cuts.setdefault(k if kind == "mrr" else None, []).append(name)
    for cut, names in cuts.items():
        sub_run: dict[str, dict[str, float]] = {}
        for q in qrels_plain:
            ranked = trec_order(run.get(q, ()))
            if cut is not None:
                ranked = ranked[:cut]
            if ranked:
                sub_run[q] = {d: float(s) for d, s in ranked}
        if not sub_run:
            continue
        requests = {name: _measure(*parsed[name]) for name in names}
        evaluator = pytrec_eval.RelevanceEvaluator(
            qrels_plain, {req for req, _ in requests.values()}, relevance_level=relevance_threshold
        )
        results = evaluator.evaluate(sub_run)
        for name, (_, key) in requests.items():
            for q, values in results.items():
                out[name][q] = float(values[key])
    return out


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over its queries (0.0 for a metric with no query)."""
    return {m: (sum(v.values()) / len(v) if v else 0.0) for m, v in per_query.items()}

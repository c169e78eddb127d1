"""The prior an LTR model boosts from: a weighted sum of its members' per-query z-scores.

LambdaMART normally starts every candidate at score 0 and lets trees build the whole ranking. With a few dozen
judged queries the trees learn noise and the model can rank below a plain z-score fusion of its members (issue 14:
medline and cisi, 24-61 training queries a fold). So training first fits a **prior** -- weights for the
``zscore:<member>`` features, found by coordinate ascent on the training queries' mean nDCG@10 -- and LightGBM
boosts from it (``init_score``): trees only learn corrections, and early stopping on validation queries keeps
no more of them than help. Serving adds the same prior to the trees' output (:func:`prior_scores`), so a model
whose trees learnt nothing ranks like the best fusion of its members on the training data.

Chosen on train/dev only. Seeded subsets of scifact/train scored on 200 other train queries (mean of 6 draws):
24 training queries 0.722 with the prior vs 0.684 without (the fitted fusion alone 0.716, ``hybrid`` 0.716); 100:
0.730 vs 0.718 (constant, monotone leaves both). With linear leaves (200+ queries, ``fit.leaf_params``) the leaves learn the weighting themselves and the prior is a wash: 300 queries 0.742
vs 0.740, scifact/train 5-fold CV 0.768 vs 0.774, nfcorpus train -> dev 0.324 vs 0.321. So ``prior="auto"`` fits
one with constant leaves only. A prior scaled up 3x (trees correct it less) was no better.

Example:
    >>> import numpy as np
    >>> names = ["score:bm25", "zscore:bm25", "zscore:bi"]
    >>> x = np.array([[9.0, 1.0, -1.0], [7.0, -1.0, 1.0]])
    >>> labels = np.array([0, 1])
    >>> w = fit_prior([(x, labels)], names)
    >>> w["zscore:bi"] > w["zscore:bm25"]
    True
    >>> prior_scores(x, names, w).tolist()[1] > prior_scores(x, names, w).tolist()[0]
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rankwise.errors import InvalidInputError

PRIOR_PREFIX = "zscore:"
WEIGHT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
MAX_PASSES = 3
PRIOR_CHOICES = ("auto", "fit")
_DISCOUNT = 1.0 / np.log2(np.arange(2, 12))  # positions 1..10


def ndcg_at_10(scores: np.ndarray, labels: np.ndarray) -> float:
    """nDCG@10 (exponential gain) of one query's candidates ranked by ``scores``; ties by input order; 0 when no
    candidate is relevant. The ideal ranking is over the same candidates (what a re-ranker can reach)."""
    gains = np.power(2.0, np.asarray(labels, dtype=np.float64)) - 1.0
    top = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))[:10]
    ideal = np.sort(gains)[::-1][:10]
    best = float(ideal @ _DISCOUNT[: len(ideal)])
    return float(gains[top] @ _DISCOUNT[: len(top)]) / best if best > 0 else 0.0


def prior_columns(feature_names: Sequence[str]) -> list[str]:
    """The features a prior weighs: every member's per-query z-score."""
    return [n for n in feature_names if n.startswith(PRIOR_PREFIX)]


def fit_prior(blocks: Sequence[tuple[np.ndarray, np.ndarray]], feature_names: Sequence[str]) -> dict[str, float]:
    """Weights (summing to 1) of the ``zscore:`` features that maximise mean nDCG@10 over ``blocks`` (one
    ``(features, labels)`` per training query).

    Coordinate ascent from equal weights: each weight in turn tries every value of :data:`WEIGHT_GRID` and keeps
    the best (strict improvement only, so ties keep the simpler, earlier weights), for up to :data:`MAX_PASSES`
    passes. A handful of numbers fitted on the training queries: it cannot overfit the way trees do.
    """
    names = prior_columns(feature_names)
    if not names:
        return {}
    index = [list(feature_names).index(n) for n in names]
    groups = [(np.asarray(x)[:, index], np.asarray(y)) for x, y in blocks if len(y)]

    def quality(w: np.ndarray) -> float:
        return float(np.mean([ndcg_at_10(z @ w, y) for z, y in groups])) if groups else 0.0

    weights = np.ones(len(names))
    best = quality(weights)
    for _ in range(MAX_PASSES):
        moved = False
        for j in range(len(names)):
            for value in WEIGHT_GRID:
                trial = weights.copy()
                trial[j] = value
                if trial.any() and (q := quality(trial)) > best + 1e-12:
                    best, weights, moved = q, trial, True
        if not moved:
            break
    weights = weights / weights.sum()
    return {n: round(float(w), 6) for n, w in zip(names, weights)}


def prior_scores(features: np.ndarray, feature_names: Sequence[str], prior: Mapping[str, float]) -> np.ndarray:
    """The prior of each row: ``sum(weight * feature)`` (zeros for an empty prior)."""
    features = np.asarray(features, dtype=np.float64)
    out = np.zeros(features.shape[0])
    names = list(feature_names)
    for name, weight in prior.items():
        if name not in names:
            raise InvalidInputError(f"prior weighs {name!r}, which is no feature of this model ({names}); retrain it.")
        out += float(weight) * features[:, names.index(name)]
    return out


def check_prior(prior: object, feature_names: Sequence[str]) -> Mapping[str, float] | str | None:
    """A ``prior`` argument: ``"auto"`` (default: ``"fit"`` when the leaves are constant, i.e. on small training
    sets, none with linear leaves), ``"fit"``, ``None`` (boost from zero) or ``{member label or feature: weight}``
    (member labels become their ``zscore:`` feature)."""
    if prior is None or prior in PRIOR_CHOICES:
        return prior  # type: ignore[return-value]
    if not isinstance(prior, Mapping) or not prior:
        raise InvalidInputError(
            f"prior must be 'auto', 'fit', None or a mapping of member label to weight, got {prior!r}."
        )
    out: dict[str, float] = {}
    for key, weight in prior.items():
        name = key if str(key).startswith(PRIOR_PREFIX) else f"{PRIOR_PREFIX}{key}"
        if name not in feature_names:
            members = [n[len(PRIOR_PREFIX):] for n in prior_columns(feature_names)]
            raise InvalidInputError(f"prior names {key!r}, which is no member; members: {members}.")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight):
            raise InvalidInputError(f"prior weight of {key!r} must be a finite number, got {weight!r}.")
        out[name] = float(weight)
    return out

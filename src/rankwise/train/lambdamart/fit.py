"""LightGBM LambdaMART (``objective="lambdarank"``) on feature matrices of judged groups.

On small training sets boosting starts from a prior (:mod:`rankwise.train.lambdamart.prior`: the best z-score
fusion of the members on the training queries), so trees learn corrections to it. Early stopping watches nDCG@10
on the validation groups (a seeded query-grouped share of the training queries, or an explicit dev split):
training stops when it has not improved for ``early_stopping`` rounds and the model keeps the best round -- or no
trees at all when that round does not beat the prior alone on the validation queries. Without validation groups it
trains ``num_boost_round`` rounds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError, require
from rankwise.train.lambdamart.prior import check_prior, fit_prior, ndcg_at_10, prior_scores

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.05,
    "num_leaves": 15,  # few judged queries per collection: small trees overfit less
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambdarank_truncation_level": 20,  # the pairs that move nDCG@10
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,  # small matrices; and the machines these run on are shared
    "verbosity": -1,
}


@dataclass(frozen=True)
class Matrix:
    """Rows of several groups stacked, with labels and LightGBM's group sizes."""

    features: np.ndarray
    labels: np.ndarray
    sizes: np.ndarray

    def groups(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``(features, labels)`` of each group, in order."""
        cuts = np.cumsum(self.sizes)[:-1]
        return list(zip(np.split(self.features, cuts), np.split(self.labels, cuts)))

    @classmethod
    def stack(cls, blocks: Sequence[tuple[np.ndarray, np.ndarray]], width: int) -> Matrix:
        if not blocks:
            return cls(np.zeros((0, width)), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32))
        return cls(
            np.vstack([x for x, _ in blocks]),
            np.concatenate([y for _, y in blocks]).astype(np.int32),
            np.array([len(y) for _, y in blocks], dtype=np.int32),
        )


@dataclass(frozen=True)
class FitResult:
    booster: Any
    best_iteration: int
    params: dict[str, Any]
    report: dict[str, Any]
    feature_names: tuple[str, ...] = ()
    prior: dict[str, float] = field(default_factory=dict)
    trees: bool = True  # False: the trees did not beat the prior on validation, the model is the prior alone

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of feature rows: the trees at the best iteration (when kept) plus the prior, as serving does."""
        return model_scores(features, self.feature_names, self.prior, self.booster if self.trees else None,
                            self.best_iteration or None)


def model_scores(features: np.ndarray, feature_names: Sequence[str], prior: Mapping[str, float], booster: Any | None,
                 num_iteration: int | None = None) -> np.ndarray:
    """How an LTR model scores feature rows: the prior plus the trees (``booster``; None when the model has none),
    one thread -- a candidate list is small, and thread start-up would cost more than the trees. Training,
    validation and serving all score through this."""
    out = prior_scores(features, feature_names, prior)
    if booster is not None:
        out += booster.predict(features, num_iteration=num_iteration, num_threads=1)
    return out


def _check_rounds(num_boost_round: int, early_stopping: int) -> None:
    for name, value, low in (("num_boost_round", num_boost_round, 1), ("early_stopping", early_stopping, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}.")


# Leaves by training-set size (``leaf_params``). A linear model in each leaf suits member scores, which combine
# roughly linearly (why a z-score fusion is hard to beat), but it needs data: on scifact/train (5-fold CV, ~520
# training queries a fold) linear leaves reached nDCG@10 0.774 against 0.756 for constant leaves with monotone
# constraints (hybrid 0.734); on seeded subsets of scifact/train scored on 200 other train queries, linear leaves
# lost at 24 training queries (0.635 vs 0.684; hybrid 0.716) and at 100 (0.709 vs 0.718), won at 300 (0.739 vs
# 0.737). nfcorpus/dev (2,590 training queries): a tie (0.321 vs 0.322). Below this many training queries:
# constant leaves + monotone constraints.
LINEAR_LEAVES_FROM = 200


def leaf_params(feature_names: Sequence[str], train_queries: int) -> dict[str, Any]:
    """The leaf model for a training set of ``train_queries`` queries (see ``LINEAR_LEAVES_FROM``): linear leaves,
    or constant leaves that are monotone in every member score (a higher member score never lowers a candidate)."""
    if train_queries >= LINEAR_LEAVES_FROM:
        return {"linear_tree": True}
    return {"linear_tree": False, "monotone_constraints": monotone(feature_names)}


def train_booster(
    train: Matrix,
    valid: Matrix,
    feature_names: Sequence[str],
    *,
    params: Mapping[str, Any] | None = None,
    num_boost_round: int = 500,
    early_stopping: int = 50,
    seed: int = 0,
    prior: Mapping[str, float] | str | None = "auto",
) -> FitResult:
    """Train LambdaMART from a prior (:func:`~rankwise.train.lambdamart.prior.check_prior`: ``"auto"`` fits one
    when the leaves are constant, ``"fit"`` always, a ``{feature: weight}`` mapping is used as given, ``None``
    boosts from zero); the report has the prior, the best iteration, train/valid nDCG@10 there, and gain
    importances."""
    lgb = require("lightgbm", "ltr", "learning to rank (LightGBM LambdaMART)")
    _check_rounds(num_boost_round, early_stopping)
    if not len(train.sizes):
        raise InvalidInputError("no training queries left; training needs judged queries with a relevant candidate.")
    chosen_prior = check_prior(prior, feature_names)
    chosen = dict(params or {})
    leaves = {} if "linear_tree" in chosen else leaf_params(feature_names, len(train.sizes))
    merged = {**DEFAULT_PARAMS, **leaves, **chosen, "seed": seed}
    if chosen_prior == "auto":
        chosen_prior = None if merged.get("linear_tree") else "fit"
    weights = dict(fit_prior(train.groups(), feature_names) if chosen_prior == "fit" else chosen_prior or {})
    train_set, sets, labels = _datasets(lgb, train, valid, feature_names, weights)
    history: dict[str, Any] = {}
    callbacks = [lgb.record_evaluation(history)]
    if len(valid.sizes) and early_stopping:
        callbacks.append(lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False))
    start = time.perf_counter()
    booster = lgb.train(merged, train_set, num_boost_round=num_boost_round, valid_sets=sets, valid_names=labels,
                        callbacks=callbacks)
    seconds = time.perf_counter() - start
    best = int(booster.best_iteration or booster.current_iteration())
    trees, prior_valid = _trees_earn_their_place(booster, best, valid, feature_names, weights)
    report = {
        "prior": weights,
        "trees_kept": trees,
        "valid_ndcg@10_prior_alone": prior_valid,
        "best_iteration": best,
        # lgb.train keeps only the best rounds after early stopping: count the rounds evaluated instead
        "rounds_trained": len(history.get("train", {}).get("ndcg@10", [])) or booster.current_iteration(),
        "train_ndcg@10": _at(history, "train", best),
        "valid_ndcg@10": _at(history, "valid", best),
        "fit_seconds": round(seconds, 3),
        "train_queries": len(train.sizes),
        "train_candidates": len(train.labels),
        "valid_queries": len(valid.sizes),
        "feature_importance_gain": _importances(booster, feature_names, best),
    }
    return FitResult(booster, best, merged, report, tuple(feature_names), weights, trees)


def _datasets(lgb: Any, train: Matrix, valid: Matrix, feature_names: Sequence[str],
              prior: Mapping[str, float]) -> tuple[Any, list[Any], list[str]]:
    """LightGBM's training set, the sets it evaluates (train, and valid when there is one) and their names; each
    starts from the prior (``init_score``)."""
    names = [_lgb_name(n) for n in feature_names]
    train_set = lgb.Dataset(train.features, train.labels, group=train.sizes, feature_name=names,
                            init_score=prior_scores(train.features, feature_names, prior),
                            free_raw_data=False, params={"feature_pre_filter": False})
    if not len(valid.sizes):
        return train_set, [train_set], ["train"]
    valid_set = lgb.Dataset(valid.features, valid.labels, group=valid.sizes, reference=train_set,
                            init_score=prior_scores(valid.features, feature_names, prior),
                            params={"feature_pre_filter": False})
    return train_set, [train_set, valid_set], ["train", "valid"]


def _trees_earn_their_place(booster: Any, best: int, valid: Matrix, feature_names: Sequence[str],
                            prior: Mapping[str, float]) -> tuple[bool, float | None]:
    """Whether the trees beat the prior alone on the validation queries (mean nDCG@10), and the prior's figure.

    LightGBM's early stopping compares rounds 1, 2, ... but never round 0 -- the prior by itself. On a few dozen
    training queries the best round can still rank the held-out queries worse than the prior, and then the model
    keeps the prior alone. No prior or no validation queries: the trees are kept.
    """
    if not prior or not len(valid.sizes):
        return True, None
    groups = valid.groups()

    def mean_ndcg(trees: Any | None) -> float:
        return float(np.mean([ndcg_at_10(model_scores(x, feature_names, prior, trees, best), y) for x, y in groups]))

    alone = mean_ndcg(None)
    return mean_ndcg(booster) > alone, round(alone, 4)


def monotone(feature_names: Sequence[str]) -> list[int]:
    """LightGBM monotone constraints that keep a candidate from ranking lower because a member scored it higher
    (+1 on ``score:``/``zscore:`` features, and on ``history:`` ones: more judged relevance never lowers one), free
    for metadata and text features: used with constant leaves on small training sets (:func:`leaf_params`), where they
    keep a few dozen queries from teaching trees noise."""
    return [1 if n.startswith(("score:", "zscore:", "history:")) else 0 for n in feature_names]


def _lgb_name(name: str) -> str:
    """LightGBM refuses some characters in feature names (JSON specials); the manifest keeps the real names."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def _at(history: Mapping[str, Any], name: str, best: int) -> float | None:
    values = history.get(name, {}).get("ndcg@10")
    if not values:
        return None
    return round(float(values[min(best, len(values)) - 1]), 4)


def _importances(booster: Any, names: Sequence[str], best: int) -> dict[str, float]:
    """Total gain per feature at the best iteration, as shares of the total (sum 1), largest first."""
    gain = booster.feature_importance(importance_type="gain", iteration=best)
    total = float(np.sum(gain)) or 1.0
    pairs = sorted(zip(names, gain), key=lambda p: -p[1])
    return {name: round(float(g) / total, 4) for name, g in pairs}

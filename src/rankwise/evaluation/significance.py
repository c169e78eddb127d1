"""Is a re-ranker's gain over the base real? Paired tests over per-query scores.

* paired t-test (``scipy.stats.ttest_rel``), two-sided;
* paired randomization (sign-flip permutation) test: under the null hypothesis each query's two scores are
  exchangeable, so the sign of each per-query difference is flipped at random ``trials`` times; the p-value is
  the share of flips whose mean difference is at least as large in magnitude as the observed one, with the +1
  correction (Smucker, Allan & Carterette 2007 recommend it for IR evaluation);
* wins / ties / losses per query.

Example:
    >>> base = {"q1": 0.2, "q2": 0.5, "q3": 0.1, "q4": 0.4}
    >>> new = {"q1": 0.6, "q2": 0.5, "q3": 0.3, "q4": 0.9}
    >>> c = compare(base, new, metric="ndcg@10", trials=2000)
    >>> (c.wins, c.ties, c.losses), round(c.delta, 3)
    ((3, 1, 0), 0.275)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from rankwise.errors import InvalidInputError, require

TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Comparison:
    """A system against the base on one metric, over the same queries."""

    metric: str
    queries: int
    base_mean: float
    system_mean: float
    delta: float
    relative_delta: float | None  # delta / base_mean; None when the base mean is 0
    t_test_p: float
    randomization_p: float
    wins: int
    ties: int
    losses: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def paired_t_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test; 1.0 when every difference is the same (no variance to test)."""
    stats = require("scipy.stats", "eval", "The paired t-test (scipy)")
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if len(diff) < 2 or np.allclose(diff, diff[0], atol=TIE_TOLERANCE, rtol=0):
        return 1.0 if len(diff) < 2 or abs(diff[0]) <= TIE_TOLERANCE else 0.0
    p = float(stats.ttest_rel(b, a).pvalue)
    return 1.0 if math.isnan(p) else p


def randomization_test(a: np.ndarray, b: np.ndarray, trials: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of the paired randomization (sign-flip) test on the mean difference.

    Exact (all 2^n sign patterns) when n <= 16, otherwise ``trials`` random patterns from ``seed``.
    """
    if trials < 1:
        raise InvalidInputError(f"trials must be >= 1, got {trials}.")
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = len(diff)
    if n == 0:
        return 1.0
    observed = abs(diff.mean())
    if n <= 16:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        means = np.abs(patterns @ diff) / n
        return float(np.mean(means >= observed - TIE_TOLERANCE))
    rng = np.random.default_rng(seed)
    hits, done, chunk = 0, 0, max(1, min(trials, 4_000_000 // n))
    while done < trials:
        size = min(chunk, trials - done)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ diff) / n >= observed - TIE_TOLERANCE))
        done += size
    return (hits + 1) / (trials + 1)


def compare(
    base: Mapping[str, float],
    system: Mapping[str, float],
    *,
    metric: str,
    trials: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare per-query scores of ``system`` against ``base`` (both keyed by query id, same query set)."""
    if set(base) != set(system):
        raise InvalidInputError(
            f"{metric}: base and system were scored on different queries "
            f"({len(set(base) ^ set(system))} differ); evaluate both on the same dataset split."
        )
    queries = sorted(base)
    a = np.array([base[q] for q in queries], dtype=np.float64)
    b = np.array([system[q] for q in queries], dtype=np.float64)
    diff = b - a
    base_mean = float(a.mean()) if len(a) else 0.0
    system_mean = float(b.mean()) if len(b) else 0.0
    delta = system_mean - base_mean
    return Comparison(
        metric=metric,
        queries=len(queries),
        base_mean=base_mean,
        system_mean=system_mean,
        delta=delta,
        relative_delta=delta / base_mean if base_mean else None,
        t_test_p=paired_t_test(a, b),
        randomization_p=randomization_test(a, b, trials, seed),
        wins=int(np.sum(diff > TIE_TOLERANCE)),
        ties=int(np.sum(np.abs(diff) <= TIE_TOLERANCE)),
        losses=int(np.sum(diff < -TIE_TOLERANCE)),
    )

"""Statistics helpers shared by recognition, the policy comparison and the evaluation.

* :func:`z_quantile` and :data:`Z95`: the two-sided normal quantile of a confidence level.
* :func:`wilson_interval`: the Wilson score interval of a proportion (a recall, a judge's hit rate).
* :func:`mean_sd` and :func:`paired_difference`: figures over runs, and the t interval of a paired
  difference between two variants run on the same folds and seeds.
* :func:`bootstrap`: percentile intervals of a statistic over resamples of the test items (seeded).
"""

from __future__ import annotations

import warnings

import numpy as np

#: The 95 % two-sided normal quantile.
Z95 = 1.959963984540054


def z_quantile(level: float = 0.95) -> float:
    """The two-sided normal quantile of ``level`` (1.96 at 0.95)."""
    from scipy import stats  # here, not at the top: scipy.stats costs about 0.6 s in every stage that imports this

    return float(stats.norm.ppf(0.5 + level / 2))


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion hits/n; None when n = 0 (no support)."""
    if n == 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_sd(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count of per-run figures."""
    array = np.asarray(values, float)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0, int(array.size)


def paired_difference(first: list[float], second: list[float], level: float = 0.95) -> dict[str, float]:
    """second - first over runs paired by fold and seed: mean, t interval and pairs.

    Raises:
        ValueError: the two lists do not pair up.
    """
    a, b = np.asarray(first, float), np.asarray(second, float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired runs must match one to one, got {a.size} and {b.size}")
    diff = b - a
    mean = float(diff.mean())
    if diff.size == 1:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "pairs": 1}
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "pairs": int(diff.size)}


def bootstrap(truth: np.ndarray, statistic, resamples: int, seed: int, level: float = 0.95
              ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval (low, high) per component of ``statistic(indices)`` over clip resamples."""
    rng = np.random.default_rng(seed)
    draws = np.stack([statistic(rng.integers(0, truth.size, truth.size)) for _ in range(resamples)])
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():  # a figure without support in every resample has no interval: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(draws, tail, axis=0), np.nanpercentile(draws, 100 - tail, axis=0)

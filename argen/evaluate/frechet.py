"""The Fréchet distance between two sets of features, and its grouped forms (paper supp. D, eq. 29-33).

FD = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)), with covariances over N - 1, in float64.
Tr (S_1 S_2)^(1/2) is the sum of the square roots of the eigenvalues of S_1^(1/2) S_2 S_1^(1/2), a symmetric
positive semi-definite matrix with the same eigenvalues as S_1 S_2: no complex ``sqrtm`` is needed, and
round-off cannot produce an imaginary part to discard.

With N at or below the feature dimension the covariance is rank-deficient: the distance is then biased
upward and unstable, and comparable only between sets of equal N. Every result carries N and, in that
case, a warning saying so.

sFVD and tFVD (eq. 30-33) are :func:`grouped_fd` with subjects or expressions as the groups: one distance per
group, then their plain mean over groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian fitted to a feature set.

    Args:
        features: (N, D) feature rows.

    Returns:
        (mean (D,), covariance (D, D) with N - 1 in the denominator), both float64.

    Raises:
        ValueError: not a 2-d array, or fewer than 2 rows.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need at least 2 feature rows (N, D), got shape {features.shape}")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False, ddof=1))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix, round-off negative eigenvalues set to 0."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (module docstring).

    Args:
        mu1, mu2: means (D,).
        sigma1, sigma2: covariances (D, D), symmetric positive semi-definite.

    Returns:
        The distance, >= 0 (a tiny negative round-off result is returned as 0).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum())
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def fd_from_features(real: np.ndarray, generated: np.ndarray) -> float:
    """The Fréchet distance between the Gaussians fitted to two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(generated))


def rank_warning(n_real: int, n_generated: int, dim: int) -> str:
    """The warning a distance from ``min(N) <= dim`` rows carries.

    Returns:
        The warning text, or '' when both sets have more rows than the dimension.
    """
    n = min(n_real, n_generated)
    if n > dim:
        return ""
    return (f"N={n} <= dim {dim}: covariance rank-deficient, the figure is unstable and biased upward; "
            f"compare only at equal N")


@dataclass
class FDResult:
    """One Fréchet distance with its sample sizes, dimension, bootstrap interval and warning."""

    value: float
    n_real: int
    n_generated: int
    dim: int
    interval: tuple[float, float] | None
    warning: str


def _resample(rng: np.random.Generator, n_real: int, n_generated: int, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap row indices of both sets: the same indices when paired, independent draws otherwise."""
    real_index = rng.integers(0, n_real, n_real)
    return real_index, (real_index if paired else rng.integers(0, n_generated, n_generated))


def _bootstrap_interval(values: list[float], point: float, level: float) -> tuple[float, float] | None:
    """Bias-corrected percentile bootstrap interval (Efron 1987) around ``point`` (None without finite values).

    Resampling with replacement repeats clips, which shrinks the fitted covariances and pushes nearly every
    resampled distance above the full-sample value: a plain percentile interval can then lie wholly above
    the point value (measured on the demo: floor FD 9.1, percentile interval [9.6, 22.0]). The correction
    shifts both percentiles by z0 = Phi^-1(share of resamples below the point value).
    """
    from scipy.stats import norm

    finite = np.asarray([v for v in values if np.isfinite(v)])
    if len(finite) == 0:
        return None
    below = (np.sum(finite < point) + 0.5 * np.sum(finite == point)) / len(finite)
    z0 = norm.ppf(np.clip(below, 0.5 / len(finite), 1 - 0.5 / len(finite)))
    z = norm.ppf(0.5 + level / 2)
    return (float(np.quantile(finite, norm.cdf(2 * z0 - z))), float(np.quantile(finite, norm.cdf(2 * z0 + z))))


def fd_with_interval(real: np.ndarray, generated: np.ndarray, n_boot: int = 1000, seed: int = 0,
                     paired: bool = False, level: float = 0.95) -> FDResult:
    """The distance on the full sets and a bias-corrected bootstrap interval over clips.

    Args:
        real, generated: features (N, D) and (M, D).
        n_boot: bootstrap resamples (0: no interval).
        seed: seed of ``np.random.default_rng``; the same seed gives the same interval.
        paired: ``real[i]`` and ``generated[i]`` are matched rows (N == M): resample the same indices for both.
        level: the interval's coverage.

    Returns:
        The :class:`FDResult`.

    Raises:
        ValueError: fewer than 2 rows on a side, different widths, or paired sets of different sizes.
    """
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"need feature sets (N, D) of one width, got {real.shape} and {generated.shape}")
    if paired and len(real) != len(generated):
        raise ValueError(f"paired sets need equal sizes, got {len(real)} and {len(generated)}")
    value = fd_from_features(real, generated)
    interval = None
    if n_boot:
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(n_boot):
            real_index, generated_index = _resample(rng, len(real), len(generated), paired)
            values.append(fd_from_features(real[real_index], generated[generated_index]))
        interval = _bootstrap_interval(values, value, level)
    warning = rank_warning(len(real), len(generated), real.shape[1])
    if interval is not None and not interval[0] <= value <= interval[1]:
        warning += ("; " if warning else "") + ("the bootstrap interval misses the full-sample value: at this N "
                                                "resampling inflates the distance beyond its spread, so read the "
                                                "interval as unreliable and compare with the floor instead")
    return FDResult(value, len(real), len(generated), real.shape[1], interval, warning)


def fd_difference(real: np.ndarray, first: np.ndarray, second: np.ndarray, n_boot: int = 1000, seed: int = 0,
                  level: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """FD(real, first) - FD(real, second) for row-matched sets, with a paired bootstrap percentile interval.

    Row i of the three sets belongs together (a real clip, the clip generated from it, its floor clip);
    each resample takes the same rows of all three, so the small-N bias that inflates both distances
    largely cancels in the difference. This is ARGen's excess over the floor at equal N.
    """
    real, first, second = (np.asarray(x, np.float64) for x in (real, first, second))
    if not len(real) == len(first) == len(second):
        raise ValueError(f"row-matched sets need equal sizes, got {len(real)}, {len(first)}, {len(second)}")
    value = fd_from_features(real, first) - fd_from_features(real, second)
    if not n_boot:
        return value, None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        rows = rng.integers(0, len(real), len(real))
        values.append(fd_from_features(real[rows], first[rows]) - fd_from_features(real[rows], second[rows]))
    tail = 100 * (1 - level) / 2
    return value, (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))


@dataclass
class GroupedFD:
    """sFVD / tFVD (eq. 30-33): the distance within each group, and their mean over groups.

    Attributes:
        table: one row per group used: group, n_real, n_generated, fd, warning.
        skipped: one row per group left out: group, n_real, n_generated, reason.
        mean: the mean of the groups' distances (eq. 33); NaN without groups.
        sd: their standard deviation over groups (ddof=1); NaN with fewer than 2 groups.
        interval: bootstrap interval of ``mean`` (None without resamples or groups).
        n_groups: the number of groups in ``table``.
    """

    table: pd.DataFrame
    skipped: pd.DataFrame
    mean: float
    sd: float
    interval: tuple[float, float] | None
    n_groups: int


def grouped_fd(real: np.ndarray, real_groups: np.ndarray, generated: np.ndarray, generated_groups: np.ndarray,
               min_n: int = 2, n_boot: int = 0, seed: int = 0, paired: bool = False,
               level: float = 0.95) -> GroupedFD:
    """Per-group Fréchet distances and their mean (eq. 33), with each group's N.

    A group enters when both sides hold at least ``min_n`` rows (never fewer than 2, which a covariance
    needs); the others are listed in ``skipped`` with the reason ("only in real", "only in generated",
    "N < min_n"). The interval resamples rows within every group, recomputes every group's distance and
    averages them again.

    Args:
        real, generated: features (N, D) and (M, D).
        real_groups, generated_groups: the group (subject or expression) of each row, (N,) and (M,).
        min_n: the fewest rows a group needs on each side.
        n_boot: bootstrap resamples (0: no interval).
        seed: seed of ``np.random.default_rng``.
        paired: ``real[i]`` and ``generated[i]`` are matched rows of the same group: resample pairs.
        level: the interval's coverage.

    Returns:
        The :class:`GroupedFD`.

    Raises:
        ValueError: group labels of another length than their features, or paired sets whose rows or groups
            do not match.
    """
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    real_groups, generated_groups = np.asarray(real_groups), np.asarray(generated_groups)
    if len(real_groups) != len(real) or len(generated_groups) != len(generated):
        raise ValueError(f"one group label per row needed: {len(real)} real rows with {len(real_groups)} labels, "
                         f"{len(generated)} generated rows with {len(generated_groups)} labels")
    if paired and (len(real) != len(generated) or not np.array_equal(real_groups, generated_groups)):
        raise ValueError("paired sets need the same number of rows and the same group on each matched row")
    min_n = max(min_n, 2)
    rows, skipped, members = [], [], []
    for group in sorted(set(real_groups.tolist()) | set(generated_groups.tolist()), key=str):
        real_rows, generated_rows = np.flatnonzero(real_groups == group), np.flatnonzero(generated_groups == group)
        n_real, n_generated = len(real_rows), len(generated_rows)
        if n_generated == 0 or n_real == 0:
            skipped.append((group, n_real, n_generated, "only in real" if n_real else "only in generated"))
        elif min(n_real, n_generated) < min_n:
            skipped.append((group, n_real, n_generated, f"N < {min_n}"))
        else:
            rows.append((group, n_real, n_generated, fd_from_features(real[real_rows], generated[generated_rows]),
                         rank_warning(n_real, n_generated, real.shape[1])))
            members.append((real_rows, generated_rows))
    table = pd.DataFrame(rows, columns=["group", "n_real", "n_generated", "fd", "warning"])
    skipped_table = pd.DataFrame(skipped, columns=["group", "n_real", "n_generated", "reason"])
    if table.empty:
        return GroupedFD(table, skipped_table, float("nan"), float("nan"), None, 0)
    interval = None
    if n_boot:
        rng = np.random.default_rng(seed)
        means = []
        for _ in range(n_boot):
            values = []
            for real_rows, generated_rows in members:
                i, j = _resample(rng, len(real_rows), len(generated_rows), paired)
                values.append(fd_from_features(real[real_rows[i]], generated[generated_rows[j]]))
            means.append(float(np.mean(values)))
        interval = _bootstrap_interval(means, float(table.fd.mean()), level)
    sd = float(table.fd.std(ddof=1)) if len(table) > 1 else float("nan")
    return GroupedFD(table, skipped_table, float(table.fd.mean()), sd, interval, len(table))


def mean_pairwise_distance(features: np.ndarray, metric: str = "euclidean") -> float:
    """A set's diversity in a feature space: the mean distance over all pairs of rows.

    Args:
        features: (N, D) feature rows.
        metric: any metric of ``scipy.spatial.distance.pdist``.

    Returns:
        The mean pairwise distance; NaN for fewer than 2 rows.
    """
    features = np.asarray(features, np.float64)
    if len(features) < 2:
        return float("nan")
    return float(pdist(features, metric=metric).mean())

"""Recognition metrics with their uncertainty (paper sec. 4.1, table 2; honest statistics beyond it).

* **WAR** (weighted average recall) = overall accuracy; **UAR** (unweighted average recall) = the mean of
  the per-class recalls over the classes present in the test split; **AR-<class>** = one class's recall.
* Every recall comes with its **support** (test clips of that class) and a **95 % Wilson interval**
  (:func:`argen.stats.wilson_interval`). A class absent from the test split has "no support": its recall is
  ``None``, never a silent 0 or a division error, and UAR averages only the classes present (the count is
  reported).
* WAR and UAR get a **bootstrap interval over test clips** (:func:`bootstrap_intervals`: percentile,
  seeded, the clips resampled with replacement and both metrics recomputed on each resample).
* Across seeds and folds: mean ± sd (:func:`argen.stats.mean_sd`); between two variants run on the same folds
  and seeds, the **paired difference** with a t interval over the pairs (:func:`argen.stats.paired_difference`).

The paper reports single runs: its DFEW AR-DI of 6.90 % is 2 of 29 test clips, with a Wilson interval of
[1.9 %, 22.0 %].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from argen.stats import wilson_interval

def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class.

    Raises:
        ValueError: lengths differ or a label is outside 0..n_classes-1.
    """
    truth, predicted = np.asarray(truth, int), np.asarray(predicted, int)
    if truth.shape != predicted.shape:
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if truth.size and (min(truth.min(), predicted.min()) < 0 or max(truth.max(), predicted.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


@dataclass(frozen=True)
class ClassRecall:
    """One class's recall with its support and 95 % Wilson interval (recall None: no support)."""

    name: str
    support: int
    correct: int
    recall: float | None
    interval: tuple[float, float] | None


def war_uar(matrix: np.ndarray) -> tuple[float | None, float | None, int]:
    """(WAR, UAR over the classes with support, number of those classes) of a confusion matrix."""
    support = matrix.sum(axis=1)
    total = int(support.sum())
    if total == 0:
        return None, None, 0
    present = support > 0
    recalls = np.diag(matrix)[present] / support[present]
    return float(np.trace(matrix) / total), float(recalls.mean()), int(present.sum())


def class_recalls(matrix: np.ndarray, names: list[str]) -> list[ClassRecall]:
    """Per-class recall, support and Wilson interval."""
    out = []
    for k, name in enumerate(names):
        support, correct = int(matrix[k].sum()), int(matrix[k, k])
        out.append(ClassRecall(name, support, correct, correct / support if support else None,
                               wilson_interval(correct, support)))
    return out


def bootstrap_intervals(truth: np.ndarray, predicted: np.ndarray, n_classes: int, resamples: int = 2000,
                        seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap intervals of WAR and UAR over test clips (seeded)."""
    truth, predicted = np.asarray(truth, int), np.asarray(predicted, int)
    if truth.size == 0:
        return {"WAR": None, "UAR": None}
    rng = np.random.default_rng(seed)
    wars, uars = np.empty(resamples), np.empty(resamples)
    for b in range(resamples):
        pick = rng.integers(0, truth.size, truth.size)
        war, uar, _ = war_uar(confusion_matrix(truth[pick], predicted[pick], n_classes))
        wars[b], uars[b] = war, uar
    tail = (1 - level) / 2 * 100
    return {name: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
            for name, values in (("WAR", wars), ("UAR", uars))}


def paper_name(emotion: str) -> str:
    """The paper's name of a class recall: AR-SU (surprise), AR-DI (disgust), AR-FE (fear), AR-HA ..."""
    return f"AR-{emotion[:2].upper()}"


def run_metrics(truth: np.ndarray, predicted: np.ndarray, names: list[str], resamples: int = 2000,
                seed: int = 0) -> dict:
    """One test run's figures: WAR and UAR with bootstrap intervals, and every class's recall under its
    paper name (:func:`paper_name`) with support, hits and Wilson interval (recall None: no support)."""
    matrix = confusion_matrix(truth, predicted, len(names))
    war, uar, classes = war_uar(matrix)
    intervals = bootstrap_intervals(truth, predicted, len(names), resamples, seed) if resamples else \
        {"WAR": None, "UAR": None}
    out = {"WAR": war, "WAR_ci": intervals["WAR"], "UAR": uar, "UAR_ci": intervals["UAR"],
           "UAR_classes": classes, "test_clips": int(matrix.sum())}
    for recall in class_recalls(matrix, names):
        out[paper_name(recall.name)] = {"recall": recall.recall, "support": recall.support, "hits": recall.correct,
                                        "ci": recall.interval}
    out["confusion"] = matrix.tolist()
    return out


def paired_bootstrap(truth: np.ndarray, first: np.ndarray, second: np.ndarray, n_classes: int,
                     resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, dict[str, float]]:
    """second - first on the same test clips: WAR, UAR and each class's recall, with a percentile interval
    from resampling the clips (both predictions resampled together, so the pairing is kept).

    A class without support in a resample is left out of that resample's recall difference.
    """
    truth, first, second = (np.asarray(v, int) for v in (truth, first, second))
    rng = np.random.default_rng(seed)

    def figures(pick: np.ndarray) -> np.ndarray:
        rows = []
        for predicted in (first, second):
            matrix = confusion_matrix(truth[pick], predicted[pick], n_classes)
            war, uar, _ = war_uar(matrix)
            support = matrix.sum(axis=1)
            recall = np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)
            rows.append(np.concatenate([[war, uar], recall]))
        return rows[1] - rows[0]

    point = figures(np.arange(truth.size))
    draws = np.stack([figures(rng.integers(0, truth.size, truth.size)) for _ in range(resamples)]) if resamples \
        else np.full((1, point.size), np.nan)
    tail = (1 - level) / 2 * 100
    keys = ["WAR", "UAR", *[str(k) for k in range(n_classes)]]
    out = {}
    for j, key in enumerate(keys):
        finite = draws[:, j][np.isfinite(draws[:, j])]
        low, high = (float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))) if finite.size \
            else (float("nan"), float("nan"))
        out[key] = {"mean": float(point[j]), "low": low, "high": high}
    return out

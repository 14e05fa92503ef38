"""Recognition metrics with their uncertainty (paper sec. 4.1, table 2; honest statistics beyond it).

* **WAR** (weighted average recall) = overall accuracy; **UAR** (unweighted average recall) = the mean of
  the per-class recalls over the classes present in the test split; **AR-<class>** = one class's recall.
  A run's figures come from torchmetrics (:func:`recognition_figures`): ``MulticlassAccuracy`` with
  ``average="micro"`` is WAR, ``MulticlassRecall`` with ``average=None`` gives the class recalls, whose mean
  over the classes with support is UAR, and ``MulticlassConfusionMatrix`` the counts. (torchmetrics'
  ``MulticlassAccuracy(average="macro")`` is the same UAR whenever every predicted class has support; it
  also averages in, with recall 0, a class that is predicted but absent from the test split, which this
  project leaves out as "no support".) The bootstrap recomputes WAR and UAR from each resample's confusion
  matrix (:func:`war_uar`, the same definitions in matrix form, thousands of times per run).
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


def _check_labels(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer label arrays; ValueError when their lengths differ or a label is outside 0..n_classes-1."""
    truth, predicted = np.asarray(truth, int), np.asarray(predicted, int)
    if truth.shape != predicted.shape:
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predictions")
    if truth.size and (min(truth.min(), predicted.min()) < 0 or max(truth.max(), predicted.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return truth, predicted


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class (numpy; the bootstrap's
    inner loop). :func:`recognition_figures` gives the same counts from ``MulticlassConfusionMatrix``.

    Raises:
        ValueError: lengths differ or a label is outside 0..n_classes-1.
    """
    truth, predicted = _check_labels(truth, predicted, n_classes)
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


@dataclass(frozen=True)
class RecognitionFigures:
    """One run's figures from torchmetrics (module docstring); None where there is no test clip."""

    war: float | None
    uar: float | None
    uar_classes: int
    recalls: np.ndarray
    support: np.ndarray
    confusion: np.ndarray


def recognition_figures(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> RecognitionFigures:
    """WAR (``MulticlassAccuracy``, micro), per-class recall (``MulticlassRecall``, NaN without support), UAR
    (their mean over the classes with support) and the confusion (``MulticlassConfusionMatrix``).

    Raises:
        ValueError: lengths differ or a label is outside 0..n_classes-1.
    """
    import torch  # imported here: the helpers above serve modules that never need torch (the policy comparison)
    from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassRecall

    truth, predicted = _check_labels(truth, predicted, n_classes)
    support = np.bincount(truth, minlength=n_classes)
    if truth.size == 0:
        return RecognitionFigures(None, None, 0, np.full(n_classes, np.nan), support,
                                  np.zeros((n_classes, n_classes), np.int64))
    target, preds = torch.from_numpy(truth), torch.from_numpy(predicted)
    war = MulticlassAccuracy(num_classes=n_classes, average="micro")(preds, target).item()
    recalls = MulticlassRecall(num_classes=n_classes, average=None)(preds, target).double().numpy()
    recalls = np.where(support > 0, recalls, np.nan)
    confusion = MulticlassConfusionMatrix(num_classes=n_classes)(preds, target).numpy().astype(np.int64)
    present = support > 0
    return RecognitionFigures(float(war), float(recalls[present].mean()), int(present.sum()), recalls, support,
                              confusion)


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
    """One test run's figures (:func:`recognition_figures`): WAR and UAR with bootstrap intervals, and every
    class's recall under its paper name (:func:`paper_name`) with support, hits and Wilson interval (recall
    None: no support)."""
    figures = recognition_figures(truth, predicted, len(names))
    matrix = figures.confusion
    intervals = bootstrap_intervals(truth, predicted, len(names), resamples, seed) if resamples else \
        {"WAR": None, "UAR": None}
    out = {"WAR": figures.war, "WAR_ci": intervals["WAR"], "UAR": figures.uar, "UAR_ci": intervals["UAR"],
           "UAR_classes": figures.uar_classes, "test_clips": int(matrix.sum())}
    for recall in class_recalls(matrix, names):
        out[paper_name(recall.name)] = {"recall": recall.recall, "support": recall.support, "hits": recall.correct,
                                        "ci": recall.interval}
    out["confusion"] = matrix.tolist()
    return out

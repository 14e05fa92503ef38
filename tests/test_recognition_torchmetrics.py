"""Recognition figures through torchmetrics agree with the project's own figures (issue 21, item 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy

from argen.recognize.metrics import class_recalls, confusion_matrix, recognition_figures, run_metrics, war_uar
from argen.recognize.summary import figures

# A hand-made test split of 4 classes: class 3 has no support but is predicted once.
TRUTH = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
PREDICTED = np.array([0, 0, 0, 1, 1, 0, 2, 2, 1, 1, 3])
HAND_CONFUSION = [[3, 1, 0, 0], [1, 1, 0, 0], [0, 2, 2, 1], [0, 0, 0, 0]]


def test_torchmetrics_figures_on_a_hand_made_confusion() -> None:
    result = recognition_figures(TRUTH, PREDICTED, 4)
    np.testing.assert_array_equal(result.confusion, HAND_CONFUSION)
    assert result.war == pytest.approx(6 / 11)
    np.testing.assert_allclose(result.recalls[:3], [3 / 4, 1 / 2, 2 / 5])
    assert np.isnan(result.recalls[3]) and result.support.tolist() == [4, 2, 5, 0]
    assert result.uar == pytest.approx((3 / 4 + 1 / 2 + 2 / 5) / 3) and result.uar_classes == 3


def test_torchmetrics_figures_equal_the_current_ones() -> None:
    result = recognition_figures(TRUTH, PREDICTED, 4)
    matrix = confusion_matrix(TRUTH, PREDICTED, 4)
    np.testing.assert_array_equal(result.confusion, matrix)
    war, uar, classes = war_uar(matrix)
    assert (result.war, result.uar, result.uar_classes) == (pytest.approx(war), pytest.approx(uar), classes)
    pooled = figures(TRUTH, PREDICTED, 4)  # the recognition table's figures
    np.testing.assert_allclose(pooled, [result.war, result.uar, *result.recalls], equal_nan=True)
    assert [r.recall for r in class_recalls(matrix, list("abcd"))][:3] == pytest.approx(result.recalls[:3].tolist())
    metrics = run_metrics(TRUTH, PREDICTED, ["happy", "sad", "neutral", "angry"], resamples=0)
    assert metrics["WAR"] == pytest.approx(6 / 11) and metrics["UAR"] == pytest.approx(uar)
    assert metrics["confusion"] == HAND_CONFUSION and metrics["AR-AN"]["recall"] is None


def test_macro_accuracy_is_uar_when_every_predicted_class_has_support() -> None:
    """torchmetrics' macro accuracy also averages a predicted class without support (recall 0); UAR does not."""
    macro = MulticlassAccuracy(num_classes=4, average="macro")
    supported = PREDICTED != 3
    assert recognition_figures(TRUTH[supported], PREDICTED[supported], 4).uar == pytest.approx(
        macro(torch.from_numpy(PREDICTED[supported]), torch.from_numpy(TRUTH[supported])).item())
    assert macro(torch.from_numpy(PREDICTED), torch.from_numpy(TRUTH)).item() == pytest.approx(
        (3 / 4 + 1 / 2 + 2 / 5 + 0) / 4)


def test_no_test_clip_gives_no_figures() -> None:
    result = recognition_figures(np.array([], int), np.array([], int), 3)
    assert result.war is None and result.uar is None and result.uar_classes == 0
    with pytest.raises(ValueError, match="labels must lie"):
        recognition_figures(np.array([0, 4]), np.array([0, 1]), 3)

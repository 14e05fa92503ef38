"""WAR, UAR, per-class recall, Wilson and bootstrap intervals, paired differences: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from argen.recognize.metrics import bootstrap_intervals, class_recalls, confusion_matrix, war_uar
from argen.stats import Z95, mean_sd, paired_difference, wilson_interval, z_quantile


def test_war_uar_and_recalls_on_a_hand_computed_matrix() -> None:
    truth = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    predicted = [0, 0, 0, 1, 1, 0, 2, 2, 1, 1]
    matrix = confusion_matrix(truth, predicted, 4)
    np.testing.assert_array_equal(matrix, [[3, 1, 0, 0], [1, 1, 0, 0], [0, 2, 2, 0], [0, 0, 0, 0]])
    war, uar, present = war_uar(matrix)
    assert war == pytest.approx(6 / 10)
    assert uar == pytest.approx((3 / 4 + 1 / 2 + 2 / 4) / 3) and present == 3  # class 3: no support, left out
    recalls = class_recalls(matrix, ["a", "b", "c", "d"])
    assert [r.recall for r in recalls] == [0.75, 0.5, 0.5, None]
    assert [r.support for r in recalls] == [4, 2, 4, 0] and recalls[3].interval is None


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(2, 29)  # the paper's DFEW AR-DI: 2 of 29
    assert (round(low, 4), round(high, 4)) == (0.0191, 0.2196)  # by hand: 0.11939 -+ 0.10026
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_bootstrap_intervals_bracket_the_estimate_and_are_seeded() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 300)
    predicted = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 3, 300))
    war, uar, _ = war_uar(confusion_matrix(truth, predicted, 3))
    intervals = bootstrap_intervals(truth, predicted, 3, resamples=500, seed=3)
    assert intervals["WAR"][0] < war < intervals["WAR"][1] and intervals["UAR"][0] < uar < intervals["UAR"][1]
    width = intervals["WAR"][1] - intervals["WAR"][0]
    assert 0.06 < width < 0.14  # about 2 x 1.96 x sqrt(0.77 x 0.23 / 300) = 0.095
    assert bootstrap_intervals(truth, predicted, 3, resamples=500, seed=3) == intervals
    assert bootstrap_intervals([], [], 3) == {"WAR": None, "UAR": None}


def test_mean_sd_and_paired_difference() -> None:
    assert mean_sd([0.5, 0.7, 0.6]) == pytest.approx((0.6, 0.1, 3))
    assert mean_sd([0.4]) == (0.4, 0.0, 1)
    diff = paired_difference([0.50, 0.60, 0.55], [0.55, 0.62, 0.61])
    assert diff["mean"] == pytest.approx(0.0433333) and diff["pairs"] == 3
    half = 4.302653 * np.std([0.05, 0.02, 0.06], ddof=1) / np.sqrt(3)  # t(0.975, 2 df)
    assert diff["low"] == pytest.approx(diff["mean"] - half) and diff["high"] == pytest.approx(diff["mean"] + half)
    with pytest.raises(ValueError, match="match one to one"):
        paired_difference([0.5], [0.5, 0.6])


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_z_quantile_is_the_two_sided_normal_quantile() -> None:
    assert z_quantile(0.95) == pytest.approx(Z95, abs=1e-12)
    assert z_quantile(0.90) == pytest.approx(1.6448536269514722)

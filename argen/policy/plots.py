"""The policy stage's figure: the held-out comparison of the learned policy with fixed and random actions."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def plot_comparison(comparison: pd.DataFrame, path: Path) -> None:
    """Held-out mean total reward (with its standard error) and model calls per policy."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), dpi=110)
    names = comparison.index.tolist()
    colours = ["#c0392b" if name == "learned" else "#7f8c8d" for name in names]
    left.barh(names, comparison.reward, xerr=comparison.reward_se, color=colours)
    left.set_xlabel("mean total reward R on validation pairs (+- s.e.)")
    left.invert_yaxis()
    right.barh(names, comparison.model_calls, color=colours)
    right.set_xlabel("mean model calls per video")
    right.invert_yaxis()
    right.set_yticks(range(len(names)), [""] * len(names))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

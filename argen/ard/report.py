"""Figures of the ARD stages: the reward table per action and the held-out policy comparison."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from argen.ard.policy import ACTIONS

#: Components drawn per action, with their colours.
DRAWN = {"R_S": "#7f8c8d", "R_Q": "#2980b9", "R_F": "#27ae60", "R_E": "#c0392b", "R_A": "#8e44ad", "R_C": "#d35400"}


def action_names() -> list[str]:
    """``20 (2,3)`` style labels of the 12 actions."""
    return [f"{t} ({a:g},{b:g})" for t, a, b in ACTIONS]


def plot_action_rewards(per_action: pd.DataFrame, path: Path) -> None:
    """Mean component rewards per action (grouped bars) over the reward table."""
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=110)
    width = 0.8 / len(DRAWN)
    x = np.arange(len(ACTIONS))
    for k, (name, colour) in enumerate(DRAWN.items()):
        values = per_action.reindex(range(len(ACTIONS)))[name].to_numpy() if name in per_action else np.zeros(len(x))
        ax.bar(x + (k - len(DRAWN) / 2 + 0.5) * width, values, width, label=name, color=colour)
    ax.set_xticks(x, action_names(), fontsize=8)
    ax.set_xlabel("action: T (a, b)")
    ax.set_ylabel("mean reward")
    ax.set_ylim(0, 1.05)
    ax.legend(ncol=len(DRAWN), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_title("Reward table: mean component reward per action", fontsize=10, pad=24)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


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

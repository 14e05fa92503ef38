"""The rewards stage's figure: the reward table's mean component rewards per action."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from argen.actions import ACTIONS

#: Components drawn per action, with their colours.
DRAWN = {"R_S": "#7f8c8d", "R_Q": "#2980b9", "R_F": "#27ae60", "R_E": "#c0392b", "R_A": "#8e44ad"}


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

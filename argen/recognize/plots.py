"""Figures of the recognition stages: the confusion matrix of a run."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def confusion_figure(matrix: np.ndarray, names: list[str], title: str, path: Path) -> None:
    """Row-normalised confusion matrix (colour = share of the true class) with the counts written in.

    Rows without support are left blank and their label says ``n = 0``.
    """
    matrix = np.asarray(matrix)
    support = matrix.sum(axis=1)
    shares = np.divide(matrix, support[:, None], out=np.full(matrix.shape, np.nan), where=support[:, None] > 0)
    fig, ax = plt.subplots(figsize=(6.2, 5.2), dpi=110)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            if support[i]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), [f"{n} (n = {int(s)})" for n, s in zip(names, support)], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (test support)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""The figures the report draws itself: training curves on their real step axis, clip strips, and the JPEG
files they are saved as (small enough to embed: the HTML stays far below 1 MB).

Curves: DVCLive logs one point per call of ``next_step``; the policy and motion stages log the mean of each
window of ``every`` training steps (:class:`argen.stage.CurveLogger`), so point k (0-based) ends at training
step ``min((k + 1) * every, steps)`` with ``every = ceil(steps / points)``. The recognition stage logs one
point per epoch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from argen.report.inputs import MissingInput, UnreadableInput, read_csv

#: Frames shown per clip (1-based; fig. 3).
SHOWN_FRAMES = (1, 6, 11, 16)
#: JPEG quality of the report's figures (text stays sharp at display size).
JPEG_QUALITY = 80
#: Width in pixels the report's figures are drawn at: the page's content width, shown at 100 %.
DISPLAY_WIDTH = 1060


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_jpeg(fig, path: Path, width_px: int = DISPLAY_WIDTH) -> None:
    """Save a figure as a JPEG ``width_px`` wide (its inches scaled to that width): no metadata, same bytes."""
    dpi = width_px / fig.get_size_inches()[0]
    fig.savefig(path, dpi=dpi, format="jpg", pil_kwargs={"quality": JPEG_QUALITY, "optimize": True})
    pyplot().close(fig)


@dataclass
class Curve:
    """One logged training curve: its title, x values (real steps), y values and the x axis' label."""

    title: str
    x: np.ndarray
    y: np.ndarray
    xlabel: str
    label: str = ""


def read_curve(path: Path, steps: int | None, title: str, label: str = "") -> Curve:
    """A DVCLive TSV as a curve; with ``steps`` (training steps in all), x is the training step of each window."""
    frame = read_csv(path, sep="\t", columns=("step", path.stem))
    y = pd.to_numeric(frame[path.stem], errors="coerce").to_numpy(float)
    if not len(y):
        raise UnreadableInput(path, "no points")
    if steps:
        every = math.ceil(steps / len(y))
        x = np.minimum((np.arange(len(y)) + 1) * every, steps)
        return Curve(title, x, y, f"training step (mean of each {every}-step window)", label)
    return Curve(title, frame.step.to_numpy(float) + 1, y, "epoch", label)


def curves_figure(panels: list[list[Curve]], path: Path, cols: int = 3) -> None:
    """One panel per list of curves (several curves: a legend); shares and accuracies on a 0-1 axis."""
    plt = pyplot()
    cols = min(cols, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.1 * rows), squeeze=False)
    for ax, curves in zip(axes.flat, panels):
        for curve in curves:
            ax.plot(curve.x, curve.y, lw=1.1, label=curve.label or None)
        ax.set_title(curves[0].title, fontsize=12)
        ax.set_xlabel(curves[0].xlabel, fontsize=10)
        if re.search(r"share|accuracy", curves[0].title):
            ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
        if any(c.label for c in curves):
            ax.legend(fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    save_jpeg(fig, path, min(DISPLAY_WIDTH, 360 * cols))


def clip_frames(row, shown: tuple[int, ...] = SHOWN_FRAMES) -> list[np.ndarray]:
    """The RGB frames ``shown`` (1-based; past the end: the last) of a clip-table row (frames_dir, frames)."""
    import cv2

    names = list(row.frames)
    if not names:
        raise UnreadableInput(Path(row.frames_dir), "a clip without frames")
    images = []
    for f in shown:
        file = Path(row.frames_dir) / names[min(f, len(names)) - 1]
        image = cv2.imread(str(file))
        if image is None:
            raise UnreadableInput(file, "not a readable image") if file.exists() else MissingInput(file)
        images.append(image[:, :, ::-1])
    return images


def strips_figure(strips: list[tuple[str, list[np.ndarray]]], path: Path, title: str = "") -> None:
    """Rows of frames (frames 1, 6, 11, 16), each with its caption above it, at a size where a face reads."""
    plt = pyplot()
    cols = len(SHOWN_FRAMES)
    image_in, caption_in = 2.3, 0.5
    height = len(strips) * (image_in + caption_in) + (0.45 if title else 0.1)
    fig, axes = plt.subplots(len(strips), cols, figsize=(cols * image_in + 0.2, height), squeeze=False)
    top = 1 - ((0.45 if title else 0.0) + caption_in * 0.8) / height
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.25 / height, top=top, wspace=0.03,
                        hspace=caption_in / image_in)
    if title:
        fig.suptitle(title, fontsize=13, x=0.01, ha="left", y=1 - 0.12 / height, va="top")
    for r, (caption, frames) in enumerate(strips):
        for c, (f, image) in enumerate(zip(SHOWN_FRAMES, frames)):
            ax = axes[r, c]
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"frame {f}", fontsize=9, labelpad=1)
        axes[r, 0].set_title(caption, fontsize=11, loc="left", pad=4)
    save_jpeg(fig, path, min(DISPLAY_WIDTH, 760))

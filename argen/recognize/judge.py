"""The recogniser as a judge of generated clips (a standard figure of facial-expression generation papers).

The model trained on the ``original`` split labels every clip of a generated set; the share classified as
its target emotion, per emotion, says how recognisable the generated expressions are to a recogniser that
never saw a generated clip. Each share is the mean over the run's seeds, with a 95 % Wilson interval on
the seed-averaged hits and the set's clip count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from argen.markdown import markdown_table
from argen.recognize.run import load_run
from argen.recognize.train import ClipData, load_geometry_data, load_video_data, predict
from argen.stats import wilson_interval


def judge_set(model_dir: Path, table: pd.DataFrame, frame_rows: pd.DataFrame) -> pd.DataFrame:
    """Share of ``table``'s clips that the run in ``model_dir`` classifies as their label, per label.

    Returns:
        One row per emotion: clips, hits (averaged over seeds), share, low, high, and the most common wrong
        prediction.
    """
    config, models, stats = load_run(model_dir)
    data: ClipData
    if config["kind"] == "geometry":
        data = load_geometry_data(table, frame_rows)
        data.standardise(*stats)
    else:
        data = load_video_data(table, config["image_size"], config["face_crop"])
    predictions = np.stack([predict(model, data, config["frames"]).argmax(1) for model in models])
    return judge_shares(data.labels, predictions, config["classes"])


def judge_shares(labels: np.ndarray, predictions: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per emotion present in ``labels``: the share of that emotion's clips predicted as it, over seeds.

    Args:
        labels: (n,) true class index of every judged clip.
        predictions: (S, n) predicted class index per seed and clip.
        classes: class names in index order.

    Returns:
        One row per emotion with clips (its clips only), hits (averaged over seeds), share, low, high (the
        Wilson interval on the rounded hits) and the most common wrong prediction.
    """
    labels, predictions = np.asarray(labels, int), np.asarray(predictions, int)
    rows = []
    for index in sorted(set(labels.tolist())):
        mine = labels == index
        n = int(mine.sum())
        hits = float(np.mean([(p[mine] == index).sum() for p in predictions]))
        low, high = wilson_interval(int(round(hits)), n)
        wrong = predictions[:, mine][predictions[:, mine] != index]
        rows.append({"emotion": classes[index], "clips": n, "hits": hits, "share": hits / n, "low": low,
                     "high": high, "most_confused_with": classes[np.bincount(wrong).argmax()] if wrong.size else ""})
    return pd.DataFrame(rows, columns=["emotion", "clips", "hits", "share", "low", "high", "most_confused_with"])


def judge_markdown(judged: pd.DataFrame) -> str:
    """The judge's shares as a Markdown table (empty when nothing was judged)."""
    if judged.empty:
        return ""
    rows = [[r.model, r.set, r.emotion, r.clips, f"{100 * r.share:.1f} [{100 * r.low:.1f}, {100 * r.high:.1f}]",
             r.most_confused_with] for r in judged.itertuples(index=False)]
    header = ["model", "set", "emotion", "clips", "classified as target", "most often taken for"]
    lines = ["", "The recogniser as a judge: share of each added set's clips that the model trained on the "
             "original split classifies as their target emotion (mean over seeds, 95 % Wilson interval).", "",
             *markdown_table(header, rows, "Nothing was judged.")]
    return "\n".join(lines) + "\n"

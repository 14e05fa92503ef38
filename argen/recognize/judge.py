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
        Wilson interval on the rounded hits), the most common wrong prediction and, per class c, ``as_<c>``:
        how many of the emotion's clips were predicted as c (averaged over seeds), so that runs can be
        pooled (:func:`most_confused`).
    """
    labels, predictions = np.asarray(labels, int), np.asarray(predictions, int)
    rows = []
    for index in sorted(set(labels.tolist())):
        mine = labels == index
        n = int(mine.sum())
        hits = float(np.mean([(p[mine] == index).sum() for p in predictions]))
        low, high = wilson_interval(int(round(hits)), n)
        counts = {f"as_{name}": float(np.mean([(p[mine] == c).sum() for p in predictions]))
                  for c, name in enumerate(classes)}
        row = {"emotion": classes[index], "clips": n, "hits": hits, "share": hits / n, "low": low, "high": high}
        rows.append({**row, "most_confused_with": most_confused(counts, classes[index]), **counts})
    return pd.DataFrame(rows, columns=["emotion", "clips", "hits", "share", "low", "high", "most_confused_with",
                                       *(f"as_{name}" for name in classes)])


def most_confused(counts: dict[str, float], emotion: str) -> str:
    """The wrong class predicted most often, from ``as_<class>`` counts (``""`` when none is wrong; the first
    class in order on a tie)."""
    wrong = {key[3:]: value for key, value in counts.items() if key.startswith("as_") and key[3:] != emotion}
    best = max(wrong.values(), default=0.0)
    return next(name for name, value in wrong.items() if value == best) if best > 0 else ""


def judge_markdown(judged: pd.DataFrame) -> str:
    """The judge's shares as a Markdown table (empty when nothing was judged)."""
    if judged.empty:
        return ""
    confused = judged.most_confused_with.fillna("").astype(str).str.strip().ne("").any()  # pooled runs: none
    rows = [[r.model, r.set, r.emotion, r.clips, f"{100 * r.share:.1f} [{100 * r.low:.1f}, {100 * r.high:.1f}]",
             *([r.most_confused_with] if confused else [])] for r in judged.itertuples(index=False)]
    header = ["model", "set", "emotion", "clips", "classified as target", *(["most often taken for"] if confused
                                                                             else [])]
    lines = ["", "The recogniser as a judge: share of each added set's clips that the model trained on the "
             "original split classifies as their target emotion (mean over seeds, 95 % Wilson interval).", "",
             *markdown_table(header, rows, "Nothing was judged.")]
    return "\n".join(lines) + "\n"

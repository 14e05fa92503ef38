"""The recogniser as a judge of generated clips (a standard figure of facial-expression generation papers).

The model trained on the ``original`` split labels every clip of a generated set; the share classified as
its target emotion, per emotion, says how recognisable the generated expressions are to a recogniser that
never saw a generated clip. Each share is the mean over the run's seeds, with a 95 % Wilson interval on
the seed-averaged hits and the set's clip count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from argen.emotions import EMOTION_INDEX
from argen.errors import InputError
from argen.markdown import markdown_table
from argen.recognize.models import build_model
from argen.recognize.train import ClipData, load_geometry_data, load_video_data, predict
from argen.stats import wilson_interval


def load_run(model_dir: Path) -> tuple[dict, list[torch.nn.Module], tuple[np.ndarray, np.ndarray] | None]:
    """(config, one trained model per seed, geometry input statistics or None) of a recognize run's folder."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise InputError(f"{config_path}: missing (run the recognize stage for this model first)")
    config = json.loads(config_path.read_text())
    models = []
    for seed in config["seeds"]:
        model = build_model(config["model"], len(config["classes"]), width=config["width"], hidden=config["hidden"],
                            geometry_dim=config["geometry_dim"], clip_path=config["clip_path"],
                            class_names=config["classes"], max_frames=config["max_frames"])
        model.load_state_dict(load_file(str(model_dir / f"seed_{seed}.safetensors")))
        models.append(model.eval())
    stats_path = model_dir / "input_stats.safetensors"
    stats = None
    if stats_path.is_file():
        tensors = load_file(str(stats_path))
        stats = (tensors["mean"].numpy(), tensors["std"].numpy())
    return config, models, stats


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
    classes = config["classes"]
    rows = []
    for emotion in sorted(set(table.label), key=EMOTION_INDEX.get):
        mine = data.labels == EMOTION_INDEX[emotion]
        n = int(mine.sum())
        if not n:
            continue
        hits = float(np.mean([(p[mine] == EMOTION_INDEX[emotion]).sum() for p in predictions]))
        low, high = wilson_interval(int(round(hits)), n)
        wrong = predictions[:, mine][predictions[:, mine] != EMOTION_INDEX[emotion]]
        rows.append({"emotion": emotion, "clips": n, "hits": hits, "share": hits / n, "low": low, "high": high,
                     "most_confused_with": classes[np.bincount(wrong).argmax()] if wrong.size else ""})
    return pd.DataFrame(rows)


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

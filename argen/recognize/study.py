"""The recognition study's tables: every run's predictions pooled, the differences, the judge.

``stages/recognition.py`` runs it; its docstring says what the stage reads and writes.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from argen.errors import InputError
from argen.extract import FRAME_COLUMNS
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.paths import RECOGNIZE_MODELS as MODELS, TRACKS, report_dir
from argen.recognize.judge import judge_markdown, judge_set
from argen.recognize.summary import markdown, recognition_tables, stage_tables


RUNS = report_dir("recognize")
OUT = report_dir("recognition")

log = logging.getLogger("argen.stages.recognition")


def read_predictions(params: Params) -> pd.DataFrame:
    """Every run's test predictions with its model, variant and fold."""
    parts = []
    for model in params.recognize.models:
        for variant in params.recognize.variants:
            path = RUNS / f"{model}-{variant}" / "predictions.csv"
            if not path.is_file():
                raise InputError(f"{path}: missing (run recognize@{model}-{variant} first: dvc repro)")
            table = pd.read_csv(path, dtype={"clip_id": str})
            missing = {"clip_id", "seed", "label", "predicted"} - set(table.columns)
            if missing:
                raise InputError(f"{path}: columns {sorted(missing)} missing (re-run recognize@{model}-{variant})")
            parts.append(table[["clip_id", "seed", "label", "predicted"]].assign(
                model=model, variant=variant, fold=params.data.fold))
    return pd.concat(parts, ignore_index=True)


def judge(params: Params) -> pd.DataFrame:
    """Per model trained on ``original`` and per added set: the share of its clips classified as their target."""
    parts = []
    for variant in [v for v in params.recognize.variants if v != "original"]:
        table = read_table(TRACKS / f"{variant}.parquet", ["clip_id", "frames_dir", "frames", "label",
                                                            "content_key"], f"tracks@{variant}")
        rows = read_table(TRACKS / f"{variant}_frames.parquet", FRAME_COLUMNS, f"tracks@{variant}")
        for model in params.recognize.models:
            shares = judge_set(MODELS / f"{model}-original", table, rows)
            parts.append(shares.assign(model=model, set=variant))
    columns = ["model", "set", "emotion", "clips", "hits", "share", "low", "high", "most_confused_with"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def headline(table: pd.DataFrame, deltas: pd.DataFrame, judged: pd.DataFrame, shown: list[str]) -> dict:
    """metrics.json: per model and variant the pooled figures, per added variant the differences."""
    out: dict = {}
    for row in table.to_dict("records"):
        out.setdefault(row["model"], {})[row["variant"]] = {n: _rounded(row[n]) for n in shown}
    for row in deltas.to_dict("records"):
        out[row["model"]][f"delta_{row['variant']}"] = {n: _rounded(row[f"d_{n}"]) for n in shown}
    for (model, name), rows in judged.groupby(["model", "set"]):
        out[model][f"judge_{name}"] = {r.emotion: _rounded(r.share) for r in rows.itertuples()}
    return out


def _rounded(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def run_recognition_stage(params: Params) -> None:
    cfg = params.recognize
    predictions = read_predictions(params)
    table, deltas, shares, shown = recognition_tables(predictions, params.decompose.scarce_classes, cfg.bootstrap,
                                                      params.seed)
    judged = judge(params)
    source = f"{params.data.source}, fold {params.data.fold}, seeds {cfg.seeds}"
    text = "# Recognition\n\n" + markdown(table, deltas, shares, shown, source) + judge_markdown(judged)
    with staged_outputs() as out:
        stage_tables(out, OUT, text, table, deltas, judged)
        out.json(headline(table, deltas, judged, shown), OUT / "metrics.json")
    log.info("recognition table:\n%s", text)

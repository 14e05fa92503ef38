"""One recognition run: train a DFER baseline on one training split over the seeds, test it, save it.

``stages/recognize.py`` runs it; its docstring says what the stage reads and writes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from argen.emotions import EMOTIONS
from argen.errors import InputError, UserError
from argen.extract import FRAME_COLUMNS
from argen.io import read_table, staged_outputs
from argen.params import Params, RecognizeParams
from argen.paths import RECOGNIZE_MODELS as MODELS, TRACKS, report_dir
from argen.recognize.clips import GEOMETRY_DIM
from argen.recognize.metrics import paper_name, run_metrics
from argen.recognize.models import build_model, input_kind, optimizer_param_groups
from argen.recognize.plots import confusion_figure
from argen.recognize.train import ClipData, TrainSettings, load_geometry_data, load_video_data, predict, train_model
from argen.stage import live_logger
from argen.stats import mean_sd
from argen.weights import load_checked

REPORTS = report_dir("recognize")

log = logging.getLogger("argen.stages.recognize")


def training_split(variant: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(training clips, test clips, per-frame rows of both) for ``variant``."""
    columns = ["clip_id", "frames_dir", "frames", "label", "split", "subject", "set", "content_key"]
    dataset = read_table(TRACKS / "original.parquet", columns, "tracks@original")
    rows = [read_table(TRACKS / "original_frames.parquet", FRAME_COLUMNS, "tracks@original")]
    train, test = dataset[dataset.split == "train"], dataset[dataset.split == "test"]
    if variant != "original":
        extra = read_table(TRACKS / f"{variant}.parquet", columns, f"tracks@{variant}")
        if extra.empty:
            raise UserError(f"{TRACKS / variant}.parquet holds no clips: variant {variant!r} adds nothing "
                            f"(the oracle exists only for the demo; leave it out of recognize.variants)")
        train = pd.concat([train, extra], ignore_index=True)
        rows.append(read_table(TRACKS / f"{variant}_frames.parquet", FRAME_COLUMNS, f"tracks@{variant}"))
    if test.empty or train.empty:
        raise InputError(f"{TRACKS / 'original.parquet'}: {len(train)} training and {len(test)} test clips; "
                         "both splits are needed")
    return train.reset_index(drop=True), test.reset_index(drop=True), pd.concat(rows, ignore_index=True)


def load_data(kind: str, table: pd.DataFrame, rows: pd.DataFrame, params: Params) -> ClipData:
    if kind == "geometry":
        return load_geometry_data(table, rows[rows.clip_id.isin(table.clip_id)])
    return load_video_data(table, params.recognize.image_size, params.recognize.face_crop)


def run_recognize_stage(params: Params, model_name: str, variant: str) -> None:
    cfg = params.recognize
    if model_name not in cfg.models or variant not in cfg.variants:
        raise UserError(f"recognize@{model_name}-{variant}: not in recognize.models {cfg.models} x "
                        f"recognize.variants {cfg.variants} (dvc.yaml's matrix reads both lists)")
    run = f"{model_name}-{variant}"
    kind = input_kind(model_name)
    train_table, test_table, rows = training_split(variant)
    train_data, test_data = load_data(kind, train_table, rows, params), load_data(kind, test_table, rows, params)
    stats = None
    if kind == "geometry":
        stats = train_data.feature_stats()
        train_data.standardise(*stats)
        test_data.standardise(*stats)
    for item, reason in train_data.skips + test_data.skips:
        log.warning("skipped %s: %s", item, reason)
    epochs, batch_size, lr = cfg.training(model_name)
    added = train_table[train_table.set != "original"].label.value_counts().sort_index()
    log.info("%s: %d training clips (%s added by %s), %d test clips, %s input; %d epochs, batch %d, lr %g, seeds %s",
             run, len(train_data), {k: int(v) for k, v in added.items()} or "none", variant, len(test_data), kind, epochs, batch_size, lr,
             cfg.seeds)
    per_seed, predictions = [], []
    with staged_outputs() as out:
        model_dir = out.path(MODELS / run)
        model_dir.mkdir(parents=True)
        with live_logger(out.path(REPORTS / run / "live")) as live:
            for seed in cfg.seeds:
                torch.manual_seed(seed)
                hidden = cfg.geometry_hidden if kind == "geometry" else cfg.hidden
                model = build_model(model_name, len(EMOTIONS), width=cfg.width, hidden=hidden,
                                    geometry_dim=GEOMETRY_DIM, clip_path=cfg.clip_path, class_names=list(EMOTIONS),
                                    max_frames=max(64, cfg.frames))
                settings = TrainSettings(frames=cfg.frames, epochs=epochs, batch_size=batch_size, lr=lr,
                                         momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                         flip=cfg.flip and kind == "video", seed=seed)

                def on_epoch(epoch: int, values: dict[str, float], seed: int = seed) -> None:
                    for name, value in values.items():
                        live.log_metric(f"seed_{seed}/train/{name}", value, plot=True)
                    live.next_step()

                start = time.perf_counter()
                timing = train_model(model, train_data, settings,
                                     optimizer_param_groups(model, lr, cfg.clip_lrs), on_epoch)
                timing["seconds"] = time.perf_counter() - start
                probs = predict(model, test_data, cfg.frames)
                predicted = probs.argmax(1)
                metrics = run_metrics(test_data.labels, predicted, list(EMOTIONS), cfg.bootstrap, seed)
                per_seed.append({"seed": seed, **metrics})
                log.info("  seed %d: WAR %.3f UAR %.3f (%.0f s, %.1f training clips/s)", seed, metrics["WAR"],
                         metrics["UAR"], timing["seconds"], timing["clips"] / timing["seconds"])
                predictions.append(pd.DataFrame({"clip_id": test_data.clip_ids, "seed": seed,
                                                 "label": test_data.labels, "predicted": predicted,
                                                 **{f"p_{e}": probs[:, k].round(5) for k, e in enumerate(EMOTIONS)}}))
                save_seed(model, model_dir, seed)
        save_run(model_dir, run_config(model_name, variant, kind, cfg), stats)
        summary = summarise(per_seed, run, variant, train_data, test_data, added)
        out.json(summary, REPORTS / run / "metrics.json")
        pd.concat(predictions).to_csv(out.path(REPORTS / run / "predictions.csv"), index=False)
        total = np.sum([np.asarray(s["confusion"]) for s in per_seed], axis=0)
        confusion_figure(total, list(EMOTIONS), f"{run}: test confusion, {len(cfg.seeds)} seed(s) summed",
                         out.path(REPORTS / run / "confusion.png"))
    log.info("%s: WAR %.3f UAR %.3f AR-SU %s AR-DI %s AR-FE %s (means over %d seeds)", run, summary["WAR"],
             summary["UAR"], summary.get("AR-SU"), summary.get("AR-DI"), summary.get("AR-FE"), len(cfg.seeds))


def run_config(model_name: str, variant: str, kind: str, cfg: RecognizeParams) -> dict:
    """The ``config.json`` of a run: everything :func:`load_run` needs to rebuild its models."""
    return {"model": model_name, "variant": variant, "kind": kind, "classes": list(EMOTIONS),
            "width": cfg.width, "hidden": cfg.geometry_hidden if kind == "geometry" else cfg.hidden,
            "geometry_dim": GEOMETRY_DIM, "frames": cfg.frames, "image_size": cfg.image_size,
            "face_crop": cfg.face_crop, "seeds": cfg.seeds, "clip_path": cfg.clip_path, "max_frames": max(64, cfg.frames)}


def save_seed(model: torch.nn.Module, model_dir: Path, seed: int) -> None:
    """One seed's trained weights, ``seed_<s>.safetensors``."""
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(model_dir / f"seed_{seed}.safetensors"))


def save_run(model_dir: Path, config: dict, stats: tuple[np.ndarray, np.ndarray] | None) -> None:
    """The run's geometry input statistics (if any) and ``config.json``, next to its seeds' weights."""
    if stats is not None:
        save_file({"mean": torch.from_numpy(stats[0]), "std": torch.from_numpy(stats[1])},
                  str(model_dir / "input_stats.safetensors"))
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def load_run(model_dir: Path) -> tuple[dict, list[torch.nn.Module], tuple[np.ndarray, np.ndarray] | None]:
    """(config, one trained model per seed, geometry input statistics or None) of a run's folder, as
    :func:`save_seed` and :func:`save_run` wrote it.

    Raises:
        InputError: the folder has no ``config.json``.
    """
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise InputError(f"{config_path}: missing (run the recognize stage for this model first)")
    config = json.loads(config_path.read_text())
    models = []
    for seed in config["seeds"]:
        model = build_model(config["model"], len(config["classes"]), width=config["width"], hidden=config["hidden"],
                            geometry_dim=config["geometry_dim"], clip_path=config["clip_path"],
                            class_names=config["classes"], max_frames=config["max_frames"])
        made_by = f"recognize@{config['model']}"
        model.load_state_dict(load_checked(model_dir / f"seed_{seed}.safetensors", made_by, model.state_dict()))
        models.append(model.eval())
    stats_path = model_dir / "input_stats.safetensors"
    stats = None
    if stats_path.is_file():
        tensors = load_checked(stats_path, f"recognize@{config['model']}")
        stats = (tensors["mean"].numpy(), tensors["std"].numpy())
    return config, models, stats


def summarise(per_seed: list[dict], run: str, variant: str, train_data: ClipData, test_data: ClipData,
              added: pd.Series) -> dict:
    """metrics.json: means and sds over seeds at the top (what ``dvc metrics diff`` compares), then per seed."""
    summary: dict = {"run": run, "variant": variant, "train_clips": len(train_data), "test_clips": len(test_data),
                     "added_clips": {k: int(v) for k, v in added.items()}, "seeds": len(per_seed)}
    for key in ("WAR", "UAR"):
        mean, sd, _ = mean_sd([s[key] for s in per_seed])
        summary[key], summary[f"{key}_sd"] = round(mean, 4), round(sd, 4)
    for emotion in EMOTIONS:
        name = paper_name(emotion)
        recalls = [s[name]["recall"] for s in per_seed]
        if recalls[0] is None:
            summary[name] = None
            continue
        mean, sd, _ = mean_sd(recalls)
        summary[name], summary[f"{name}_sd"] = round(mean, 4), round(sd, 4)
    summary["support"] = {paper_name(e): per_seed[0][paper_name(e)]["support"] for e in EMOTIONS}
    summary["per_seed"] = per_seed
    return summary

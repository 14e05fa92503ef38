"""Stage ``motion_model``: the landmark-motion diffusion model of the ``motion`` generator.

Reads ``seed``, ``motion_model``, ``data/interim/aus.parquet`` and ``data/interim/aus_clips.parquet`` (the
training split's clips, every class). Writes ``models/motion/`` (``denoiser.safetensors``, ``config.json``
with the training summary), ``data/interim/motion_skipped.parquet`` (clips that gave no track, with the
reason), ``reports/motion_model/metrics.json`` and the training loss curve (DVCLive,
``reports/motion_model/live/``).
"""

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from argen.generators.motion import MotionModelConfig, MotionModelError, TrainingSettings, train_motion_model, \
    training_tracks
from argen.extract import FRAME_COLUMNS
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.params import Params
from argen.stage import CurveLogger, live_logger, run_stage

FRAMES = Path("data/interim/aus.parquet")
PROCESSED = Path("data/interim/aus_clips.parquet")
MODEL = Path("models/motion")
SKIPPED = Path("data/interim/motion_skipped.parquet")
REPORTS = Path("reports/motion_model")

#: Loss values averaged into one point of the logged curve.
LOG_EVERY = 20

log = logging.getLogger("argen.stages.motion_model")


def main(params: Params) -> None:
    cfg = params.motion_model
    processed = read_table(PROCESSED, ["clip_id", "label", "split"], "extract_aus")
    training = processed[processed.split == "train"]
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus")
    frames = frames[frames.clip_id.isin(training.clip_id)]
    tracks = training_tracks(frames, cfg.n_frames, cfg.min_frames, cfg.cond_min, cfg.cond_max_aus, cfg.mirror)
    n_tracks = len(tracks.clip_ids)
    log.info("%d training clips: %d tracks (%d time-reversed), %d clips skipped, %d rows without a face left out",
             len(training), n_tracks, int(tracks.reversed.sum()), len(tracks.skipped), tracks.rows_without_face)
    if n_tracks < cfg.min_tracks:
        raise MotionModelError(
            f"{FRAMES}: only {n_tracks} usable landmark tracks in the training split ({len(tracks.skipped)} clips "
            f"skipped, {tracks.rows_without_face} rows without a face); the motion model needs at least "
            f"motion_model.min_tracks={cfg.min_tracks}. Process more training clips in extract_aus (raise "
            f"extract_aus.sample_per_class) or use generator.generator: warp")
    config = MotionModelConfig(n_frames=cfg.n_frames, d_model=cfg.d_model, n_layers=cfg.n_layers,
                               n_heads=cfg.n_heads)
    settings = TrainingSettings(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                cond_dropout=cfg.cond_dropout, seed=params.seed)
    with staged_outputs() as out:
        live_dir = out.path(REPORTS / "live")
        with live_logger(live_dir) as live:
            curves = CurveLogger(live, LOG_EVERY)
            model, losses = train_motion_model(tracks, config, settings, lambda step, loss: curves(step, {"loss": loss}))
            curves.flush()
        final_loss = float(np.mean(losses[-100:]))
        summary = {"tracks": n_tracks, "tracks_with_mirror": len(tracks.motions),
                   "time_reversed": int(tracks.reversed.sum()), "clips_skipped": len(tracks.skipped),
                   "rows_without_face": tracks.rows_without_face, "final_loss": round(final_loss, 5),
                   "au_backend": read_parquet_metadata(FRAMES).get("backend", ""), "seed": params.seed,
                   "steps": cfg.steps, "data_scale_iod": round(model.config.data_scale, 6)}
        model.config = replace(model.config, training=summary)
        model.save(out.path(MODEL))
        out.parquet(tracks.skipped, SKIPPED)
        out.json(summary, REPORTS / "metrics.json")
    log.info("motion model trained on %d tracks: final loss %.4f; written to %s", n_tracks, final_loss, MODEL)


if __name__ == "__main__":
    run_stage(main)

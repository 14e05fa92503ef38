"""Stage ``motion_model``: the landmark-motion diffusion model of the ``motion`` generator.

Reads ``seed``, ``motion_model``, the motion guidance of ``generator``, ``data/interim/aus.parquet`` and
``data/interim/aus_clips.parquet`` (the training split's clips, every class, with their labels). Writes
``models/motion/`` (``denoiser.safetensors``, ``config.json`` with the training summary),
``data/interim/motion_skipped.parquet`` (clips that gave no track, with the reason),
``reports/motion_model/metrics.json``, the training loss curve (DVCLive, ``reports/motion_model/live/``) and
``reports/motion_model/emotions.md``: per emotion, the apex AU change of motions generated from the fixed
prompt (no AU codes) against the emotion's real training tracks (:func:`argen.generators.motion.emotion_check`).
"""

import logging
from dataclasses import replace

import numpy as np

from argen.generators.motion import MotionGuidance, MotionModelConfig, MotionModelError, TrainingSettings, \
    emotion_check, train_motion_model, training_tracks
from argen.extract import FRAME_COLUMNS
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.markdown import markdown_table
from argen.params import Params
from argen.paths import AU_CLIPS as PROCESSED, FRAMES, MOTION_MODEL as MODEL, MOTION_SKIPPED as SKIPPED, report_dir
from argen.stage import CurveLogger, live_logger, run_stage

REPORTS = report_dir("motion_model")

#: Loss values averaged into one point of the logged curve.
LOG_EVERY = 20
#: The action of the emotion check (the paper's strongest: T = 20, a = b = 2).
CHECK_ACTION = (20, 2.0, 2.0)
#: AUs shown per emotion in the check's table: the real tracks' strongest.
CHECK_TOP_AUS = 5

log = logging.getLogger("argen.stages.motion_model")


def main(params: Params) -> None:
    cfg = params.motion_model
    processed = read_table(PROCESSED, ["clip_id", "label", "split"], "extract_aus")
    training = processed[processed.split == "train"]
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus")
    frames = frames[frames.clip_id.isin(training.clip_id)]
    labels = dict(zip(training.clip_id, training.label))
    tracks = training_tracks(frames, labels, cfg.n_frames, cfg.min_frames, cfg.cond_min, cfg.cond_max_aus,
                             cfg.mirror)
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
                                cond_dropout=cfg.cond_dropout, text_au_dropout=cfg.text_au_dropout,
                                au_dropout=cfg.au_dropout, seed=params.seed)
    guidance = MotionGuidance(params.generator.motion_g_min, params.generator.motion_g_max,
                              params.generator.guidance_form)
    with staged_outputs() as out:
        live_dir = out.path(REPORTS / "live")
        with live_logger(live_dir) as live:
            curves = CurveLogger(live, LOG_EVERY)
            model, losses = train_motion_model(tracks, config, settings,
                                               on_step=lambda step, loss: curves(step, {"loss": loss}))
            curves.flush()
        final_loss = float(np.mean(losses[-100:]))
        summary = {"tracks": n_tracks, "tracks_with_mirror": len(tracks.motions),
                   "time_reversed": int(tracks.reversed.sum()), "clips_skipped": len(tracks.skipped),
                   "rows_without_face": tracks.rows_without_face, "final_loss": round(final_loss, 5),
                   "au_backend": read_parquet_metadata(FRAMES).get("backend", ""), "seed": params.seed,
                   "steps": cfg.steps, "data_scale_iod": round(model.config.data_scale, 6),
                   "tracks_per_emotion": {e: tracks.labels.count(e) // (2 if cfg.mirror else 1)
                                          for e in sorted(set(tracks.labels))}}
        model.config = replace(model.config, training=summary)
        check = emotion_check(model, tracks, guidance, cfg.check_samples, CHECK_ACTION, seed=params.seed)
        summary["emotion_check"] = check_summary(check)
        report = check_report(check, guidance)
        out.path(REPORTS / "emotions.md").write_text(report)
        model.save(out.path(MODEL))
        out.parquet(tracks.skipped, SKIPPED)
        out.json(summary, REPORTS / "metrics.json")
    log.info("motion model trained on %d tracks: final loss %.4f; written to %s", n_tracks, final_loss, MODEL)
    log.info("apex AU change per emotion, generated (fixed prompt) vs real:\n%s", report)


def check_summary(check) -> dict:
    """Per emotion: the correlation of the generated and real mean AU-change vectors and their mean levels."""
    out = {}
    for emotion, rows in check.groupby("emotion", sort=True):
        corr = np.corrcoef(rows.real, rows.generated)[0, 1] if rows.real.std() and rows.generated.std() else 0.0
        out[emotion] = {"au_corr": round(float(corr), 3), "real_mean": round(float(rows.real.mean()), 3),
                        "generated_mean": round(float(rows.generated.mean()), 3), "n_real": int(rows.n_real.iloc[0])}
    return out


def check_report(check, guidance: MotionGuidance) -> str:
    """Markdown: per emotion, the real tracks' strongest AUs, real vs generated apex change, and the correlation."""
    summary = check_summary(check)
    rows = []
    for emotion, group in check.groupby("emotion", sort=True):
        top = group.nlargest(CHECK_TOP_AUS, "real")
        cells = ", ".join(f"AU{r.au:02d} {r.real:.2f} / {r.generated:.2f}" for r in top.itertuples())
        rows.append([emotion, summary[emotion]["n_real"], cells, f"{summary[emotion]['au_corr']:.2f}"])
    lines = ["# Motion model: apex AU change per emotion, real training tracks vs generated", "",
             f"Generated: {int(check.n_generated.iloc[0])} motions per emotion from the fixed prompt (no AU codes), "
             f"action (T, a, b) = {CHECK_ACTION}, guidance g in [{guidance.g_min}, {guidance.g_max}] "
             f"({guidance.form}). AU change on OpenFace's 0-5 scale at the apex (landmark AU estimator, both "
             f"on the tracks' mean neutral shape); r: correlation of the 16-AU mean vectors.", "",
             *markdown_table(["emotion", "real tracks (with mirrors)", "strongest real AUs: real / generated", "r"],
                             rows, empty="no tracks"), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    run_stage(main)

"""Stage ``motion_model``: the landmark-motion diffusion model of the ``motion`` generator.

Reads ``seed``, ``motion_model``, the motion guidance of ``generator``, ``data/interim/aus.parquet``,
``data/interim/aus_clips.parquet`` (the training split's clips, every class, with their labels) and
``data/interim/au_kb.parquet`` (the AUs the scarce emotions' prompts cite: the KB-form training conditions). Writes
``models/motion/`` (``denoiser.safetensors``, ``config.json`` with the training summary),
``data/interim/motion_skipped.parquet`` (clips without a track, and why), ``reports/motion_model/metrics.json``,
the loss curve (DVCLive, ``reports/motion_model/live/``) and ``reports/motion_model/emotions.md``: per emotion,
the apex AU change generated from the fixed prompt and from KB-form prompts vs the real training tracks
(``motion_check``).
"""

import logging
from dataclasses import fields, replace

import numpy as np

from argen.generators.motion_check import CHECK_ACTION, check_report, check_summary, training_summary
from argen.generators.motion import MotionGuidance, MotionModelConfig, TrainingSettings, emotion_check, \
    kb_conditions, load_training_tracks, require_tracks, train_motion_model, with_kb_conditions
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.params import Params
from argen.paths import FRAMES, KB, MOTION_MODEL as MODEL, MOTION_SKIPPED as SKIPPED, report_dir
from argen.stage import CurveLogger, live_logger, run_stage

REPORTS = report_dir("motion_model")

#: Loss values averaged into one point of the logged curve.
LOG_EVERY = 20

log = logging.getLogger("argen.stages.motion_model")


def main(params: Params) -> None:
    cfg = params.motion_model
    tracks, n_training = load_training_tracks(cfg)
    n_tracks = len(tracks.clip_ids)
    log.info("%d training clips: %d tracks (%d time-reversed), %d clips skipped, %d rows without a face left out",
             n_training, n_tracks, int(tracks.reversed.sum()), len(tracks.skipped), tracks.rows_without_face)
    require_tracks(tracks, cfg.min_tracks, FRAMES)
    kb = read_table(KB, ["emotion", "description"], "au_kb")
    if cfg.kb_conditions:
        tracks = with_kb_conditions(tracks, kb_conditions(kb), params.seed)
        log.info("%d KB-condition copies of the %s tracks", tracks.kb_copies, "/".join(sorted(set(kb.emotion))))
    config = MotionModelConfig(n_frames=cfg.n_frames, d_model=cfg.d_model, n_layers=cfg.n_layers,
                               n_heads=cfg.n_heads)
    trained = [f.name for f in fields(TrainingSettings) if f.name != "seed"]
    settings = TrainingSettings(**{name: getattr(cfg, name) for name in trained}, seed=params.seed)
    guidance = MotionGuidance(params.generator.motion_g_min, params.generator.motion_g_max,
                              params.generator.guidance_form, params.generator.motion_sampler)
    with staged_outputs() as out:
        with live_logger(out.path(REPORTS / "live")) as live:
            curves = CurveLogger(live, LOG_EVERY)
            model, losses = train_motion_model(tracks, config, settings,
                                               on_step=lambda step, loss: curves(step, {"loss": loss}))
            curves.flush()
        final_loss = float(np.mean(losses[-100:]))
        summary = training_summary(tracks, model, final_loss, read_parquet_metadata(FRAMES).get("backend", ""),
                                   params.seed, cfg.steps, cfg.mirror)
        model.config = replace(model.config, training=summary)
        check = emotion_check(model, tracks, guidance, cfg.check_samples, CHECK_ACTION, seed=params.seed,
                              kb_lines=kb.groupby("emotion").description.agg(list).to_dict())
        summary["emotion_check"] = check_summary(check)
        out.path(REPORTS / "emotions.md").write_text(report := check_report(check, guidance))
        model.save(out.path(MODEL))
        out.parquet(tracks.skipped, SKIPPED)
        out.json(summary, REPORTS / "metrics.json")
    log.info("motion model trained on %d tracks: final loss %.4f; written to %s", n_tracks, final_loss, MODEL)
    log.info("apex AU change per emotion, generated (fixed prompt) vs real:\n%s", report)


if __name__ == "__main__":
    run_stage(main)

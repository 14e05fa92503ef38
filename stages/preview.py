"""Stage ``preview``: a contact sheet of what the generator makes, per scarce emotion.

Reads ``generator``, ``preview``, ``decompose.scarce_classes``, the identities and prompts, and the generator's
model (``models/motion`` for ``motion``; extract_aus rows for ``warp``). Writes
``reports/generator/contact_sheet.jpg`` (demo identities and, with ``preview.real_face``, the astronaut,
frames 1, 6, 11, 16) and ``reports/generator/metrics.json`` (per clip: what ran, seconds, folded triangles,
mouth opening).
"""

import logging

import pandas as pd

from argen.errors import InputError
from argen.extract import FRAME_COLUMNS
from argen.generators.factory import make_generator
from argen.generators.preview import contact_sheet, preview_items, run_preview
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.paths import FRAMES, IDENTITIES, IDENTITY_IMAGES as IMAGES, PROMPTS, report_dir
from argen.stage import run_stage

REPORTS = report_dir("generator")

log = logging.getLogger("argen.stages.preview")


def main(params: Params) -> None:
    cfg, generator_cfg = params.preview, params.generator
    identities = read_table(IDENTITIES, ["clip_id", "image_file"], "identities")
    prompts = read_table(PROMPTS, ["identity_id", "emotion", "prompt", "raw_final"], "prompts")
    emotions = [e for e in params.decompose.scarce_classes if (prompts.emotion == e).any()]
    if not emotions:
        raise InputError(f"{PROMPTS} has no prompt for any scarce class ({params.decompose.scarce_classes})")
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus") if generator_cfg.generator == "warp" else None
    generator = make_generator(generator_cfg, frames)
    items = preview_items(identities, prompts, IMAGES, emotions, cfg.identities, cfg.real_face)
    videos, records = run_preview(items, generator, cfg.action, cfg.seed, generator_cfg.n_frames)
    summary = preview_summary(records)
    with staged_outputs() as out:
        contact_sheet(videos, cfg.frames, out.path(REPORTS / "contact_sheet.jpg"))
        out.json(summary, REPORTS / "metrics.json")
    log.info("%d clips with %s, action %s, %.2f s per clip: %s", len(records), generator_cfg.generator, cfg.action,
             records.seconds.mean(), {k: v for k, v in summary.items() if k != "clips"})


def preview_summary(records: pd.DataFrame) -> dict:
    """The metrics JSON: totals first, then one entry per clip (no timings: the same params, the same bytes)."""
    clips = []
    for row in records.to_dict("records"):
        render = row.get("render") if isinstance(row.get("render"), dict) else {}
        clips.append({"emotion": row["emotion"], "source": row["source"], "still": bool(row.get("still", False)),
                      "steps_run": int(row.get("steps_run", 0)), "denoiser_calls": int(row.get("denoiser_calls", 0)),
                      "folded_triangles": max(render.get("folded_after", [0]), default=0),
                      "constrained_vertices": sum(render.get("constrained_vertices", [])),
                      "max_lip_gap_px": max(render.get("lip_gap", [0.0]), default=0.0),
                      "mouth_painted_frames": sum(render.get("mouth_painted", []))})
    return {"generator": str(records.generator.iloc[0]), "clips_total": len(clips),
            "folded_triangles_max": max(c["folded_triangles"] for c in clips),
            "still_clips": sum(c["still"] for c in clips), "clips": clips}


if __name__ == "__main__":
    run_stage(main)

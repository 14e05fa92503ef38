"""The motion model's emotion check as a table: per emotion, the apex AU change of the real training tracks
beside what the model generates from the fixed prompt (:func:`argen.generators.motion.emotion_check`)."""

from __future__ import annotations

import numpy as np

from argen.generators.motion import MotionGuidance
from argen.markdown import markdown_table

#: The action of the emotion check (the paper's strongest: T = 20, a = b = 2).
CHECK_ACTION = (20, 2.0, 2.0)
#: AUs shown per emotion in the check's table: the real tracks' strongest.
CHECK_TOP_AUS = 5


def training_summary(tracks, model, final_loss: float, au_backend: str, seed: int, steps: int, mirror: bool) -> dict:
    """The motion_model stage's metrics: what the model was trained on and how the training ended."""
    return {"tracks": len(tracks.clip_ids), "tracks_with_mirror": len(tracks.motions),
            "time_reversed": int(tracks.reversed.sum()), "clips_skipped": len(tracks.skipped),
            "rows_without_face": tracks.rows_without_face, "final_loss": round(final_loss, 5),
            "au_backend": au_backend, "seed": seed, "steps": steps,
            "data_scale_iod": round(model.config.data_scale, 6),
            "tracks_per_emotion": {e: tracks.labels.count(e) // (2 if mirror else 1) for e in sorted(set(tracks.labels))}}


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

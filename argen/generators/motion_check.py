"""The motion model's emotion check as a table: per emotion, the apex AU change of the real training tracks
beside what the model generates from the fixed prompt and from prompts citing the knowledge base
(:func:`argen.generators.motion.emotion_check`), and which real emotion the generated change is closest to."""

from __future__ import annotations

import numpy as np
import pandas as pd

from argen.generators.motion import MotionGuidance
from argen.markdown import markdown_table

#: The action of the emotion check (the paper's strongest: T = 20, a = b = 2).
CHECK_ACTION = (20, 2.0, 2.0)
#: AUs shown per emotion in the check's table: the real tracks' strongest.
CHECK_TOP_AUS = 5
#: How each kind of check prompt is named in the table.
PROMPT_KINDS = {"fixed": "fixed prompt (no AU codes)", "kb": "knowledge-base prompts (X_T form, AU vector)"}


def training_summary(tracks, model, final_loss: float, au_backend: str, seed: int, steps: int, mirror: bool) -> dict:
    """The motion_model stage's metrics: what the model was trained on and how the training ended."""
    own = tracks.labels[:len(tracks.labels) - tracks.kb_copies]
    return {"tracks": len(tracks.clip_ids), "tracks_with_mirror": len(own), "kb_condition_copies": tracks.kb_copies,
            "time_reversed": int(tracks.reversed.sum()), "clips_skipped": len(tracks.skipped),
            "rows_without_face": tracks.rows_without_face, "final_loss": round(final_loss, 5),
            "au_backend": au_backend, "seed": seed, "steps": steps,
            "data_scale_iod": round(model.config.data_scale, 6),
            "tracks_per_emotion": {e: own.count(e) // (2 if mirror else 1) for e in sorted(set(own))}}


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two AU vectors; 0 when either is constant."""
    return float(np.corrcoef(x, y)[0, 1]) if np.std(x) and np.std(y) else 0.0


def check_summary(check: pd.DataFrame) -> dict:
    """Per prompts kind and emotion: r of the generated and its real mean AU-change vectors, the mean levels,
    and the real emotion whose mean vector the generated one is closest to (highest r)."""
    real = {e: rows.sort_values("au").real.to_numpy() for e, rows in
            check[check.prompts == "fixed"].groupby("emotion", sort=True)}
    out: dict[str, dict] = {}
    for (kind, emotion), rows in check.groupby(["prompts", "emotion"], sort=True):
        generated = rows.sort_values("au").generated.to_numpy()
        closeness = {e: _corr(generated, vector) for e, vector in real.items()}
        closest = max(closeness, key=lambda e: (closeness[e], e == emotion))
        out.setdefault(kind, {})[emotion] = {
            "au_corr": round(closeness.get(emotion, 0.0), 3), "closest_real": closest,
            "closest_corr": round(closeness[closest], 3), "real_mean": round(float(rows.real.mean()), 3),
            "generated_mean": round(float(rows.generated.mean()), 3), "n_real": int(rows.n_real.iloc[0])}
    return out


def check_report(check: pd.DataFrame, guidance: MotionGuidance) -> str:
    """Markdown: per prompts kind and emotion, the real tracks' strongest AUs, real vs generated apex change,
    the correlation with the emotion's real change and the closest real emotion."""
    summary = check_summary(check)
    lines = ["# Motion model: apex AU change per emotion, real training tracks vs generated", "",
             f"Generated: {int(check.n_generated.iloc[0])} motions per emotion and prompt kind, action (T, a, b) = "
             f"{CHECK_ACTION}, guidance g in [{guidance.g_min}, {guidance.g_max}] ({guidance.form}). AU change on "
             f"OpenFace's 0-5 scale at the apex (landmark AU estimator, both on the tracks' mean neutral shape); "
             f"r: correlation of the 16-AU mean vectors; closest: the real emotion with the highest r (the "
             f"generated motion should be closest to its own emotion's).", ""]
    for kind, title in PROMPT_KINDS.items():
        rows = []
        for emotion, group in check[check.prompts == kind].groupby("emotion", sort=True):
            top = group.nlargest(CHECK_TOP_AUS, "real")
            cells = ", ".join(f"AU{r.au:02d} {r.real:.2f} / {r.generated:.2f}" for r in top.itertuples())
            got = summary[kind][emotion]
            rows.append([emotion, got["n_real"], cells, f"{got['au_corr']:.2f}",
                         f"{got['closest_real']} ({got['closest_corr']:.2f})"])
        lines += [f"## {title}", "",
                  *markdown_table(["emotion", "real tracks (with mirrors)", "strongest real AUs: real / generated",
                                   "r", "closest real"], rows, empty="no prompts of this kind"), ""]
    return "\n".join(lines)

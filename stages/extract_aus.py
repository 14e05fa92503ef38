"""Stage ``extract_aus`` (paper sec. 3.2, supp. C): per-frame faces, landmarks and AU intensities.

Reads ``seed``, ``extract_aus`` and ``data/interim/clips.parquet``. Writes
``data/interim/aus.parquet`` (one row per frame: success, confidence, detector, face box, 68 landmarks,
AU01_r..AU45_r, sharpness, brightness, contrast), ``data/interim/aus_clips.parquet`` (the clips processed
and the purposes each serves), ``data/interim/extract_aus_skipped.parquet`` (every frame or clip dropped,
with the reason) and ``reports/extract_aus/metrics.json`` (counts only: the throughput is logged, not
stored, so that the same params give byte-identical outputs; ``benchmarks/au_landmarks.py`` measures it).
Clips go through the shared extraction cache (``$ARGEN_CACHE``, :mod:`argen.extract.cache`), which the
``tracks`` stages read too: a clip is extracted once whatever fold or stage asks for it.
"""

import logging
import time

import numpy as np

from argen.decompose import CLIPS_SCHEMA
from argen.errors import InputError, UserError
from argen.extract.run import PURPOSES, extract_cached, select_clips, selection_summary
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.paths import AU_CLIPS as PROCESSED, CLIPS, EXTRACT_SKIPPED as SKIPPED, FRAMES, report_dir
from argen.stage import provenance, run_stage

METRICS = report_dir("extract_aus") / "metrics.json"

log = logging.getLogger("argen.stages.extract_aus")


def main(params: Params) -> None:
    cfg = params.extract_aus
    clips = read_table(CLIPS, CLIPS_SCHEMA.names, "decompose")
    chosen = select_clips(clips, cfg, params.seed)
    if chosen.empty:
        raise InputError(f"no clip of {CLIPS} is selected for extraction: {selection_summary(clips, cfg)}")
    log.info("%d clips to process: %s", len(chosen),
             ", ".join(f"{p} {sum(p in ps for ps in chosen.purposes)}" for p in PURPOSES))
    start = time.perf_counter()
    _, frames, skips = extract_cached(chosen, cfg)
    seconds = time.perf_counter() - start
    if frames.empty:
        reasons = skips.reason[skips.item.isin(chosen.clip_id)].head(3).tolist()
        raise UserError(f"none of the {len(chosen)} selected clips could be processed by the {cfg.backend} "
                        f"backend; first reasons: {reasons}")
    numeric = frames.select_dtypes("number").columns.difference(["frame"])
    frames[numeric] = frames[numeric].astype(np.float32)
    stats = frames.groupby("clip_id", sort=False).success.agg(["size", "sum"])
    processed = chosen[["clip_id", "label", "split", "subject", "purposes"]].merge(
        stats.rename(columns={"size": "n_frames", "sum": "n_success"}), left_on="clip_id", right_index=True)

    extra = {"backend": cfg.backend}
    if cfg.backend == "openface":
        extra.update(openface_bin=cfg.openface_bin, au_static=cfg.au_static)
    meta = provenance("extract_aus", params, "extract_aus", **extra)
    with staged_outputs() as out:
        out.parquet(frames, FRAMES, metadata=meta)
        out.parquet(processed, PROCESSED, metadata=meta)
        out.parquet(skips, SKIPPED, metadata=meta)
        out.json({
            "backend": cfg.backend,
            "clips": {p: int(sum(p in ps for ps in processed.purposes)) for p in PURPOSES} | {"all": len(processed)},
            "frames": len(frames),
            "face_found_rate": round(float(frames.success.mean()), 4),
            "n_skipped": len(skips),
        }, METRICS)
    log.info("%d frames of %d clips in %.1f s (%.1f frames/s), faces found on %.1f%%, %d items skipped",
             len(frames), len(processed), seconds, len(frames) / seconds, 100 * frames.success.mean(), len(skips))


if __name__ == "__main__":
    run_stage(main)

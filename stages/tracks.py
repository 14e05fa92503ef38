"""Stage ``tracks@<set>``: one clip set's table for the recognisers, and its per-frame AU-backend tracks.

``python stages/tracks.py original|argen|oracle|oversample``. Reads the set's clip table (``original``: the
dataset's ``data/interim/clips.parquet``, every split; ``argen``: ``data/generated/index.parquet``; ``oracle``:
``data/oracle/index.parquet``; ``oversample``: the real scarce training clips of ``clips.parquet`` repeated to
``generate.per_class``'s counts, the recognize variant that oversamples real clips), ``extract_aus`` (the AU
backend and its workers), ``recognize.face_crop`` and, for ``oversample``, ``seed`` and ``generate``.
Writes under ``data/interim/tracks/``:

* ``<set>.parquet``: the clips (clip_id, frames_dir, frames, label, split, subject, set) with their
  content key (a hash of the frames: it changes exactly when a clip's pixels do) and usable frames;
* ``<set>_frames.parquet``: the AU backend's rows for every frame (landmarks, AU intensities), which the
  geometry baseline reads and the evaluation compares;
* ``<set>_skipped.parquet``: every clip or frame left out, with the reason (a generated clip that does not
  decode is skipped here, not in the middle of training);

and ``reports/tracks/<set>.json``. The set's frames are also decoded once into the recognisers' cache at
``recognize.image_size`` so that the matrix of training runs never decodes a JPEG.
"""

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.counts import resolve_per_class
from argen.extract import FRAME_COLUMNS
from argen.extract.run import extract
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.recognize.clips import SET_SOURCES, cache_root, cached_clip_frames, content_key, read_clip_set
from argen.stage import provenance, run_stage

OUT = Path("data/interim/tracks")
REPORTS = Path("reports/tracks")

log = logging.getLogger("argen.stages.tracks")


def build_tracks(name: str, params: Params) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(clip table with content keys, per-frame rows, skipped items) of clip set ``name``."""
    counts = None
    if name == "oversample":
        clips = read_table(SET_SOURCES["original"][0], ["label", "split"], "decompose")
        counts = resolve_per_class(params.generate.per_class, clips, params.generate.table7_factor)
        counts = {e: n for e, n in counts.items() if e in params.decompose.scarce_classes}
        log.info("oversample: the real training clips repeated to %s", counts)
    table = read_clip_set(name, counts, params.seed)
    if counts:
        made = table.label.value_counts()
        for emotion in sorted(e for e, n in counts.items() if made.get(e, 0) < n):
            log.warning("oversample: no %s clip in the training split: none repeated", emotion)
    table["content_key"] = [content_key(r.frames_dir, r.frames)
                            for r in tqdm(table.itertuples(), total=len(table), desc=f"hashing {name}", unit="clip")]
    if table.empty:
        return table.assign(n_usable=np.zeros(0, int)), pd.DataFrame(columns=list(FRAME_COLUMNS)), \
            pd.DataFrame(columns=["item", "reason"])
    frames, skips = extract(table, params.extract_aus, cache_root() / "tracks")
    frames = frames[list(FRAME_COLUMNS)] if len(frames) else pd.DataFrame(columns=list(FRAME_COLUMNS))
    usable = frames.groupby("clip_id").size()
    table["n_usable"] = table.clip_id.map(usable).fillna(0).astype(int)
    cfg = params.recognize
    decode_skips = []
    for row in tqdm(table.itertuples(), total=len(table), desc=f"decoding {name} at {cfg.image_size} px", unit="clip"):
        decoded, clip_skips = cached_clip_frames(row, cfg.image_size, cfg.face_crop)
        decode_skips.extend(s for s in clip_skips if not s[1].startswith("frame dropped"))  # extract recorded those
    skips = pd.concat([skips, pd.DataFrame(decode_skips, columns=["item", "reason"])], ignore_index=True)
    kept = table.n_usable > 0
    return table[kept].reset_index(drop=True), frames, skips


def main(params: Params, name: str) -> None:
    table, frames, skips = build_tracks(name, params)
    detected = float(frames.success.mean()) if len(frames) else 0.0
    log.info("%s: %d clips, %d frames (face found in %.1f %%), %d items skipped", name, len(table), len(frames),
             100 * detected, len(skips))
    for reason, n in skips.reason.str.split(":").str[0].value_counts().head(5).items():
        log.warning("  skipped %d: %s", n, reason)
    meta = provenance("tracks", params, "extract_aus", "recognize", set=name, backend=params.extract_aus.backend)
    with staged_outputs() as out:
        out.parquet(table, OUT / f"{name}.parquet", metadata=meta)
        out.parquet(frames.reset_index(drop=True), OUT / f"{name}_frames.parquet", metadata=meta)
        out.parquet(skips, OUT / f"{name}_skipped.parquet", metadata=meta)
        out.json({"set": name, "clips": len(table), "frames": len(frames), "face_rate": round(detected, 4),
                  "skipped": len(skips),
                  "per_class": {k: int(v) for k, v in table[table.split == "train"].label.value_counts().sort_index().items()}},
                 REPORTS / f"{name}.json")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SET_SOURCES:
        sys.exit(f"usage: python stages/tracks.py {{{'|'.join(SET_SOURCES)}}}")
    run_stage(lambda params: main(params, sys.argv[1]))

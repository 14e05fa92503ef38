"""One clip set's tracks for the recognisers: the clip table with content keys, the AU backend's per-frame
rows, the skipped items, and the frames decoded once into the recognisers' cache (``stages/tracks.py``)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.extract import FRAME_COLUMNS
from argen.extract.run import extract_cached
from argen.params import Params
from argen.counts import resolve_per_class
from argen.io import read_table
from argen.recognize.clips import SET_SOURCES, cached_clip_frames, read_clip_set


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
    if table.empty:
        return table.assign(content_key=[], n_usable=np.zeros(0, int)), \
            pd.DataFrame(columns=list(FRAME_COLUMNS)), pd.DataFrame(columns=["item", "reason"])
    table, frames, skips = extract_cached(table, params.extract_aus, f"hashing {name}")
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

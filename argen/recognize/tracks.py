"""One clip set's tracks for the recognisers: the clip table with content keys, the AU backend's per-frame
rows, the skipped items, and the frames decoded once into the recognisers' cache (``stages/tracks.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.extract import FRAME_COLUMNS
from argen.extract.run import extract
from argen.params import Params
from argen.recognize.clips import cache_root, cached_clip_frames, content_keys, read_clip_set


def build_tracks(name: str, params: Params) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(clip table with content keys, per-frame rows, skipped items) of clip set ``name``."""
    table = read_clip_set(name)
    table["content_key"] = content_keys(table, f"hashing {name}")
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

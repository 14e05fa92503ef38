"""Per-clip features the generation metrics compare, each named for what it is.

* **AU trajectory** (expression space, the dyadic paper's FD precedent): the AU backend's 17 intensities
  averaged over ``n_segments`` equal parts of the clip's frames, in order (onset to apex), concatenated:
  4 x 17 = 68 numbers by default. Frames without a face are left out of their part's mean; a part with no
  face at all leaves the clip out, with the reason.
* **Face descriptor** (appearance and identity): dlib's 128-d face descriptor, on the backend's landmarks,
  averaged over ``n_frames`` frames at the centres of equal parts of the clip's frames with a face.
* **I3D logits** (FVD): the standard detector's 400 logits on 16 frames by segments (only with weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.aus import INTENSITY_COLUMNS
from argen.extract import LANDMARK_COLUMNS
from argen.io import decode_frame
from argen.recognize.clips import segment_indices

#: Feature spaces computed on every machine: key -> what the report calls the distance in it.
SPACES = {"au_trajectory": "AU-trajectory FD", "face_descriptor": "face-descriptor FD"}


def _usable(frames: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each clip's rows with a face and every AU, in frame order."""
    if frames.empty:
        return {}
    ok = frames[frames.success.astype(bool) & frames[list(INTENSITY_COLUMNS)].notna().all(axis=1)]
    return {cid: g.sort_values("frame") for cid, g in ok.groupby("clip_id", sort=False)}


def au_trajectories(frames: pd.DataFrame, clip_ids: list[str], n_segments: int
                    ) -> tuple[np.ndarray, list[str]]:
    """AU-trajectory features (N, n_segments * 17) of ``clip_ids``; NaN rows where a clip has none.

    Returns:
        (features, reason per clip: '' when it has a feature).
    """
    usable, width = _usable(frames), n_segments * len(INTENSITY_COLUMNS)
    everything = {cid: g.sort_values("frame") for cid, g in frames.groupby("clip_id", sort=False)} \
        if len(frames) else {}
    out, reasons = np.full((len(clip_ids), width), np.nan), []
    for k, clip_id in enumerate(clip_ids):
        rows = everything.get(clip_id)
        if rows is None or clip_id not in usable:
            reasons.append("no frame with a face and AUs")
            continue
        aus = rows[list(INTENSITY_COLUMNS)].to_numpy(float, copy=True)
        aus[~rows.success.astype(bool).to_numpy()] = np.nan
        parts = np.array_split(np.arange(len(rows)), n_segments)
        if any(len(p) == 0 or np.isnan(aus[p]).all() for p in parts):
            reasons.append(f"a part of the clip (of {n_segments}) has no frame with a face")
            continue
        out[k] = np.concatenate([np.nanmean(aus[p], axis=0) for p in parts])
        reasons.append("")
    return out, reasons


def descriptor_features(table: pd.DataFrame, frames: pd.DataFrame, n_frames: int, desc: str = "face descriptors"
                        ) -> tuple[np.ndarray, list[str]]:
    """Mean dlib face descriptor (N, 128) of each clip of ``table`` (clip_id, frames_dir); NaN rows if none.

    Returns:
        (features, reason per clip: '' when it has a feature).
    """
    from argen.policy.state import face_descriptors

    usable = _usable(frames)
    out, reasons = np.full((len(table), 128), np.nan), []
    for k, clip in enumerate(tqdm(table.itertuples(index=False), total=len(table), desc=desc, unit="clip")):
        rows = usable.get(clip.clip_id)
        if rows is None:
            reasons.append("no frame with a face")
            continue
        chosen = rows.iloc[segment_indices(len(rows), min(n_frames, len(rows)))]
        images, points = [], []
        for row in chosen.itertuples(index=False):
            image, problem = decode_frame(Path(clip.frames_dir) / row.frame_file)
            if problem is None:
                images.append(image)
                points.append(np.asarray([getattr(row, c) for c in LANDMARK_COLUMNS], float).reshape(2, 68).T)
        if not images:
            reasons.append("no chosen frame decodes")
            continue
        out[k] = face_descriptors(images, np.stack(points)).mean(axis=0)
        reasons.append("")
    return out, reasons


def clip_frames(frames_dir: str | Path, names: list[str], n_frames: int) -> np.ndarray:
    """``n_frames`` RGB frames (n_frames, H, W, 3) uint8 of a clip, one per segment (centres).

    Raises:
        ValueError: a chosen frame does not decode, or the frames differ in size.
    """
    import cv2

    chosen = [names[i] for i in segment_indices(len(names), n_frames)]
    images = []
    for name in chosen:
        image, problem = decode_frame(Path(frames_dir) / name)
        if problem:
            raise ValueError(f"{Path(frames_dir) / name}: {problem}")
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if len({im.shape for im in images}) > 1:
        raise ValueError(f"{frames_dir}: frames of different sizes")
    return np.stack(images)


def i3d_features(table: pd.DataFrame, detector, desc: str = "I3D logits") -> tuple[np.ndarray, list[str]]:
    """I3D logits (N, 400) of every clip of ``table`` (clip_id, frames_dir, frames) on 16 frames."""
    out, reasons = np.full((len(table), 400), np.nan), []
    for k, clip in enumerate(tqdm(table.itertuples(index=False), total=len(table), desc=desc, unit="clip")):
        try:
            video = clip_frames(clip.frames_dir, list(clip.frames), 16)
        except ValueError as err:
            reasons.append(str(err))
            continue
        out[k] = detector.features(video[None])[0]
        reasons.append("")
    return out, reasons

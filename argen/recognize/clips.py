"""What the recognisers read: clip sets, frames by segments, a decode cache, and geometry features.

* **Clip sets.** ``original`` is the dataset (every split; the test split is always the dataset's),
  ``argen`` the generated set ``data/generated``, ``oracle`` the demo renderer's clips ``data/oracle``,
  ``oversample`` the real scarce *training* clips repeated to the augmentation counts
  (:func:`oversampled_clips`: the baseline generative augmentation must beat).
  Every clip, real or generated, is read through the same functions below.
* **Content keys** (:mod:`argen.extract.cache`). A clip's key is a hash of its frame files' names and
  bytes, so a cache entry is reused exactly when the frames are the same, wherever the clip lives (a
  ``dvc queue`` experiment runs in a temporary copy of the project: set ``ARGEN_CACHE`` to a shared folder
  to reuse one decode across experiments).
* **Frames by segments** (TSN-style, as DFEW's baselines): a clip's usable frames are split into
  ``frames`` equal segments and one frame is taken from each, at a random offset in training and at the
  segment's centre in testing. A clip shorter than ``frames`` has segments shorter than a frame, so its
  frames repeat in order (padding by repetition).
* **Decode cache.** Each clip is decoded once into ``uint8`` RGB at the model's input size (optionally
  cropped to its Haar face box first: ``recognize.face_crop``) and kept as one ``.npy`` per clip.
* **Geometry features** for the geometry baseline: per frame the AU backend's 68 landmarks in the face
  frame (canthi-anchored, IOD units: translation, rotation and scale removed), the same minus the clip's
  median shape (the motion, with the identity's own shape removed), and the 17 AU intensities / 5.
  Frames without a face are masked out.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from argen.aus import INTENSITY_COLUMNS
from argen.emotions import EMOTION_INDEX
from argen.extract import landmarks_of
from argen.extract.cache import cache_root, save_array
from argen.face import crop_box, face_axes, haar_cascade
from argen.io import decode_frame, read_table

#: Clip sets and the table each comes from.
SET_SOURCES: dict[str, tuple[Path, str]] = {
    "original": (Path("data/interim/clips.parquet"), "decompose"),
    "argen": (Path("data/generated/index.parquet"), "generate"),
    "oracle": (Path("data/oracle/index.parquet"), "oracle"),
    "oversample": (Path("data/interim/clips.parquet"), "decompose"),
}
CLIP_COLUMNS: tuple[str, ...] = ("clip_id", "frames_dir", "frames", "label", "split", "subject")
#: Per-frame geometry features: normalised landmarks, their motion, AU intensities.
GEOMETRY_DIM = 68 * 2 * 2 + len(INTENSITY_COLUMNS)


def oversampled_clips(clips: pd.DataFrame, counts: dict[str, int], seed: int) -> pd.DataFrame:
    """The ``oversample`` set: real training clips of each emotion repeated to ``counts[emotion]`` copies.

    For each emotion its training clips (never a test clip) are taken in a seeded order; when more copies are
    asked for than there are clips, the order repeats, so every clip is used once before any is used twice.
    Copy k of a clip gets the id ``<clip_id>~os<k>`` and keeps its frames, label, subject and split.

    Args:
        clips: a clip table (:data:`CLIP_COLUMNS`).
        counts: copies per emotion (the augmentation counts, ``generate.per_class`` resolved).
        seed: the order's seed.

    An emotion without a training clip gets no copy (the caller compares the result's counts with ``counts``).
    """
    rng = np.random.default_rng(seed)
    train = clips[clips.split == "train"].sort_values("clip_id")
    parts = []
    for emotion in sorted(counts):
        pool = train[train.label == emotion].reset_index(drop=True)
        if not counts[emotion] or pool.empty:
            continue
        order = rng.permutation(len(pool))
        picks = [order[k % len(pool)] for k in range(counts[emotion])]
        copies = pool.iloc[picks].copy()
        copies["clip_id"] = [f"{c}~os{k // len(pool)}" for k, c in enumerate(copies.clip_id)]
        parts.append(copies)
    return (pd.concat(parts, ignore_index=True) if parts else train.iloc[:0])[list(CLIP_COLUMNS)]


def read_clip_set(name: str, counts: dict[str, int] | None = None, seed: int = 0) -> pd.DataFrame:
    """The clip table of set ``name`` (:data:`CLIP_COLUMNS` plus ``set``); failed generated clips left out.

    ``oversample`` needs ``counts`` (copies per emotion) and ``seed`` (:func:`oversampled_clips`).
    """
    path, made_by = SET_SOURCES[name]
    extra = ["status"] if name == "argen" else []
    table = read_table(path, [*CLIP_COLUMNS, *extra], made_by)
    if extra:
        table = table[table.status.str.startswith("ok")]
    if name == "oversample":
        if counts is None:
            raise ValueError("the oversample set needs the augmentation counts")
        table = oversampled_clips(table, counts, seed)
    table = table[list(CLIP_COLUMNS)].reset_index(drop=True)
    table["frames"] = table.frames.map(list)
    table["set"] = name
    return table


def segment_indices(n_available: int, n_out: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices of ``n_out`` frames of a clip with ``n_available`` usable frames, one per segment.

    Args:
        rng: a generator for a random offset in each segment (training); None takes the centres (testing).
    """
    if n_available < 1:
        raise ValueError("a clip needs at least one usable frame")
    edges = np.linspace(0.0, n_available, n_out + 1)
    offset = 0.5 if rng is None else rng.random(n_out)
    positions = edges[:-1] + offset * (edges[1:] - edges[:-1])
    return np.minimum(np.floor(positions).astype(int), n_available - 1)


def _square_face_box(image: np.ndarray) -> tuple[float, float, float, float] | None:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    boxes = haar_cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    if not len(boxes):
        return None
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    return float(x), float(y), float(w), float(h)


def decode_clip_frames(frames_dir: str | Path, frames: list[str], size: int, face_crop: bool
                       ) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decode a clip's frames into ``uint8`` RGB (n, size, size, 3).

    With ``face_crop`` every frame is cut to the Haar face box of the clip's middle decodable frame
    (grown by 25 %) before resizing; a clip where no face is found keeps its full frames, recorded.

    Returns:
        (the frames that decode, possibly none; (item, reason) for each frame dropped or crop not made).
    """
    images, skips = [], []
    for name in frames:
        image, problem = decode_frame(Path(frames_dir) / name)
        if problem is None:
            images.append(image)
        else:
            skips.append((f"{frames_dir}/{name}", f"frame dropped: {problem}"))
    if not images:
        return np.zeros((0, size, size, 3), np.uint8), skips
    box = _square_face_box(images[len(images) // 2]) if face_crop else None
    if face_crop and box is None:
        skips.append((str(frames_dir), "no face found for the crop: full frames used"))
    out = np.empty((len(images), size, size, 3), np.uint8)
    for k, image in enumerate(images):
        if box is not None:
            image = crop_box(image, box)
        out[k] = cv2.cvtColor(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return out, skips


def cached_clip_frames(row, size: int, face_crop: bool) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """:func:`decode_clip_frames` through the decode cache (``row`` has frames_dir, frames, content_key).

    A cache hit reports no skips (they were recorded by the run that decoded the clip).
    """
    key = f"{row.content_key}-{size}px{'-crop' if face_crop else ''}"
    path = cache_root() / "frames" / key[:2] / f"{key}.npy"
    if path.is_file():
        return np.load(path), []
    frames, skips = decode_clip_frames(row.frames_dir, list(row.frames), size, face_crop)
    save_array(path, frames)
    return frames, skips


def normalised_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (n, 68, 2) in each frame's own face frame (canthi-anchored, IOD units); NaN rows stay NaN."""
    out = np.full_like(landmarks, np.nan, dtype=float)
    for k, points in enumerate(landmarks):
        if np.isfinite(points).all():
            origin, x_axis, y_axis, iod = face_axes(points, anchor="canthi")
            out[k] = (points - origin) @ np.stack([x_axis, y_axis], axis=1) / iod
    return out


def geometry_sequence(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame geometry features (n, :data:`GEOMETRY_DIM`) of one clip's track rows and a validity mask.

    Rows are the AU backend's for one clip, in frame order; a frame without a face (``success`` false) is
    all zeros and masked out.
    """
    valid = rows.success.to_numpy(bool).copy()
    shape = normalised_landmarks(landmarks_of(rows))
    valid &= np.isfinite(shape).all(axis=(1, 2))
    features = np.zeros((len(rows), GEOMETRY_DIM), np.float32)
    if valid.any():
        median = np.median(shape[valid], axis=0)
        aus = np.nan_to_num(rows[list(INTENSITY_COLUMNS)].to_numpy(float)) / 5.0
        features[valid] = np.concatenate([shape[valid].reshape(-1, 136), (shape[valid] - median).reshape(-1, 136),
                                          aus[valid]], axis=1)
    return features, valid


def label_ids(table: pd.DataFrame) -> np.ndarray:
    """Canonical label indices (0 happy ... 6 fear) of a clip table's ``label`` column."""
    return table.label.map(EMOTION_INDEX).to_numpy(int)

"""AU extraction backends behind one interface, and the per-frame row layout they all produce.

Every backend turns one clip's frames into rows with the columns of :data:`FRAME_COLUMNS`: clip id, frame
index and file, ``success``, ``confidence``, which detector found the face, the face box, 68 landmarks
``x_0..x_67, y_0..y_67`` and the 17 OpenFace intensity AUs ``AU01_r..AU45_r`` on OpenFace's 0-5 scale.
Frames without a face are rows with ``success = 0`` and NaN landmarks and AUs, never errors.

Backends (``extract_aus.backend``): ``openface`` (OpenFace 2.x FeatureExtraction, a subprocess),
``landmarks`` (the CPU default: dlib landmarks and a geometric AU estimator), ``csv`` (OpenFace CSVs
computed beforehand).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from argen.aus import INTENSITY_COLUMNS

LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
BOX_COLUMNS: tuple[str, ...] = ("face_x", "face_y", "face_w", "face_h")
FRAME_COLUMNS: tuple[str, ...] = ("clip_id", "frame", "frame_file", "success", "confidence", "detector",
                                  *BOX_COLUMNS, *LANDMARK_COLUMNS, *INTENSITY_COLUMNS)


class AUBackend(Protocol):
    """What the extract_aus stage needs of a backend.

    ``reads_only_frames``: a clip's rows depend on its frames and the backend's settings alone, so the shared
    extraction cache (keyed by frame bytes) may serve them; false for a backend that reads other per-clip files.
    """

    name: str
    reads_only_frames: bool

    def process_clip(self, clip_id: str, frames_dir: Path, frame_files: list[str],
                     images: list[np.ndarray]) -> pd.DataFrame:
        """Rows (:data:`FRAME_COLUMNS`, plus backend-specific extras) for one clip's frames, in order."""

    def finalize(self, frames: pd.DataFrame) -> pd.DataFrame:
        """Post-process all clips' rows together (e.g. a population reference); may return them as they are."""


def empty_rows(clip_id: str, frame_files: list[str]) -> pd.DataFrame:
    """One failed row per frame (``success = 0``, NaN measurements): the start of every backend's output."""
    n = len(frame_files)
    data: dict[str, object] = {"clip_id": [clip_id] * n, "frame": np.arange(n), "frame_file": list(frame_files),
                               "success": np.zeros(n, bool), "confidence": np.zeros(n), "detector": [""] * n}
    nan = np.full(n, np.nan)
    data.update({col: nan.copy() for col in (*BOX_COLUMNS, *LANDMARK_COLUMNS, *INTENSITY_COLUMNS)})
    return pd.DataFrame(data)


def landmarks_of(rows: pd.DataFrame) -> np.ndarray:
    """The landmarks of ``rows`` as an array (n, 68, 2)."""
    xs = rows[[f"x_{i}" for i in range(68)]].to_numpy(dtype=float)
    ys = rows[[f"y_{i}" for i in range(68)]].to_numpy(dtype=float)
    return np.stack([xs, ys], axis=-1)

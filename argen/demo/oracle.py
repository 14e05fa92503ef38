"""The oracle control of the recognition study: extra scarce clips from the demo's own renderer.

The demo dataset is drawn by a known process (:mod:`argen.demo.dataset`). Clips rendered by that same
process, for subjects the dataset has never seen, are what a perfect generator would add: the ceiling for
what any augmentation can do on the demo. The ``argen`` variant's gain is reported as a share of the
oracle's. The oracle adds exactly as many clips per emotion as the generated set holds, correctly labelled
(no label noise), with the demo's own poses, lighting, blur and occlusion. Only the demo has an oracle.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from argen.demo.dataset import ClipSpec, render_clip
from argen.demo.face import FaceShape
from argen.demo.render import Appearance
from argen.emotions import EMOTION_INDEX
from argen.params import DemoParams

#: Mixed into the seed so that oracle subjects never coincide with the dataset's (a different stream).
ORACLE_STREAM = 0x0AC1E


def write_jpeg_frames(frames: list[np.ndarray], folder: Path, quality: int) -> list[str]:
    """Write BGR frames as ``folder/1.jpg``, ``2.jpg``... (the demo's naming); return the file names."""
    folder.mkdir()
    names = []
    for f, frame in enumerate(frames, start=1):
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {folder} frame {f}")
        (folder / f"{f}.jpg").write_bytes(buf.tobytes())
        names.append(f"{f}.jpg")
    return names


def render_oracle_set(counts: dict[str, int], params: DemoParams, seed: int, out: Path, recorded_root: Path,
                      clips_per_subject: int = 1) -> pd.DataFrame:
    """Render the oracle clips into ``out/<clip_id>/1.jpg...`` and return their clip table.

    Args:
        counts: clips per emotion.
        params: the ``demo`` section (frame size, frames, occlusion, JPEG quality as the dataset's).
        seed: the global seed; the same seed gives the same bytes.
        out: folder to write (must exist).
        recorded_root: the folder's final path, recorded as ``frames_dir`` (``out`` may be a staging copy).
        clips_per_subject: clips each new subject gives (1: every clip a new face).

    Returns:
        One row per clip: clip_id, frames_dir, frames, n_frames, label, label_id, split ("train"), subject,
        emotion, seed, generator.
    """
    rng = np.random.default_rng([seed, ORACLE_STREAM])
    rows = []
    subject_face: tuple[FaceShape, Appearance] | None = None
    number = 0
    for emotion in sorted(counts):
        for k in range(counts[emotion]):
            if number % clips_per_subject == 0:
                subject_face = (FaceShape.sample(rng), Appearance.sample(rng))
            subject = f"O{number // clips_per_subject + 1:04d}"
            clip_seed = int(rng.integers(0, 2**63 - 1))
            clip_id = f"oracle-{emotion}-{k + 1:04d}"
            spec = ClipSpec(index=number, video_name=clip_id, subject=subject, emotion=emotion, label=emotion,
                            fold=0, seed=clip_seed)
            frames, _ = render_clip(spec, *subject_face, params)
            names = write_jpeg_frames(frames, out / clip_id, params.jpeg_quality)
            rows.append({"clip_id": clip_id, "frames_dir": str(recorded_root / clip_id), "frames": names, "n_frames": len(names),
                         "label": emotion, "label_id": EMOTION_INDEX[emotion], "split": "train", "subject": subject,
                         "emotion": emotion, "seed": clip_seed, "generator": "demo renderer (oracle)"})
            number += 1
    return pd.DataFrame(rows, columns=["clip_id", "frames_dir", "frames", "n_frames", "label", "label_id", "split",
                                       "subject", "emotion", "seed", "generator"])

"""Identity frame selection: the least-AU admissible frame; blurred, dark and faceless frames rejected."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from argen.aus import INTENSITY_COLUMNS
from argen.demo.dataset import render_face
from argen.demo.face import FaceShape
from argen.demo.render import Appearance
from argen.extract.run import quality_figures
from argen.identities import identity_grid, select_identities, write_identity_images
from argen.params import IdentitiesParams

PARAMS = IdentitiesParams(min_sharpness=100.0, min_brightness=40.0, max_brightness=220.0, min_contrast=20.0,
                          min_face_size=40, min_image_size=64)


def frame_row(clip: str, frame: int, mean_au: float, image: np.ndarray, success: bool = True) -> dict:
    sharp, bright, contrast = quality_figures(image)
    row = {"clip_id": clip, "frame": frame, "frame_file": f"{frame + 1}.png", "success": success,
           "face_w": 70.0 if success else np.nan, "face_h": 80.0 if success else np.nan,
           "sharpness": sharp, "brightness": bright, "contrast": contrast, "img_w": image.shape[1],
           "img_h": image.shape[0]}
    row.update({c: mean_au for c in INTENSITY_COLUMNS})
    return row


def test_picks_the_least_expressive_admissible_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    face = np.clip(render_face(FaceShape(), Appearance.sample(rng), {}, 128)[0], 0, 255).astype(np.uint8)
    face = np.clip(face + rng.normal(0, 3, face.shape), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(face, (0, 0), 3)
    dark = (face * 0.15).astype(np.uint8)
    frames = pd.DataFrame([
        frame_row("c1", 0, 0.9, face), frame_row("c1", 1, 0.4, face),
        frame_row("c1", 2, 0.1, blurred), frame_row("c1", 3, 0.05, dark), frame_row("c1", 4, 0.0, face, False),
        frame_row("c2", 0, 0.1, blurred), frame_row("c2", 1, 0.1, dark),
    ])
    sources = pd.DataFrame({"clip_id": ["c1", "c2", "c3"], "subject": ["s1", "s2", "s3"],
                            "label": ["neutral"] * 3, "frames_dir": [str(tmp_path)] * 3})
    selected, rejected = select_identities(frames, sources, PARAMS)
    assert selected.clip_id.tolist() == ["c1"]
    best = selected.iloc[0]
    assert best.frame == 1, "frames 2-4 are less expressive but blurred, dark or faceless"
    assert best.n_admissible == 2 and best.mean_au == pytest.approx(0.4)
    reasons = dict(zip(rejected.clip_id, rejected.reason))
    assert reasons["c2"].startswith("no admissible frame among 2: ")
    assert "blurred (sharpness < 100)" in reasons["c2"] and "1 too dark (brightness < 40)" in reasons["c2"]
    assert reasons["c3"] == "no extract_aus rows (skipped there)"

    cv2.imwrite(str(tmp_path / "2.png"), face)
    selected["image_file"] = write_identity_images(selected, tmp_path / "out")
    assert (cv2.imread(str(tmp_path / "out" / "c1.png")) == face).all(), "identity images are lossless copies"
    identity_grid(selected, tmp_path / "out", tmp_path / "grid.png", n=24)
    assert (tmp_path / "grid.png").stat().st_size > 0

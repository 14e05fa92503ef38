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
from argen.identities import identity_grid, neutrality_failures, select_identities, write_identity_images
from argen.params import IdentitiesParams
from tests.conftest import demo_landmarks

PARAMS = IdentitiesParams(min_sharpness=100.0, min_brightness=40.0, max_brightness=220.0, min_contrast=20.0,
                          min_face_size=40, min_image_size=64)


def open_mouth(points: np.ndarray, gap: float) -> np.ndarray:
    """Landmarks of a jaw drop: the lower lip dropped by ``gap`` inter-ocular distances, the corners by a
    quarter of that (as the demo's face model moves them)."""
    moved = points.copy()
    iod = np.linalg.norm(points[42:48].mean(axis=0) - points[36:42].mean(axis=0))
    moved[[*range(55, 60), *range(65, 68)], 1] += gap * iod
    moved[[48, 54], 1] += 0.27 * gap * iod
    return moved


def frame_row(clip: str, frame: int, mean_au: float, image: np.ndarray, success: bool = True,
              points: np.ndarray | None = None) -> dict:
    sharp, bright, contrast = quality_figures(image)
    points = demo_landmarks(128) if points is None else points
    row = {"clip_id": clip, "frame": frame, "frame_file": f"{frame + 1}.png", "success": success, "face_x": 29.0,
           "face_y": 30.0,
           "face_w": 70.0 if success else np.nan, "face_h": 80.0 if success else np.nan,
           "sharpness": sharp, "brightness": bright, "contrast": contrast, "img_w": image.shape[1],
           "img_h": image.shape[0]}
    row.update({c: mean_au for c in INTENSITY_COLUMNS})
    row.update({f"x_{k}": points[k, 0] for k in range(68)} | {f"y_{k}": points[k, 1] for k in range(68)})
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
    cv2.imwrite(str(tmp_path / "2.png"), face)  # the chosen frame: its mouth is checked for teeth on the image
    selected, rejected = select_identities(frames, sources, PARAMS)
    assert selected.clip_id.tolist() == ["c1"]
    best = selected.iloc[0]
    assert best.frame == 1, "frames 2-4 are less expressive but blurred, dark or faceless"
    assert best.n_admissible == 2 and best.mean_au == pytest.approx(0.4)
    reasons = dict(zip(rejected.clip_id, rejected.reason))
    assert reasons["c2"].startswith("no admissible frame among 2: ")
    assert "blurred (sharpness < 100)" in reasons["c2"] and "1 too dark (brightness < 40)" in reasons["c2"]
    assert reasons["c3"] == "no extract_aus rows (skipped there)"

    selected["image_file"] = write_identity_images(selected, tmp_path / "out")
    assert (cv2.imread(str(tmp_path / "out" / "c1.png")) == face).all(), "identity images are lossless copies"
    identity_grid(selected, tmp_path / "out", tmp_path / "grid.png", n=24)
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_a_talking_clip_gives_its_closed_mouth_frame_not_its_least_expressive(tmp_path: Path) -> None:
    """AUs are relative to the clip, so mid-speech can read lowest; the absolute check rejects open lips,
    raised lip corners and closed eyes, and names them in the rejection reason."""
    face = np.clip(render_face(FaceShape(), Appearance.sample(np.random.default_rng(1)), {}, 128)[0], 0, 255)
    face = face.astype(np.uint8)
    points = demo_landmarks(128)
    smiling, blinking = points.copy(), points.copy()
    smiling[[48, 54], 1] -= 0.2 * np.linalg.norm(points[45] - points[36]) / 2
    blinking[[37, 38, 43, 44], 1] = points[[41, 40, 47, 46], 1]
    frames = pd.DataFrame([
        frame_row("talk", 0, 0.0, face, points=open_mouth(points, 0.25)),
        frame_row("talk", 1, 0.1, face, points=smiling),
        frame_row("talk", 2, 0.2, face, points=blinking),
        frame_row("talk", 3, 0.6, face, points=points),
        frame_row("open", 0, 0.0, face, points=open_mouth(points, 0.25)),
    ])
    sources = pd.DataFrame({"clip_id": ["talk", "open"], "subject": ["s1", "s2"], "label": ["neutral"] * 2,
                            "frames_dir": [str(tmp_path)] * 2})
    cv2.imwrite(str(tmp_path / "4.png"), face)
    selected, rejected = select_identities(frames, sources, PARAMS)
    assert selected.frame.tolist() == [3], "the only neutral-looking frame, though its mean AU is highest"
    assert rejected.reason.tolist() == ["no admissible frame among 1: 1 mouth open (lip gap > 0.03 IOD)"]
    failures = neutrality_failures(np.stack([open_mouth(points, 0.25), smiling, blinking, points]), PARAMS)
    assert failures.columns.tolist() == ["mouth open", "smiling", "smirk", "eyes closed"]
    assert failures.to_numpy().tolist() == [[True, False, False, False], [False, True, False, False],
                                             [False, False, False, True], [False, False, False, False]]


def test_teeth_between_closed_lips_reject_the_frame(tmp_path: Path) -> None:
    """Landmarks of closed lips over an image showing teeth (dlib often closes the inner lips over them): the
    image check rejects the frame and the next candidate is taken; a clip with only such frames is rejected
    with the reason named."""
    face = np.clip(render_face(FaceShape(), Appearance.sample(np.random.default_rng(1)), {}, 128)[0], 0, 255)
    face = face.astype(np.uint8)
    points = demo_landmarks(128)
    iod = np.linalg.norm(points[42:48].mean(axis=0) - points[36:42].mean(axis=0))
    teeth = face.copy()
    band = points[60:68].copy()
    band[1:4, 1] -= 0.06 * iod
    band[5:8, 1] += 0.06 * iod
    cv2.fillPoly(teeth, [np.round(band).astype(np.int32)], (225, 235, 240), cv2.LINE_AA)
    cv2.imwrite(str(tmp_path / "1.png"), teeth)
    cv2.imwrite(str(tmp_path / "2.png"), face)
    frames = pd.DataFrame([frame_row("c", 0, 0.0, teeth, points=points), frame_row("c", 1, 0.5, face, points=points),
                           frame_row("t", 0, 0.0, teeth, points=points)])
    sources = pd.DataFrame({"clip_id": ["c", "t"], "subject": ["s1", "s2"], "label": ["neutral"] * 2,
                            "frames_dir": [str(tmp_path)] * 2})
    selected, rejected = select_identities(frames, sources, PARAMS)
    assert selected.frame.tolist() == [1] and selected.n_admissible.tolist() == [1]
    assert selected.teeth_share.iloc[0] < 0.02
    assert rejected.reason.tolist() == ["no admissible frame among 1: 1 teeth showing (teeth-like share of the "
                                        "mouth > 0.1)"]
    unchecked, _ = select_identities(frames, sources, PARAMS.model_copy(update={"neutral_check": False}))
    assert unchecked.frame.tolist() == [0, 0], "without the check the least-AU frames win, mid-speech or not"

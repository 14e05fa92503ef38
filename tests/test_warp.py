"""The warp generator: AU -> landmark model, onset curve, piecewise-affine warp."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argen.generators.render import piecewise_affine_map
from argen.generators.warp import AULandmarkModel, WarpGenerator, fit_au_landmark_model, onset_curve
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.demo.face import AU_BASIS, FaceShape, expressive_landmarks, neutral_landmarks
from argen.demo.dataset import render_face
from argen.demo.render import Appearance

AU12 = INTENSITY_AUS.index(12)


def synthetic_rows(n_clips: int = 12, n_frames: int = 6) -> pd.DataFrame:
    """extract_aus-like rows whose landmarks follow the demo's own AU basis exactly."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(n_clips):
        shape = FaceShape.sample(rng)
        neutral = neutral_landmarks(shape)
        for f in range(n_frames):
            aus = {au: float(rng.uniform(0, 4)) if f else 0.0 for au in INTENSITY_AUS if au != 45}
            pts = expressive_landmarks(neutral, aus, shape)[:, :2] * 40 + 64
            row = {"clip_id": f"c{c}", "frame": f, "success": True}
            row.update({f"x_{i}": pts[i, 0] for i in range(68)})
            row.update({f"y_{i}": pts[i, 1] for i in range(68)})
            row.update({f"AU{au:02d}_r": aus.get(au, 0.0) for au in INTENSITY_AUS})
            rows.append(row)
    return pd.DataFrame(rows)


def test_least_squares_recovers_a_linear_basis() -> None:
    model = fit_au_landmark_model(synthetic_rows(), ridge=1e-6)
    shape = FaceShape()
    iod = 2 * shape.eye_spacing
    expected = AU_BASIS[12] / 5 / iod  # per unit intensity, in inter-ocular units
    learned = model.displacement(np.eye(17)[AU12])[0]
    np.testing.assert_allclose(learned, expected, atol=0.02)


def test_onset_curve() -> None:
    curve = onset_curve(16, 2, 2)
    assert curve[0] == 0.0 and curve[-1] == 1.0 and np.all(np.diff(curve) > 0)
    assert curve[7] == pytest.approx(1 - curve[8])  # symmetric for (2, 2)
    assert onset_curve(16, 3, 2)[8] < curve[8] < onset_curve(16, 2, 3)[8]  # late vs early onset


def test_piecewise_affine_map_identity_and_translation() -> None:
    pts = np.array([[0, 0], [31, 0], [0, 31], [31, 31], [16, 16]], dtype=float)
    from scipy.spatial import Delaunay
    tris = Delaunay(pts).simplices
    map_x, map_y = piecewise_affine_map(pts, pts, tris, (32, 32))
    ys, xs = np.mgrid[0:32, 0:32]
    np.testing.assert_allclose(map_x, xs, atol=1e-4)
    np.testing.assert_allclose(map_y, ys, atol=1e-4)


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    image, landmarks = render_face(FaceShape(), Appearance.sample(np.random.default_rng(2)), {}, 128)
    return np.clip(image, 0, 255).astype(np.uint8), landmarks


def test_zero_aus_return_the_input(face) -> None:
    image, landmarks = face
    generator = WarpGenerator(fit_au_landmark_model(synthetic_rows()))
    video, record = generator.generate(image, landmarks, {}, (10, 2, 2), seed=0, n_frames=5)
    assert video.shape == (5, 128, 128, 3) and video.dtype == np.uint8
    assert all(np.array_equal(frame, image) for frame in video)
    assert record["steps_run"] == 0 and "no effect" in record["steps_note"]


def test_au12_lifts_the_mouth_corners(face) -> None:
    image, landmarks = face
    generator = WarpGenerator(fit_au_landmark_model(synthetic_rows()))
    targets = generator.target_landmarks(landmarks, {12: 5.0}, onset_curve(4, 2, 2))
    assert np.allclose(targets[0], landmarks)
    assert targets[-1][48, 1] < landmarks[48, 1] - 1 and targets[-1][54, 1] < landmarks[54, 1] - 1
    assert np.allclose(targets[-1][17:27], landmarks[17:27], atol=0.5), "the brows stay"
    video, _ = generator.generate(image, landmarks, {12: 1.0}, (5, 2, 2), seed=0, n_frames=4)
    assert not np.array_equal(video[-1], image)


def test_size_and_constraint_record(face) -> None:
    image, landmarks = face
    generator = WarpGenerator(fit_au_landmark_model(synthetic_rows()))
    video, record = generator.generate(image, landmarks, {26: 1.0, 1: 0.8}, (5, 2, 2), seed=0, n_frames=4, size=96)
    assert video.shape == (4, 96, 96, 3) and record["size"] == 96
    assert record["constrained_vertices"] >= 0 and record["max_folded_before"] >= 0
    assert record["mouth_painted_frames"] > 0, "AU26 opens the demo face's closed mouth"


def test_model_round_trip(tmp_path) -> None:
    model = AULandmarkModel(np.arange(17 * 136, dtype=float).reshape(17, 136), 10, 1.0)
    model.save(tmp_path / "m.npz")
    again = AULandmarkModel.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.weights, model.weights)
    assert INTENSITY_COLUMNS[AU12] == "AU12_r"

"""ARD reward components (argen.rewards.components): known answers computed by hand, and the auditor's wiring."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from argen.rewards.components import RewardSettings, VideoAuditor, au_fidelity, empirical_a_max, expression_reward, \
    face_reward, frame_quality, quality_reward, read_ratings, speed_reward, temporal_consistency
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.errors import InputError
from argen.extract import empty_rows
from argen.extract.landmarks import LandmarkAUBackend
from argen.face import haar_cascade


@pytest.fixture(scope="module")
def cascade() -> cv2.CascadeClassifier:
    return haar_cascade()


@pytest.fixture(scope="module")
def astronaut_face() -> np.ndarray:
    """The astronaut's face (skimage test image), cropped around it, BGR, 128 x 128."""
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return cv2.resize(image[20:220, 140:340], (128, 128), interpolation=cv2.INTER_AREA)


def video_of(frame: np.ndarray, n: int) -> np.ndarray:
    return np.repeat(frame[None], n, axis=0)


def aus_row(**values: float) -> np.ndarray:
    """One frame's AU vector (17,) in OpenFace's order: ``aus_row(AU01=3)``."""
    row = np.zeros(len(INTENSITY_AUS))
    for name, value in values.items():
        row[INTENSITY_COLUMNS.index(f"{name}_r")] = value
    return row


def half_split(value: int, size: int = 64) -> np.ndarray:
    """A grey frame whose left half is 0 and right half ``value``: grey std value / 2, Laplacian var 2 value^2 / size."""
    frame = np.zeros((size, size, 3), np.uint8)
    frame[:, size // 2:] = value
    return frame


# --- R_S ----------------------------------------------------------------------------------------------------

def test_speed_reward_table() -> None:
    assert [speed_reward(t, 20) for t in (5, 10, 15, 20)] == [0.75, 0.5, 0.25, 0.0]
    with pytest.raises(ValueError):
        speed_reward(25, 20)


# --- R_Q ----------------------------------------------------------------------------------------------------

def test_flat_grey_frame_has_zero_quality() -> None:
    video = np.full((3, 32, 32, 3), 128, np.uint8)
    np.testing.assert_array_equal(frame_quality(video, 200.0, 32.0), 0.0)
    r_q, q_m, q_big_m = quality_reward(video, alpha=0.6)
    assert (q_m, q_big_m) == (0.0, 1.0)
    assert r_q == pytest.approx(0.4, abs=1e-12)


def test_frame_quality_by_hand() -> None:
    """Half 0, half 40 on 64 px: Laplacian variance 2 * 40^2 / 64 = 50, grey std 20."""
    video = video_of(half_split(40), 2)
    expected = 0.5 * (1 - math.exp(-1)) + 0.5 * 0.5
    np.testing.assert_allclose(frame_quality(video, sharpness_ref=50.0, contrast_ref=40.0), expected, atol=1e-9)
    assert frame_quality(video, 50.0, 10.0)[0] == pytest.approx(0.5 * (1 - math.exp(-1)) + 0.5, abs=1e-9)
    r_q, q_m, q_big_m = quality_reward(video, alpha=0.6, sharpness_ref=50.0, contrast_ref=40.0)
    assert q_m == pytest.approx(expected, abs=1e-9) and q_big_m == pytest.approx(1.0, abs=1e-12)
    assert r_q == pytest.approx(0.6 * expected + 0.4, abs=1e-9)


def test_identical_frames_are_perfectly_consistent(astronaut_face: np.ndarray) -> None:
    assert temporal_consistency(video_of(astronaut_face, 5)) == pytest.approx(1.0, abs=1e-12)
    assert temporal_consistency(video_of(astronaut_face, 1)) == 1.0


def test_noise_is_inconsistent() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    assert temporal_consistency(noise) < 0.5


def test_negative_ssim_is_clipped_to_zero(astronaut_face: np.ndarray) -> None:
    """A frame followed by its negative has SSIM < 0; the pair scores 0."""
    assert temporal_consistency(np.stack([astronaut_face, 255 - astronaut_face])) == 0.0


# --- R_F ----------------------------------------------------------------------------------------------------

def test_black_video_has_no_face(cascade: cv2.CascadeClassifier) -> None:
    r_f, presence = face_reward(np.zeros((3, 128, 128, 3), np.uint8), cascade)
    assert r_f == 0.0 and presence.tolist() == [0.0, 0.0, 0.0]


def test_face_video_has_a_face_in_every_frame(cascade: cv2.CascadeClassifier, astronaut_face: np.ndarray) -> None:
    r_f, presence = face_reward(video_of(astronaut_face, 3), cascade)
    assert r_f == 1.0 and presence.tolist() == [1.0, 1.0, 1.0]


def test_face_presence_per_frame(cascade: cv2.CascadeClassifier, astronaut_face: np.ndarray) -> None:
    video = np.stack([astronaut_face, np.zeros_like(astronaut_face), astronaut_face, np.zeros_like(astronaut_face)])
    r_f, presence = face_reward(video, cascade)
    assert r_f == 0.5 and presence.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_small_face_does_not_count(cascade: cv2.CascadeClassifier, astronaut_face: np.ndarray) -> None:
    """The 128 px crop (face about 55 px) in a 640 px black frame: under 0.2 of the side, over 0.05."""
    frame = np.zeros((640, 640, 3), np.uint8)
    frame[256:384, 256:384] = astronaut_face
    assert face_reward(frame[None], cascade, min_size_fraction=0.2)[0] == 0.0
    assert face_reward(frame[None], cascade, min_size_fraction=0.05)[0] == 1.0


# --- R_E ----------------------------------------------------------------------------------------------------

def test_expression_reward_by_hand() -> None:
    assert expression_reward(np.zeros((4, 17)), a_max=5.0) == 1.0
    five = aus_row(AU01=3, AU12=4)  # ||a|| = 5
    assert expression_reward(five[None], a_max=10.0) == pytest.approx(0.5)
    assert expression_reward(np.stack([five, 2 * five]), a_max=5.0) == 0.0, "beyond a_max earns 0, not less"


def test_expression_reward_ignores_blinks() -> None:
    assert expression_reward(aus_row(AU01=3, AU12=4, AU45=5)[None], a_max=10.0) == pytest.approx(0.5)


def test_frames_without_face_earn_nothing() -> None:
    aus = np.stack([aus_row(AU01=3, AU12=4), np.full(17, np.nan)])
    assert expression_reward(aus, a_max=10.0) == pytest.approx(0.25)


# --- R_A ----------------------------------------------------------------------------------------------------

def test_au_fidelity_by_hand() -> None:
    """Active: AU01 (peak 1.6) and AU12 (peak exactly 1.5); not AU04 (1.4), AU45 (blink), nor AU26 of the
    undetected frame. Prompt {1, 4} (45 and the unknown 99 dropped): F1 = 2 * 1 / (2 + 2)."""
    undetected = aus_row(AU26=5.0)
    undetected[0] = np.nan
    aus = np.stack([aus_row(AU01=0.5, AU04=1.4, AU12=1.5), aus_row(AU01=1.6, AU45=3.0), undetected])
    assert au_fidelity(aus, {1: 0.5, 4: 0.2, 45: 0.5, 99: 1.0}, threshold=1.5) == pytest.approx(0.5)
    assert au_fidelity(aus, {1: 0.5, 12: 0.5}) == 1.0
    assert au_fidelity(aus, {12: 0.5}) == pytest.approx(2 / 3)


def test_au_fidelity_edge_cases() -> None:
    """A prompt citing no AU that counts has no R_A (a still face must not score as agreeing with it)."""
    for aus in (np.zeros((3, 17)), np.full((3, 17), np.nan), np.stack([aus_row(AU12=3.0)] * 3)):
        assert np.isnan(au_fidelity(aus, {})) and np.isnan(au_fidelity(aus, {45: 0.5, 99: 1.0}))
    assert au_fidelity(np.full((3, 17), np.nan), {12: 0.5}) == 0.0
    assert au_fidelity(np.zeros((3, 17)), {12: 0.5}) == 0.0


# --- a_max --------------------------------------------------------------------------------------------------

def test_empirical_a_max_by_hand() -> None:
    """Detected rows with ||a|| = 0..4 (AU45 = 100 ignored); a failed row and a NaN row are left out."""
    rows = empty_rows("c", [f"{k}.png" for k in range(7)])
    aus = np.zeros((7, 17))
    aus[:5, INTENSITY_COLUMNS.index("AU01_r")] = np.arange(5)
    aus[:, INTENSITY_COLUMNS.index("AU45_r")] = 100.0
    aus[5, 0] = 50.0
    aus[6, 1] = np.nan
    rows[list(INTENSITY_COLUMNS)] = aus
    rows["success"] = [True] * 5 + [False, True]
    assert empirical_a_max(rows, quantile=0.5) == pytest.approx(2.0)
    assert empirical_a_max(rows, quantile=1.0) == pytest.approx(4.0)


def test_empirical_a_max_needs_detected_rows() -> None:
    with pytest.raises(InputError, match="none of the 3 AU rows has a detected face"):
        empirical_a_max(empty_rows("c", ["a.png", "b.png", "c.png"]))


# --- R_H ----------------------------------------------------------------------------------------------------

def test_read_ratings_reports_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_bytes("\ufeffclip,rating\nA,0.8\nZ,0.5\nB,1.5\nC,abc\nA,0.2\n\nD\nE, 1\n".encode("utf-8"))
    ratings, problems = read_ratings(path, known_clips={"A", "B", "C", "D", "E", "F"})
    assert ratings.to_dict() == {"A": 0.8, "E": 1.0}
    assert len(problems) == 5
    for line, words in zip((3, 4, 5, 6, 8), ("unknown clip 'Z'", "outside [0, 1]", "not a number",
                                             "rated again (first at line 2)", "1 field(s)")):
        assert any(f"line {line}:" in p and words in p and str(path) in p for p in problems), (line, problems)


def test_read_ratings_needs_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("clip,score\nA,0.5\n")
    with pytest.raises(InputError, match="lacks 'clip' or 'rating'"):
        read_ratings(path, {"A"})


# --- VideoAuditor -------------------------------------------------------------------------------------------

class FakeBackend:
    """Returns given AUs from ``finalize``; checks the frames it is handed, in memory and on disk."""

    name = "fake"

    def __init__(self, aus: np.ndarray, success: list[bool]) -> None:
        self.aus, self.success = aus, success
        self.calls: list[str] = []

    def process_clip(self, clip_id: str, frames_dir: Path, frame_files: list[str],
                     images: list[np.ndarray]) -> pd.DataFrame:
        on_disk = [cv2.imread(str(frames_dir / name)) for name in frame_files]
        assert all(np.array_equal(a, b) for a, b in zip(on_disk, images)) and len(on_disk) == len(self.success)
        self.calls.append("process_clip")
        rows = empty_rows(clip_id, frame_files)
        rows["success"] = self.success
        return rows

    def finalize(self, frames: pd.DataFrame) -> pd.DataFrame:
        self.calls.append("finalize")
        frames = frames.copy()
        frames[list(INTENSITY_COLUMNS)] = self.aus
        return frames


def test_auditor_wiring(cascade: cv2.CascadeClassifier, astronaut_face: np.ndarray) -> None:
    """Frames 0, 1: ||a|| = 5 (plus a blink); frame 2 failed (its AU04 = 5 must not count); frame 3 neutral.

    R_E = (0.5 + 0.5 + 0 + 1) / 4 with a_max 10; active AUs {1, 12}, prompt {4, 12}: R_A = 0.5.
    """
    aus = np.stack([aus_row(AU01=3, AU12=4), aus_row(AU01=3, AU12=4, AU45=5), aus_row(AU04=5), aus_row()])
    backend = FakeBackend(aus, [True, True, False, True])
    auditor = VideoAuditor(backend, cascade, RewardSettings(a_max=10.0))
    result = auditor.audit(video_of(astronaut_face, 4), {4: 0.4, 12: 0.6}, steps=15, steps_max=20)
    assert backend.calls == ["process_clip", "finalize"]
    assert result["au_frames_detected"] == 3
    assert result["R_E"] == pytest.approx(0.5)
    assert result["R_A"] == pytest.approx(0.5)
    assert result["R_S"] == 0.25 and result["R_F"] == 1.0 and result["Q_M"] == pytest.approx(1.0, abs=1e-12)
    assert result["R_Q"] == pytest.approx(0.6 * result["Q_m"] + 0.4 * result["Q_M"])


def test_auditor_with_landmarks_on_a_still_face(cascade: cv2.CascadeClassifier, astronaut_face: np.ndarray) -> None:
    """A still video has no expression change: against its own neutral (bounds off) every AU is 0."""
    auditor = VideoAuditor(LandmarkAUBackend(neutral_bounds=False), cascade)
    result = auditor.audit(video_of(astronaut_face, 4), {}, steps=10, steps_max=20)
    assert result["au_frames_detected"] == 4
    assert result["R_F"] == 1.0 and result["R_E"] == pytest.approx(1.0) and np.isnan(result["R_A"])


def test_auditor_with_landmarks_reads_the_smile(cascade: cv2.CascadeClassifier, astronaut_face: np.ndarray) -> None:
    """With the default neutral bounds the astronaut's open-lipped smile shows: AU12 and AU25 active."""
    auditor = VideoAuditor(LandmarkAUBackend(), cascade)
    aus = auditor.aus(video_of(astronaut_face, 4))
    active = {INTENSITY_AUS[i] for i in np.flatnonzero(aus.max(axis=0) >= 1.5)}
    assert active == {12, 25}
    assert auditor.audit(video_of(astronaut_face, 4), {12: 0.5, 25: 0.5}, 10, 20)["R_A"] == 1.0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="alpha"):
        RewardSettings(alpha=1.5)
    with pytest.raises(ValueError, match="face_min_size"):
        RewardSettings(face_min_size=0.0)


def test_first_frame_reference_measures_what_a_generated_clip_added(cascade: cv2.CascadeClassifier) -> None:
    """A clip that starts neutral and holds a jaw drop for most frames: measured against its own first frame
    the drop reads AU26 high; against the clip's least-expressive frames (the default) it would read near 0,
    because most of the clip is the open mouth."""
    from argen.demo.dataset import render_face
    from argen.demo.face import FaceShape
    from argen.demo.render import Appearance

    appearance = Appearance.sample(np.random.default_rng(3))
    neutral = render_face(FaceShape(), appearance, {}, 128)[0]
    open_mouth = render_face(FaceShape(), appearance, {26: 4.0, 25: 3.0}, 128)[0]
    video = np.clip(np.stack([neutral] + [open_mouth] * 7), 0, 255).astype(np.uint8)
    first = VideoAuditor(LandmarkAUBackend(reference="first", smooth_frames=1), cascade).aus(video)
    own = VideoAuditor(LandmarkAUBackend(reference="clip", smooth_frames=1), cascade).aus(video)
    au26 = INTENSITY_AUS.index(26)
    assert first[0, au26] == 0.0 and first[1:, au26].min() > 2.0
    assert own[1:, au26].max() < 1.0

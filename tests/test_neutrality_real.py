"""The absolute neutrality test on real faces and frames synthesised from the astronaut.

Thresholds (params.yaml ``identities``) were measured on local real material (docs/real_faces.md): closed
lips read an inner-lip gap <= 0.025 IOD, slightly parted lips 0.04-0.06; neutral lip corners <= 0.04 IOD
above the lip line, closed-mouth smiles 0.07-0.11.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from argen.demo.face import FaceShape, neutral_landmarks
from argen.face import FaceAnalyzer, face_axes
from argen.identities import corner_lifts, mouth_measures, neutrality_failures
from argen.params import IdentitiesParams


def exposed(image: np.ndarray, stops: float) -> np.ndarray:
    """Exposure changed by ``stops`` in linear light (sRGB approximated by gamma 2.2)."""
    linear = np.clip((image.astype(np.float64) / 255) ** 2.2 * 2.0 ** stops, 0, 1)
    return np.round(linear ** (1 / 2.2) * 255).astype(np.uint8)


def warm(image: np.ndarray) -> np.ndarray:
    """A warm white balance (tungsten-like): red up 25 %, blue down 25 % in linear light."""
    linear = (image.astype(np.float64) / 255) ** 2.2 * np.array([0.75, 1.0, 1.25])  # BGR
    return np.round(np.clip(linear, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)


def closed_smile(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Her teeth painted over with her lips' colour: the smile kept, the mouth closed."""
    out = image.copy()
    lips = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(landmarks[48:60]).astype(np.int32)], 1)
    inner = np.zeros_like(lips)
    cv2.fillPoly(inner, [np.round(landmarks[60:68]).astype(np.int32)], 1)
    colour = np.median(image[(lips > 0) & (inner == 0)], axis=0)
    cv2.fillPoly(out, [np.round(landmarks[60:68]).astype(np.int32)], colour.tolist(), cv2.LINE_AA)
    return out


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    """One set of detectors and landmark predictor for the module (loading the predictor takes seconds)."""
    return FaceAnalyzer()


@pytest.fixture(scope="module")
def astronaut(analyzer: FaceAnalyzer) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    face = analyzer.analyze(image)
    return image, face.landmarks


@pytest.mark.parametrize("variant", ["original", "+1 stop", "-1 stop", "warm"])
def test_astronaut_smile_rejected_under_any_exposure(astronaut, variant: str, analyzer: FaceAnalyzer) -> None:
    image, _ = astronaut
    frame = {"original": image, "+1 stop": exposed(image, 1), "-1 stop": exposed(image, -1), "warm": warm(image)}[variant]
    face = analyzer.analyze(frame)
    failures = neutrality_failures(face.landmarks[None], IdentitiesParams()).iloc[0]
    assert failures["smiling"] and failures["mouth open"] and not failures["eyes closed"]
    assert mouth_measures(frame, face.landmarks)["teeth_share"] > IdentitiesParams().max_teeth_share


def test_painted_closed_mouth_smile_is_still_smiling(astronaut, analyzer: FaceAnalyzer) -> None:
    image, landmarks = astronaut
    painted = closed_smile(image, landmarks)
    face = analyzer.analyze(painted)
    failures = neutrality_failures(face.landmarks[None], IdentitiesParams()).iloc[0]
    assert failures["smiling"], "a closed-mouth smile must be caught by the corners alone"
    assert mouth_measures(painted, face.landmarks)["teeth_share"] < IdentitiesParams().max_teeth_share


def demo_neutral() -> np.ndarray:
    """The demo's mean neutral face as pixel landmarks (68, 2), IOD about 60 px."""
    return neutral_landmarks(FaceShape())[:, :2] * 100 + 200


def test_demo_neutral_face_passes_and_a_smirk_fails() -> None:
    params = IdentitiesParams()
    neutral = demo_neutral()
    assert not neutrality_failures(neutral[None], params).iloc[0].any()
    _, _, down, iod = face_axes(neutral)
    smirk = neutral.copy()
    smirk[[53, 54, 55, 64]] -= 0.09 * iod * down   # one corner raised: the mean lift stays within bounds
    lifts = corner_lifts(smirk[None])[0]
    assert abs(lifts[0] - lifts[1]) == pytest.approx(0.09, abs=0.01)
    failures = neutrality_failures(smirk[None], params).iloc[0]
    assert failures["smirk"] and not failures["smiling"]
    assert not neutrality_failures(smirk[None], params.model_copy(update={"max_corner_asymmetry": 0.1})).iloc[0].any()
    level = neutral.copy()  # both corners raised alike, just under the smile threshold: no smirk
    level[[48, 49, 59, 60, 53, 54, 55, 64]] -= 0.045 * iod * down
    assert not neutrality_failures(level[None], params).iloc[0].any()


def test_slightly_parted_lips_fail() -> None:
    """A 0.045 IOD inner-lip gap (the reviewer's 'parted lips' frames read 0.04-0.06) is not neutral."""
    neutral = demo_neutral()
    _, _, down, iod = face_axes(neutral)
    parted = neutral.copy()
    gap_now = (parted[66] - parted[62]) @ down / iod
    parted[[65, 66, 67]] += (0.045 - gap_now) * iod * down
    parted[[55, 56, 57, 58, 59]] += (0.045 - gap_now) * iod * down
    assert neutrality_failures(parted[None], IdentitiesParams()).iloc[0]["mouth open"]


@pytest.mark.parametrize("variant", ["original", "+1 stop", "-1 stop", "warm", "closed smile"])
def test_astronaut_cues_survive_exposure_and_white_balance(astronaut, variant: str) -> None:
    """Skin and hair read the same whatever the exposure or cast: colours are balanced on her sclera (the warm
    cast alone moved her raw cheek ITA from 66 to 50 degrees, fair to light)."""
    from argen.asi.template import cue_readings, identity_cues

    image, landmarks = astronaut
    frame = {"original": image, "+1 stop": exposed(image, 1), "-1 stop": exposed(image, -1), "warm": warm(image),
             "closed smile": closed_smile(image, landmarks)}[variant]
    readings = {cue.name: cue for cue in cue_readings(frame, landmarks)}
    assert readings["skin"].words == "fair-skinned" and readings["skin"].confidence == 1.0, readings["skin"]
    assert readings["hair"].words in ("light-brown hair", "blond hair")
    cues = identity_cues(frame, landmarks)
    assert cues.startswith("fair-skinned, ") and "glasses" not in cues, cues


def test_under_exposed_skin_tone_is_left_out(astronaut) -> None:
    """Two stops under, her sclera is too dark to trust: no skin tone is said rather than a wrong one."""
    from argen.asi.template import cue_readings, identity_cues

    image, landmarks = astronaut
    dark = exposed(image, -2.5)
    skin = next(cue for cue in cue_readings(dark, landmarks) if cue.name == "skin")
    assert skin.confidence == 0.0
    assert "skin" not in identity_cues(dark, landmarks)

"""The CPU face analysis on a real face: ``skimage.data.astronaut()``, a smiling, fair-skinned woman with
light-brown hair, shipped in the scikit-image wheel.

Identity cues must read her skin and hair from regions placed by her landmarks, her smile must read as
AU12, and she must not be admitted as a neutral identity.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data

from argen.asi.template import CHEEKS, bridge_edge_ratio, hair_colour, identity_cues, skin_tone, wears_glasses
from argen.extract.landmarks import LandmarkAUBackend
from argen.extract.run import quality_figures
from argen.face import FaceAnalyzer, face_axes
from argen.identities import neutrality_failures, select_identities
from argen.params import IdentitiesParams


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray, tuple]:
    """The astronaut as a BGR image, her 68 landmarks and face box."""
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    face = FaceAnalyzer().analyze(image)
    assert face is not None, "dlib finds the astronaut's face"
    return image, face.landmarks, face.box


def lab_colour(lightness: float, a: float, b: float) -> np.ndarray:
    return np.array([lightness, a, b])


@pytest.mark.parametrize(("lab", "words"), [
    (lab_colour(80, 10, 14), "fair-skinned"),      # ITA 65 deg
    (lab_colour(72, 12, 22), "light skin tone"),   # ITA 45 deg
    (lab_colour(62, 12, 20), "medium skin tone"),  # ITA 31 deg
    (lab_colour(45, 14, 22), "dark-skinned"),      # ITA -13 deg
])
def test_skin_tone_follows_the_individual_typology_angle(lab: np.ndarray, words: str) -> None:
    assert skin_tone(lab) == words


@pytest.mark.parametrize(("lab", "words"), [
    (lab_colour(15, 1, 1), "black hair"), (lab_colour(15, 2, 7), "brown hair"),  # dark brown: warm, not black
    (lab_colour(35, 2, 10), "brown hair"), (lab_colour(45, 3, 18), "light-brown hair"),
    (lab_colour(60, 2, 20), "blond hair"), (lab_colour(70, 1, 2), "grey hair"), (lab_colour(92, -20, -6), "grey hair"),
    (lab_colour(33, 6, 16), "red hair"), (lab_colour(20, 8, 16), "dark red hair"),
    (lab_colour(81, 9, 15), "no visible hair"),
])
def test_hair_colour_names(lab: np.ndarray, words: str) -> None:
    assert hair_colour(lab, skin_lab=lab_colour(80, 10, 14)) == words


def test_astronaut_cues_are_fair_skin_and_light_brown_hair(astronaut) -> None:
    image, landmarks, _ = astronaut
    cues = identity_cues(image, landmarks)
    assert cues.startswith("fair-skinned, ") and cues.split(", ")[1] in ("light-brown hair", "blond hair"), cues
    assert "glasses" not in cues


def test_cue_regions_follow_the_landmarks_not_the_framing(astronaut) -> None:
    """Rotated by 90 degrees and shrunk, the same face gives the same cues: regions come from landmarks."""
    image, landmarks, _ = astronaut
    turned = cv2.resize(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), None, fx=0.75, fy=0.75,
                        interpolation=cv2.INTER_AREA)
    height = image.shape[0]
    moved = np.stack([height - 1 - landmarks[:, 1], landmarks[:, 0]], axis=1) * 0.75
    assert identity_cues(turned, moved) == identity_cues(image, landmarks)


def test_cheek_patches_lie_on_the_cheeks(astronaut) -> None:
    """Every corner of each cheek patch is inside the face outline and outside the eyes, nose and mouth."""
    _, landmarks, _ = astronaut
    origin, x_axis, y_axis, iod = face_axes(landmarks)
    outline = np.concatenate([landmarks[0:17], landmarks[26:16:-1]]).astype(np.float32)
    features = [landmarks[idx].astype(np.float32) for idx in (range(36, 42), range(42, 48), [27, 31, 32, 33, 34, 35],
                                                               range(48, 60))]
    for (u0, u1), (v0, v1) in CHEEKS:
        for u in (u0, u1):
            for v in (v0, v1):
                point = tuple(float(c) for c in origin + iod * (u * x_axis + v * y_axis))
                assert cv2.pointPolygonTest(outline, point, False) > 0, (u, v)
                assert all(cv2.pointPolygonTest(f, point, False) < 0 for f in features), (u, v)


def test_hair_is_read_above_the_forehead(astronaut) -> None:
    """With her fringe painted over in skin colour (a bare forehead), the hair is still found higher up."""
    image, landmarks, _ = astronaut
    bare = image.copy()
    brow, chin = landmarks[17:27, 1].mean(), landmarks[8, 1]
    skin = np.median(image[int(landmarks[29, 1]), int(landmarks[2, 0]) + 8:int(landmarks[31, 0]) - 4], axis=0)
    top = int(brow - 0.45 * (chin - brow))  # the usual hairline: a bare forehead up to here
    bare[top:int(brow) - 2, int(landmarks[17, 0]):int(landmarks[26, 0])] = skin
    assert identity_cues(bare, landmarks).split(", ")[1] in ("light-brown hair", "blond hair")


def test_a_glasses_bridge_across_the_nose_reads_as_glasses(astronaut) -> None:
    """Her bare nose bridge is not glasses; a dark bar drawn across it between the eyes (a frame's bridge)
    and two rims around the eyes are."""
    image, landmarks, _ = astronaut
    assert bridge_edge_ratio(image, landmarks) < 5 and not wears_glasses(image, landmarks)
    framed = image.copy()
    left, right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    radius = int(0.3 * np.linalg.norm(right - left))
    for centre in (left, right):
        cv2.circle(framed, tuple(int(c) for c in centre), radius, (30, 30, 30), 2)
    y = int(landmarks[[39, 42], 1].mean())
    cv2.line(framed, (int(left[0]) + radius, y), (int(right[0]) - radius, y), (30, 30, 30), 2)
    assert wears_glasses(framed, landmarks)
    assert identity_cues(framed, landmarks).endswith(", wearing glasses")


def test_hair_outside_the_frame_gives_no_hair_cue(astronaut) -> None:
    image, landmarks, _ = astronaut
    top = int(landmarks[17:27, 1].min()) - 5  # cut just above the brows: the top of the head is gone
    cues = identity_cues(image[top:], landmarks - [0, top])
    assert cues == "fair-skinned", cues


def test_astronaut_smile_reads_as_au12_from_a_single_frame(astronaut) -> None:
    image, _, _ = astronaut
    backend = LandmarkAUBackend()
    rows = backend.finalize(backend.process_clip("astronaut", None, ["astronaut.png"], [image]))
    assert rows.AU12_r.iloc[0] >= 2.0, "a broad smile with no neutral frame to compare must still read AU12"
    assert rows.AU25_r.iloc[0] >= 2.0, "her lips are parted (teeth show)"
    off = LandmarkAUBackend(neutral_bounds=False)
    plain = off.finalize(off.process_clip("astronaut", None, ["astronaut.png"], [image]))
    assert plain.AU12_r.iloc[0] == 0.0, "without the neutral bounds the frame is its own reference"


def test_astronaut_is_not_admitted_as_a_neutral_identity(astronaut) -> None:
    image, landmarks, box = astronaut
    failures = neutrality_failures(landmarks[None], IdentitiesParams())
    assert failures.loc[0, "smiling"] and failures.loc[0, "mouth open"] and not failures.loc[0, "eyes closed"]

    sharpness, brightness, contrast = quality_figures(image)
    row = {"clip_id": "astronaut", "frame": 0, "frame_file": "astronaut.png", "success": True,
           "face_x": box[0], "face_y": box[1], "face_w": box[2], "face_h": box[3], "sharpness": sharpness,
           "brightness": brightness, "contrast": contrast, "img_w": image.shape[1], "img_h": image.shape[0]}
    row.update({f"x_{k}": landmarks[k, 0] for k in range(68)} | {f"y_{k}": landmarks[k, 1] for k in range(68)})
    row.update({c: 0.0 for c in ("AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r",
                                 "AU12_r", "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r",
                                 "AU45_r")})
    sources = pd.DataFrame({"clip_id": ["astronaut"], "subject": ["s"], "label": ["neutral"], "frames_dir": ["."]})
    selected, rejected = select_identities(pd.DataFrame([row]), sources, IdentitiesParams())
    assert selected.empty
    assert "1 mouth open" in rejected.reason.iloc[0] and "1 smiling" in rejected.reason.iloc[0]
    admitted, _ = select_identities(pd.DataFrame([row]), sources, IdentitiesParams(neutral_check=False))
    assert len(admitted) == 1, "the quality checks alone admit her: the neutrality check is what rejects"

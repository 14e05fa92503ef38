"""The hair cue on frames synthesised from ``skimage.data.astronaut()``: her hair recoloured, her background
changed, her head made bald. Each case is one the cue got wrong on real photographs (docs/real_faces.md):
dark brown read as black, white read as blond, auburn read as brown, a lit scalp read as blond, a bright
background above a short-haired head read as the hair."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from argen.asi.template import cue_readings
from argen.face import FaceAnalyzer


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Her BGR image, 68 landmarks and a mask of her hair above the brows: warm, chromatic pixels against the
    grey background that are not skin-coloured."""
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    landmarks = FaceAnalyzer().analyze(image).landmarks.astype(float)
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)
    rows, cols = np.mgrid[:image.shape[0], :image.shape[1]]
    row = int(landmarks[29, 1])
    skin = np.median(lab[row - 3:row + 3, int(landmarks[2, 0]) + 8:int(landmarks[31, 0]) - 4].reshape(-1, 3), axis=0)
    hair = ((rows < landmarks[17:27, 1].min() - 3) & (cols > landmarks[0, 0] - 40) & (cols < landmarks[16, 0] + 40)
            & (np.hypot(lab[..., 1], lab[..., 2]) > 12) & (np.linalg.norm(lab - skin, axis=-1) > 12))
    hair = cv2.morphologyEx(hair.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    assert 4000 < hair.sum() < 12000, hair.sum()
    return image, landmarks, hair


def recoloured(image: np.ndarray, mask: np.ndarray, lab_target: tuple[float, float, float],
               texture: float = 0.6) -> np.ndarray:
    """``image`` with the ``mask`` pixels set to a CIELAB colour, keeping ``texture`` of their lightness detail."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)
    lightness = lab[..., 0][mask]
    lab[..., 0][mask] = np.clip(lab_target[0] + texture * (lightness - np.median(lightness)), 0, 100)
    lab[..., 1][mask], lab[..., 2][mask] = lab_target[1], lab_target[2]
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR) * 255 + 0.5, 0, 255).astype(np.uint8)


def hair_reading(image: np.ndarray, landmarks: np.ndarray):
    return next(cue for cue in cue_readings(image, landmarks) if cue.name == "hair")


@pytest.mark.parametrize(("lab_target", "words"), [
    ((22, 6, 14), "brown hair"),   # dark brown: as dark as black hair, but warm
    ((12, 0.5, 0.5), "black hair"),
    ((85, 0, 4), "grey hair"),     # white hair under a slightly warm light (read as blond before)
    ((35, 22, 28), "red hair"),    # auburn (read as brown before)
    ((70, 4, 30), "blond hair"),
])
def test_recoloured_hair_is_named_by_lightness_and_hue(astronaut, lab_target, words: str) -> None:
    image, landmarks, hair = astronaut
    reading = hair_reading(recoloured(image, hair, lab_target), landmarks)
    assert reading.words == words and reading.confidence >= 0.5, reading


@pytest.mark.parametrize("background_bgr", [(255, 255, 255), (200, 60, 20), (20, 20, 20)])
def test_the_background_does_not_leak_into_the_hair(astronaut, background_bgr) -> None:
    """A white, a saturated blue or a black backdrop where her grey one was: the hair reads the same."""
    image, landmarks, hair = astronaut
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(float)
    top = int(landmarks[8, 1])  # her backdrop: grey (low chroma), light, above the chin, off her head
    head = cv2.dilate(hair.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    cv2.fillConvexPoly(head := head.astype(np.uint8), cv2.convexHull(landmarks.astype(np.int32)), 1)
    backdrop = (np.hypot(lab[..., 1] - 128, lab[..., 2] - 128) < 8) & (lab[..., 0] > 150) & ~head.astype(bool)
    backdrop[top:] = False
    changed = image.copy()
    changed[backdrop] = background_bgr
    before, after = hair_reading(image, landmarks), hair_reading(changed, landmarks)
    assert after.words == before.words and after.confidence >= 0.5, (before, after)


def test_a_lit_bald_scalp_is_no_visible_hair(astronaut) -> None:
    """Her hair painted with her forehead's skin, lit up to 10 % brighter towards the crown with a specular highlight
    (a bald head under studio light, read as blond hair before): no visible hair."""
    image, landmarks, hair = astronaut
    row = int(landmarks[29, 1])
    skin = np.median(image[row - 3:row + 3, int(landmarks[2, 0]) + 8:int(landmarks[31, 0]) - 4].reshape(-1, 3), axis=0)
    bald = image.copy()
    rows = np.nonzero(hair)[0]
    light = 1.0 + 0.1 * (rows.max() - rows) / (rows.max() - rows.min())  # brighter towards the crown
    bald[hair] = np.clip(skin * light[:, None], 0, 255)
    crown = (int(landmarks[27, 0]), int(rows.min() + 0.3 * (rows.max() - rows.min())))
    cv2.ellipse(bald, crown, (14, 6), 0, 0, 360, (235, 240, 245), -1)
    reading = hair_reading(bald, landmarks)
    assert reading.words == "no visible hair", reading


@pytest.mark.parametrize("background_bgr", [(255, 255, 255), (235, 235, 240)])
def test_short_hair_under_a_bright_backdrop_reads_the_hair(astronaut, background_bgr) -> None:
    """Her hair cut short (everything above 0.5 face heights over the brows becomes backdrop, as on a
    short-haired man against a window): the skull ellipse then overshoots the head, and the backdrop inside it
    must not be read as hair (the short-haired portraits of the photographs read as grey or blond before)."""
    image, landmarks, hair = astronaut
    brow, chin = landmarks[17:27, 1].mean(), landmarks[8, 1]
    cut = image.copy()
    rows = np.arange(image.shape[0])[:, None]
    above = hair | ((rows < brow) & (np.abs(np.arange(image.shape[1])[None] - landmarks[27, 0]) < 0.8 * (chin - brow)))
    cut[above & (rows < brow - 0.5 * (chin - brow))] = background_bgr
    before, after = hair_reading(image, landmarks), hair_reading(cut, landmarks)
    assert after.words == before.words and after.confidence >= 0.5, (before, after)


def test_backdrop_is_found_beside_the_head_when_the_frame_cuts_its_top(astronaut) -> None:
    """Her hair cut to 0.45 face heights over the brows under a white backdrop, in a frame cut 0.75 face
    heights over her brows (as the demo's 128 px frames and many portraits are): no backdrop is left above
    the head, so it is sampled beside it. The reading stays her light-brown/blond (she sits on that boundary,
    so it may be left out as unsure); sampled only above the head, no backdrop was found and the white inside
    the skull read as grey hair, sure."""
    image, landmarks, hair = astronaut
    brow, chin = landmarks[17:27, 1].mean(), landmarks[8, 1]
    cut = image.copy()
    rows = np.arange(image.shape[0])[:, None]
    above = hair | ((rows < brow) & (np.abs(np.arange(image.shape[1])[None] - landmarks[27, 0]) < 0.8 * (chin - brow)))
    cut[above & (rows < brow - 0.45 * (chin - brow))] = (255, 255, 255)
    top = int(brow - 0.75 * (chin - brow))
    reading = hair_reading(cut[top:], landmarks - [0, top])
    assert reading.words in ("light-brown hair", "blond hair"), reading

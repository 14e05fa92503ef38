"""The ``template`` prompt backend: no model, deterministic given its seed.

Identity cues come from simple image analysis of the identity frame and its face box:

* skin tone: CIELAB lightness of the cheek area (fair, medium, dark);
* hair: the band above the face box; dark, brown, blond, grey or red by lightness, saturation and hue,
  "no visible hair" when it looks like skin;
* glasses: OpenCV's eyeglasses eye cascade finds eyes in the eye band that the plain eye cascade misses.
  A coarse cue; the VLM backend reads it from the image.

The sentence follows figure 4's format. With retrieval (``vlm_rag``) the AUs are those of the retrieved
entries, strongest first; without (``vlm_only``) they are drawn from the AUs Facial-R1's Table 11
associates with the emotion, as a model with generic knowledge but no knowledge base would cite them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from argen.asi.facs import FacsTable
from argen.asi.kb import au_phrase


@functools.lru_cache(maxsize=1)
def _eye_cascades() -> tuple[cv2.CascadeClassifier, cv2.CascadeClassifier]:
    base = Path(cv2.data.haarcascades)
    return (cv2.CascadeClassifier(str(base / "haarcascade_eye.xml")),
            cv2.CascadeClassifier(str(base / "haarcascade_eye_tree_eyeglasses.xml")))


def identity_cues(image: np.ndarray, box: tuple[float, float, float, float]) -> str:
    """Identity cues of a BGR frame with its face box (x, y, w, h), e.g. ``medium skin tone, dark hair``."""
    x, y, w, h = (int(round(v)) for v in box)
    height, width = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(float)
    cheeks = lab[max(0, y + h // 2):min(height, y + 3 * h // 4), max(0, x + w // 5):min(width, x + 4 * w // 5)]
    skin_l = float(cheeks[..., 0].mean()) * 100 / 255 if cheeks.size else 50.0
    skin = "fair-skinned" if skin_l > 68 else ("dark-skinned" if skin_l < 45 else "medium skin tone")

    band = image[max(0, y - h // 4):max(1, y + h // 10), max(0, x + w // 6):min(width, x + 5 * w // 6)]
    hair = "no visible hair"
    if band.size:
        band_lab = cv2.cvtColor(band, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(float)
        hsv = cv2.cvtColor(band, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(float)
        lightness, saturation, hue = band_lab[:, 0].mean() * 100 / 255, hsv[:, 1].mean(), np.median(hsv[:, 0])
        skin_lab = cheeks.reshape(-1, 3).mean(axis=0) if cheeks.size else band_lab.mean(axis=0)
        if np.linalg.norm(band_lab.mean(axis=0) - skin_lab) >= 18:
            if lightness < 28:
                hair = "dark hair"
            elif saturation < 45 and lightness > 55:
                hair = "grey hair"
            elif (hue < 12 or hue > 170) and saturation > 110:
                hair = "red hair"
            elif lightness > 60:
                hair = "blond hair"
            else:
                hair = "brown hair"
    cues = [skin, hair]
    plain, glasses = _eye_cascades()
    eyes = cv2.cvtColor(image[max(0, y):min(height, y + h // 2), max(0, x):min(width, x + w)], cv2.COLOR_BGR2GRAY)
    if eyes.size:
        found_plain = len(plain.detectMultiScale(eyes, 1.1, 4))
        found_glasses = len(glasses.detectMultiScale(eyes, 1.1, 4))
        if found_glasses > found_plain:
            cues.append("wearing glasses")
    return ", ".join(cues)


def compose_line(cues: str, emotion: str, aus: dict[int, float], facs: FacsTable) -> str:
    """Figure 4's sentence: ``Identity: cues; Expression: emotion; phrase (AUxx), ...``."""
    changes = ", ".join(au_phrase(au, r, facs) for au, r in aus.items())
    return f"Identity: {cues}; Expression: {emotion}; {changes}."


def template_aus(emotion: str, retrieved: list[dict[int, float]], facs: FacsTable, rng: np.random.Generator,
                 max_aus: int) -> dict[int, float]:
    """The AUs a template prompt cites, strongest first (module docstring)."""
    if retrieved:
        merged: dict[int, float] = {}
        for entry in retrieved:
            for au, r in entry.items():
                merged[au] = max(r, merged.get(au, 0.0))
        chosen = sorted(merged, key=lambda au: (-merged[au], au))[:max_aus]
        return {au: merged[au] for au in chosen}
    pool = facs.associated_aus(emotion)
    size = min(len(pool), int(rng.integers(2, 4)))
    chosen = sorted(int(a) for a in rng.choice(pool, size=size, replace=False))
    return {au: float(rng.uniform(0.3, 0.8)) for au in chosen}

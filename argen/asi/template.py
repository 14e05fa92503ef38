"""The ``template`` prompt backend: no model, deterministic given its seed.

Identity cues come from image analysis of the identity frame at regions placed by its 68 landmarks, in
the face frame of :func:`argen.face.face_axes` (IOD units, origin between the eyes, y down the face), so
they follow the head's position, size and roll whatever the framing:

* **skin tone**: median CIELAB colour of two cheek patches beside the nose (u = ±0.45..0.7, v = 0.3..0.55,
  between the lower eyelid and the nose wing), read as the Individual Typology Angle
  ITA = atan((L* − 50) / b*), the dermatological skin-colour scale (Chardon et al. 1991: > 55° very light,
  41–55° light, 28–41° intermediate, 10–28° tan, < 10° brown or dark). Here > 55° is ``fair-skinned``,
  41–55° ``light skin tone``, 10–41° ``medium skin tone``, ≤ 10° ``dark-skinned``. ITA reads exposure
  too: on under-exposed webcam frames (OpenFace's sample videos, cheeks at L* 28–50) fair faces read
  medium or dark. Where skin tone matters, use well-lit identity frames (``identities.min_brightness``)
  or the VLM backend.
* **hair**: a column between the inner brow ends, read upwards from just above the brows (face height:
  brow line to chin; on an adult the hairline sits about 0.45 face heights above the brows, the crown
  about 0.85). The first stretch that does not look like the cheeks' skin (CIELAB ΔE ≥ 14) is the hair,
  whether a fringe or a high hairline; skin up to 0.7 face heights is ``no visible hair``; a column that
  leaves the frame first gives no hair cue at all (nothing is guessed). Colour names by L* and chroma,
  after the sclera white balance: grey (C* < 10, L* > 50), red (a* > 15 and a* > 0.6 b*; dark red below
  L* 25), black (L* < 25), brown (L* < 42), light-brown (L* < 52), blond (the blonde woman of OpenFace's
  and fer's sample video reads L* 55-58 once balanced, the astronaut's light-brown fringe 50).
* **glasses**: the bridge of a pair of glasses crosses the nose between the inner eye corners as a
  horizontal edge that bare skin lacks; its strength over the cheek's edge strength (:func:`bridge_edge_ratio`)
  above 7 reads ``wearing glasses``. The patch stays below the brows (v from -0.15 IOD): reaching up to
  -0.25 it caught low, close brows, and called 3 of the demo's 104 faces without glasses "wearing glasses"
  (ratios 9.7-12.8); now those read at most 6.0, while 11 of the 16 with glasses read above 7. On real
  faces the ratio is 1.6-4.0 without glasses and 21-23 with dark frames. Thin rimless frames are missed.

The thresholds were checked on ``skimage.data.astronaut()`` (a real face: cheeks ITA 66°, fringe L* 50,
a light-brown blonde), on two well-lit talking-head videos (cheeks ITA 64° and 50°) and on the demo's
rendered skin tones and hair colours.

The sentence follows figure 4's format. With retrieval (``vlm_rag``) the AUs are those of the retrieved
entries, strongest first; without (``vlm_only``) they are drawn from the AUs Facial-R1's Table 11
associates with the emotion, as a model with generic knowledge but no knowledge base would cite them.
"""

from __future__ import annotations


from dataclasses import dataclass

import cv2
import numpy as np

from argen.asi.facs import FacsTable
from argen.asi.kb import au_phrase
from argen.face import face_axes, face_patch

#: Cheek patches (u range, v range) in the face frame: beside the nose, below the eyes.
CHEEKS: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = (((-0.7, -0.45), (0.3, 0.55)),
                                                                       ((0.45, 0.7), (0.3, 0.55)))
#: The column searched for hair: from and to this many face heights (brow line to chin) above the brows.
HAIR_SCAN: tuple[float, float] = (0.1, 1.0)
#: Rows the column is resampled to (0.025 face heights each), and the non-skin rows that make a hair sample.
HAIR_SCAN_ROWS, HAIR_SAMPLE_ROWS = 36, 6
#: Skin up to this many face heights above the brows is a head without hair (the crown is at about 0.85).
BALD_ABOVE = 0.7
#: The nose-bridge patch searched for a glasses bridge, and the edge ratio above which glasses are worn.
GLASSES_BRIDGE: tuple[tuple[float, float], tuple[float, float]] = ((-0.2, 0.2), (-0.15, 0.15))
GLASSES_EDGE_RATIO = 7.0
#: Edge ratio of no confidence in glasses (the demo's faces without glasses reach 6.0); full at twice as far.
GLASSES_UNSURE_RATIO = 6.0
#: Share of clipped (>= 250) cheek pixels beyond which the glasses reading is not trusted (over-exposure).
MAX_CLIPPED_CHEEK = 0.25
#: CIELAB distance from the cheeks' colour beyond which a region is not skin.
SKIN_DELTA_E = 14.0
#: The sclera: the brightest quarter of the pixels inside the eye outlines, in linear light. Fewer pixels than
#: SCLERA_MIN_PIXELS, or a mean level below SCLERA_MIN_LEVEL (an under-exposed face), and no skin tone is said.
SCLERA_QUANTILE, SCLERA_MIN_PIXELS, SCLERA_MIN_LEVEL = 0.75, 12, 0.2
#: Hair is read with the sclera brought to this level (linear light), so that exposure does not move its name.
SCLERA_REFERENCE = 0.4
#: White-balance gains are clipped to this range (a coloured sclera reading must not paint the face).
GAIN_RANGE = (0.5, 2.0)
#: ITA class boundaries (degrees) and the margin from the nearest one at which a skin-tone reading is sure.
ITA_BOUNDARIES, ITA_MARGIN = (55.0, 41.0, 10.0), 4.0
#: Hair-lightness boundaries (L*: black/brown, brown/light-brown, light-brown/blond) and the sure margin.
HAIR_L_BOUNDARIES, HAIR_L_MARGIN = (25.0, 42.0, 52.0), 3.0
#: A cue below this confidence is left out of the prompt.
MIN_CONFIDENCE = 0.5


def _median_lab(patch: np.ndarray, inside: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """Median CIELAB colour (L* 0-100, a*, b*) of the pixels of a BGR patch that lie inside the image, after
    per-channel white-balance ``gains`` (BGR, in linear light) when given."""
    pixels = patch.reshape(-1, 1, 3)[inside.ravel()].astype(np.float32) / 255.0
    if gains is not None:
        pixels = np.clip(pixels ** 2.2 * gains.astype(np.float32), 0.0, 1.0) ** (1 / 2.2)
    return np.median(cv2.cvtColor(pixels, cv2.COLOR_BGR2LAB).reshape(-1, 3), axis=0)


@dataclass(frozen=True)
class Cue:
    """One identity cue: its words, how sure the reading is (0-1) and the figure it was read from."""

    name: str
    words: str
    confidence: float
    figure: float


def sclera_white(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, int]:
    """The sclera's colour (BGR, linear light, 0-1) and the number of pixels it was read from.

    The brightest quarter (:data:`SCLERA_QUANTILE`) of the pixels inside both eye outlines (36-41, 42-47)
    is the white of the eye; their median is the frame's white reference.
    """
    pixels = []
    for eye in (slice(36, 42), slice(42, 48)):
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(landmarks[eye]).astype(np.int32)], 1)
        inside = (image[mask > 0].astype(np.float64) / 255.0) ** 2.2
        if len(inside):
            level = inside.mean(axis=1)
            pixels.append(inside[level >= np.quantile(level, SCLERA_QUANTILE)])
    pixels = np.concatenate(pixels) if pixels else np.zeros((0, 3))
    return (np.median(pixels, axis=0) if len(pixels) else np.full(3, np.nan)), len(pixels)


def white_balance(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Per-channel gains (BGR, linear light) that make the sclera grey at its own level, the sclera's level
    (mean linear value) and its pixel count. Gains are clipped to :data:`GAIN_RANGE`; none (ones) when the
    sclera was not found."""
    white, count = sclera_white(image, landmarks)
    if count == 0 or not np.all(white > 0):
        return np.ones(3), 0.0, count
    level = float(white.mean())
    return np.clip(level / white, *GAIN_RANGE), level, count


def _boundary_confidence(value: float, boundaries: tuple[float, ...], margin: float) -> float:
    """1 at ``margin`` or more from the nearest class boundary, falling linearly to 0 on it."""
    return float(np.clip(min(abs(value - b) for b in boundaries) / margin, 0.0, 1.0))


def skin_tone(cheek_lab: np.ndarray) -> str:
    """Skin-tone words from the cheeks' CIELAB colour through the Individual Typology Angle."""
    lightness, b = float(cheek_lab[0]), float(cheek_lab[2])
    ita = np.degrees(np.arctan2(lightness - 50.0, b))
    if ita > 55:
        return "fair-skinned"
    if ita > 41:
        return "light skin tone"
    return "medium skin tone" if ita > 10 else "dark-skinned"


def hair_colour(hair_lab: np.ndarray, skin_lab: np.ndarray) -> str:
    """Hair words from the hair band's CIELAB colour, or ``no visible hair`` when the band looks like skin."""
    if np.linalg.norm(hair_lab - skin_lab) < SKIN_DELTA_E:
        return "no visible hair"
    lightness, a, b = (float(v) for v in hair_lab)
    if np.hypot(a, b) < 10 and lightness > 50:
        return "grey hair"
    if a > 15 and a > 0.6 * b:
        return "red hair" if lightness >= 25 else "dark red hair"
    if lightness < 25:
        return "black hair"
    if lightness < 42:
        return "brown hair"
    return "light-brown hair" if lightness < 52 else "blond hair"


def bridge_edge_ratio(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Strongest horizontal edge on the nose bridge between the eyes, over the cheek's mean edge strength.

    The bridge of a pair of glasses crosses the nose between the inner eye corners as a horizontal line;
    bare skin there has no such edge. The cheek patch normalises for image sharpness and noise.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)

    def vertical_gradient(u_range: tuple[float, float], v_range: tuple[float, float]) -> np.ndarray:
        patch, _ = face_patch(grey, landmarks, u_range, v_range, size=24)
        return np.abs(cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3))[2:-2, 2:-2]

    bridge = vertical_gradient(*GLASSES_BRIDGE).mean(axis=1).max()
    return float(bridge / (vertical_gradient(*CHEEKS[0]).mean() + 1.0))


def wears_glasses(image: np.ndarray, landmarks: np.ndarray) -> bool:
    """Glasses: a strong horizontal edge across the nose bridge (:func:`bridge_edge_ratio`)."""
    return bridge_edge_ratio(image, landmarks) > GLASSES_EDGE_RATIO


def hair_cue(image: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray,
             gains: np.ndarray | None = None) -> tuple[str, np.ndarray | None] | None:
    """Hair words from the column above the brows (module docstring), or None when too little is in frame.

    Rows of the column are read upwards from just above the brows: the first stretch of at least
    :data:`HAIR_SAMPLE_ROWS` rows that does not look like skin is the hair (shorter ones are the brows).
    Skin all the way up to :data:`BALD_ABOVE` face heights means no hair; a column that leaves the frame
    before either is decided gives no cue. Colours are read after the white-balance ``gains``.

    Returns:
        (words, the hair's CIELAB colour or None for no visible hair), or None.
    """
    origin, x_axis, y_axis, iod = face_axes(landmarks)
    u, v = (landmarks - origin) @ x_axis / iod, (landmarks - origin) @ y_axis / iod
    brow_line = float(v[17:27].mean())
    face_height = float(v[8]) - brow_line
    rows = HAIR_SCAN_ROWS
    column, inside = face_patch(image, landmarks, (float(u[19]), float(u[24])),
                                (brow_line - HAIR_SCAN[1] * face_height, brow_line - HAIR_SCAN[0] * face_height),
                                size=rows)
    heights = np.linspace(HAIR_SCAN[1], HAIR_SCAN[0], rows)  # face heights above the brow line, top row first
    balanced = column.astype(np.float32) / 255.0
    if gains is not None:
        balanced = np.clip(balanced ** 2.2 * gains.astype(np.float32), 0.0, 1.0) ** (1 / 2.2)
    lab = cv2.cvtColor(balanced, cv2.COLOR_BGR2LAB)
    run = 0  # consecutive non-skin rows so far: a shorter stretch followed by skin is the brows
    for row in range(rows - 1, -1, -1):  # upwards from the brows
        if inside[row].mean() < 0.5:
            return None
        skin_like = np.linalg.norm(np.median(lab[row][inside[row]], axis=0) - skin_lab) < SKIN_DELTA_E
        run = 0 if skin_like else run + 1
        if run == HAIR_SAMPLE_ROWS:
            hair_lab = _median_lab(column[row:row + run], inside[row:row + run], gains)
            return hair_colour(hair_lab, skin_lab), hair_lab
        if skin_like and heights[row] >= BALD_ABOVE:
            return "no visible hair", None
    return None


def cue_readings(image: np.ndarray, landmarks: np.ndarray) -> list[Cue]:
    """Every identity cue of a BGR frame from its 68 landmarks, each with its confidence (module docstring).

    Colours are read after a white balance on the sclera (:func:`white_balance`), so a warm or cool cast
    moves neither skin tone nor hair. Skin tone is the ITA of the balanced cheeks; its confidence is 0 when
    the sclera is too dark or too small to trust (an under-exposed face: ITA would read exposure, not skin)
    and otherwise grows with the distance from the nearest ITA boundary. Hair is read with the exposure
    also normalised (the sclera at :data:`SCLERA_REFERENCE`); names by L* are as sure as their distance
    from the nearest lightness boundary; grey, red and no visible hair are sure readings.
    """
    landmarks = np.asarray(landmarks, dtype=float).reshape(68, 2)
    gains, level, count = white_balance(image, landmarks)
    cheeks = [face_patch(image, landmarks, u, v) for u, v in CHEEKS]
    patch, inside = np.concatenate([p for p, _ in cheeks]), np.concatenate([m for _, m in cheeks])
    skin_lab = _median_lab(patch, inside, gains)
    ita = float(np.degrees(np.arctan2(skin_lab[0] - 50.0, skin_lab[2])))
    exposed_well = count >= SCLERA_MIN_PIXELS and level >= SCLERA_MIN_LEVEL
    cues = [Cue("skin", skin_tone(skin_lab), _boundary_confidence(ita, ITA_BOUNDARIES, ITA_MARGIN) * exposed_well,
                round(ita, 2))]

    exposure = SCLERA_REFERENCE / level if exposed_well else 1.0
    hair = hair_cue(image, landmarks, _median_lab(patch, inside, gains * exposure), gains * exposure)
    if hair is not None:
        words, hair_lab = hair
        sure = words in ("no visible hair", "grey hair", "red hair", "dark red hair") or hair_lab is None
        confidence = 1.0 if sure else _boundary_confidence(float(hair_lab[0]), HAIR_L_BOUNDARIES, HAIR_L_MARGIN)
        cues.append(Cue("hair", words, confidence, round(float(hair_lab[0]), 2) if hair_lab is not None else float("nan")))

    ratio = bridge_edge_ratio(image, landmarks)
    if ratio > GLASSES_EDGE_RATIO:
        sure = (ratio - GLASSES_UNSURE_RATIO) / (2 * (GLASSES_EDGE_RATIO - GLASSES_UNSURE_RATIO))
        clipped = float((patch.reshape(-1, 3)[inside.ravel()].max(axis=1) >= 250).mean())
        sure *= clipped <= MAX_CLIPPED_CHEEK  # a blown-out cheek has no edges to compare the bridge with
        cues.append(Cue("glasses", "wearing glasses", float(np.clip(sure, 0.0, 1.0)), round(ratio, 2)))
    return cues


def identity_cues(image: np.ndarray, landmarks: np.ndarray) -> str:
    """Identity cues of a BGR frame from its 68 landmarks (68, 2), e.g. ``fair-skinned, light-brown hair``:
    the readings of :func:`cue_readings` with confidence at least :data:`MIN_CONFIDENCE`, or ``a person``
    when none is sure."""
    sure = [cue.words for cue in cue_readings(image, landmarks) if cue.confidence >= MIN_CONFIDENCE]
    return ", ".join(sure) if sure else "a person"


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

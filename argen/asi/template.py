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
* **hair**: the skull above the brows, an ellipse centred on the brow line (half width 1.15 IOD, reaching 0.9 face
  heights up: brow line to chin; the crown sits about 0.85 up), read from 0.3 face heights above the brows (above
  most hairlines). Each pixel there is skin-like (near the cheeks' colour, lightness weighted half: a lit scalp is
  lighter, not redder), background-like (near a pixel of the backdrop sampled beyond 1.3 skull radii, from 0.8
  face heights above the brows upwards, or from lower down to 0.4 where the frame cuts the top of the head: on a
  short-haired head the ellipse overshoots into the backdrop) or hair. A skull 70 % skin-like is ``no visible
  hair``; hair on less than 15 % of it gives no cue; a skull less than 60 % in frame gives no cue (nothing is
  guessed; portraits often crop the crown). The hair's colour is its pixels' median after the sclera white
  balance, named by hue and lightness: black (b* < 4.5, L* < 25) and grey (b* < 4.5, L* >= 45) are neutral, dark
  brown is as dark as black but warm; red has a*/b* >= 0.3 and chroma >= 15 below L* 40; warm hair is otherwise
  brown (L* < 40), light-brown (< 47) or blond. The confidence is the distance from the nearest boundary the name
  depends on; a neutral middle lightness (dark grey: black or brown?) is unsure. A narrow column between the
  brows, read upwards to the first non-skin stretch and named by lightness alone, was right on 40 % of 73 stated
  readings of 82 photographs (docs/real_faces.md): it read partings, headbands and lit scalps, and dark brown as
  black.
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
#: The head patch read for hair: half its width (IOD), how far above the brows it reaches (face heights: brow
#: line to chin), and its size in pixels (a square, down to the nose).
HAIR_HALF_WIDTH, HAIR_ABOVE, HAIR_PATCH_SIZE = 1.8, 1.1, 96
#: The skull ellipse centred on the brow line: half width (IOD) and height (face heights; the crown is at
#: about 0.85); hair is read inside it from this many face heights above the brow line.
SKULL_HALF_WIDTH, SKULL_HEIGHT, BROW_CLEARANCE = 1.15, 0.9, 0.3
#: Share of the skull that must be in frame for a hair cue; beyond this many skull radii is background.
SKULL_IN_FRAME, BACKGROUND_RADIUS = 0.6, 1.3
#: The backdrop is sampled from this many face heights above the brows upwards (long hair hangs beside the face);
#: where the frame cuts the top of the head, lower until BACKGROUND_MIN_PIXELS are found, but not below
#: BACKGROUND_LOWEST face heights above the brows.
BACKGROUND_ABOVE, BACKGROUND_LOWEST, BACKGROUND_MIN_PIXELS = 0.8, 0.4, 300
#: Background pixels compared with each skull pixel, and the CIELAB distance within which it is background.
BACKGROUND_SAMPLES, BACKGROUND_DELTA_E = 200, 8.0
#: A skull at least this share skin-like is a head without visible hair.
BALD_SHARE = 0.7
#: Lightness weight and CIELAB distance of the skin test of skull pixels (a lit scalp is lighter than the
#: cheeks, not redder; fair blond hair differs from fair skin by 10-14).
SKIN_L_WEIGHT, SCALP_DELTA_E = 0.5, 10.0
#: Below this share of the skull told apart from skin and background, no hair cue (unsure).
MIN_HAIR_SHARE = 0.15
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
#: Hair-lightness boundaries (L*: black/dark brown, brown/light-brown, light-brown/blond), the lightness from
#: which neutral hair is grey, and the sure margin in L*.
HAIR_L_BOUNDARIES, GREY_FROM, HAIR_L_MARGIN = (25.0, 40.0, 47.0), 45.0, 3.0
#: Hair with b* below this is neutral (black or grey; brown hair is warm), and the sure margin in b*.
HAIR_NEUTRAL_B, HAIR_B_MARGIN = 4.5, 1.5
#: Red hair: a* at least this share of b* (margin in a*/b*), with CIELAB chroma at least RED_MIN_CHROMA.
RED_HUE_RATIO, RED_RATIO_MARGIN, RED_MIN_CHROMA = 0.3, 0.05, 15.0
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
    """Hair words from the hair's balanced CIELAB colour, or ``no visible hair`` when it looks like skin.

    Black and grey are neutral (b* below :data:`HAIR_NEUTRAL_B`): dark brown hair is as dark as black but
    warm, so lightness alone read 15 of 34 brown heads as black. Red is warm with a red hue (a*/b* at least
    :data:`RED_HUE_RATIO`, chroma at least :data:`RED_MIN_CHROMA`) and darker than :data:`HAIR_L_BOUNDARIES`'
    light-brown; warm hair is otherwise named by lightness: brown, light-brown, blond.
    """
    if np.linalg.norm(hair_lab - skin_lab) < SKIN_DELTA_E:
        return "no visible hair"
    lightness, a, b = (float(v) for v in hair_lab)
    black_below, light_from, blond_from = HAIR_L_BOUNDARIES
    if b < HAIR_NEUTRAL_B:
        if lightness < black_below:
            return "black hair"
        if lightness >= GREY_FROM:
            return "grey hair"
    elif np.hypot(a, b) >= RED_MIN_CHROMA and a >= RED_HUE_RATIO * b and lightness < light_from:
        return "red hair" if lightness >= black_below else "dark red hair"
    if lightness < light_from:
        return "brown hair"
    return "light-brown hair" if lightness < blond_from else "blond hair"


def hair_confidence(hair_lab: np.ndarray) -> float:
    """How sure a hair name is: its distance from the nearest boundary its name depends on, 1 at the margin
    (:data:`HAIR_L_MARGIN` in L*, :data:`HAIR_B_MARGIN` in b*, :data:`RED_RATIO_MARGIN` in a*/b*) or beyond.
    A neutral colour of middle lightness (neither black nor grey, not warm enough for brown) is not sure."""
    lightness, a, b = (float(v) for v in hair_lab)
    black_below, light_from, blond_from = HAIR_L_BOUNDARIES
    hue = _boundary_confidence(b, (HAIR_NEUTRAL_B,), HAIR_B_MARGIN)
    if b < HAIR_NEUTRAL_B:
        if black_below <= lightness < GREY_FROM:
            return 0.0
        return min(hue, _boundary_confidence(lightness, (black_below, GREY_FROM), HAIR_L_MARGIN))
    red = _boundary_confidence(a / b, (RED_HUE_RATIO,), RED_RATIO_MARGIN) if np.hypot(a, b) >= RED_MIN_CHROMA else 1.0
    return min(hue, red, _boundary_confidence(lightness, (light_from, blond_from), HAIR_L_MARGIN))


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


def hair_region(image: np.ndarray, landmarks: np.ndarray, gains: np.ndarray | None = None,
                size: int = HAIR_PATCH_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The skull above the brows and the background beside and above the head (module docstring).

    Returns (the head patch in CIELAB after the white-balance ``gains``, the skull mask: the ellipse above the
    brows where hair grows, the background mask: beyond :data:`BACKGROUND_RADIUS` skull radii and above the
    brows), or None when less than :data:`SKULL_IN_FRAME` of the skull is in frame.
    """
    origin, x_axis, y_axis, iod = face_axes(landmarks)
    u, v = (landmarks - origin) @ x_axis / iod, (landmarks - origin) @ y_axis / iod
    brow_line = float(v[17:27].mean())
    face_height = float(v[8]) - brow_line
    (u0, u1), (v0, v1) = (-HAIR_HALF_WIDTH, HAIR_HALF_WIDTH), (brow_line - HAIR_ABOVE * face_height, brow_line)
    patch, inside = face_patch(image, landmarks, (u0, u1), (v0, v1), size=size)
    pu, pv = np.meshgrid(u0 + (np.arange(size) + 0.5) * (u1 - u0) / size,
                         v0 + (np.arange(size) + 0.5) * (v1 - v0) / size)
    radius = np.hypot(pu / SKULL_HALF_WIDTH, (pv - brow_line) / (SKULL_HEIGHT * face_height))
    skull = (radius <= 1.0) & (pv < brow_line - BROW_CLEARANCE * face_height)
    if inside[skull].mean() < SKULL_IN_FRAME:
        return None
    balanced = patch.astype(np.float32) / 255.0
    if gains is not None:
        balanced = np.clip(balanced ** 2.2 * gains.astype(np.float32), 0.0, 1.0) ** (1 / 2.2)
    # The backdrop: beyond BACKGROUND_RADIUS skull radii, from the top down to BACKGROUND_ABOVE face heights over
    # the brows, or lower (not below BACKGROUND_LOWEST) until BACKGROUND_MIN_PIXELS are in frame.
    beyond = (radius > BACKGROUND_RADIUS) & inside & (pv < brow_line - BACKGROUND_LOWEST * face_height)
    heights = np.sort(pv[beyond])
    cut = brow_line - BACKGROUND_ABOVE * face_height
    if len(heights) >= BACKGROUND_MIN_PIXELS:
        cut = max(cut, float(heights[BACKGROUND_MIN_PIXELS - 1]))
    return cv2.cvtColor(balanced, cv2.COLOR_BGR2LAB), skull & inside, beyond & (pv <= cut)


def hair_cue(image: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray,
             gains: np.ndarray | None = None) -> tuple[str, np.ndarray | None, float] | None:
    """Hair words from the skull above the brows (module docstring), or None when the top of the head is out
    of frame or too little of it is told apart from both skin and background.

    Each skull pixel is skin-like (within :data:`SKIN_DELTA_E` of the cheeks, lightness weighted by
    :data:`SKIN_L_WEIGHT`: a lit scalp is lighter than the cheeks, not redder), background-like (within
    :data:`BACKGROUND_DELTA_E` of a background pixel: the skull ellipse overshoots a short-haired head) or
    hair. A skull mostly (:data:`BALD_SHARE`) skin-like is ``no visible hair``; the hair's colour is the
    median of its pixels when they cover at least :data:`MIN_HAIR_SHARE` of the skull.

    Returns:
        (words, the hair's CIELAB colour or None for no visible hair, the hair's share of the skull), or None.
    """
    region = hair_region(image, landmarks, gains)
    if region is None:
        return None
    lab, skull, background = region
    pixels = lab[skull]
    weights = np.array([SKIN_L_WEIGHT, 1.0, 1.0], np.float32)
    skin_like = np.linalg.norm((pixels - skin_lab.astype(np.float32)) * weights, axis=-1) < SCALP_DELTA_E
    if skin_like.mean() >= BALD_SHARE:
        return "no visible hair", None, float(1.0 - skin_like.mean())
    scene = lab[background][::max(1, int(background.sum()) // BACKGROUND_SAMPLES)]
    nearest = np.full(len(pixels), np.inf, np.float32)
    for colour in scene:  # distance of every skull pixel to its nearest background sample
        np.minimum(nearest, np.linalg.norm(pixels - colour, axis=-1), out=nearest)
    hair = ~skin_like & (nearest >= BACKGROUND_DELTA_E)
    share = float(hair.mean())
    if share < MIN_HAIR_SHARE:
        return None
    hair_lab = np.median(pixels[hair], axis=0)
    return hair_colour(hair_lab, skin_lab), hair_lab, share


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
        words, hair_lab, _ = hair
        confidence = 1.0 if hair_lab is None or words == "no visible hair" else hair_confidence(hair_lab)
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
    """Figure 4's sentence: ``Identity: cues; Expression: emotion; phrase (AUxx), ...``.

    Without AUs, the emotion alone: ``Identity: cues; Expression: emotion.``
    """
    if not aus:
        return f"Identity: {cues}; Expression: {emotion}."
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

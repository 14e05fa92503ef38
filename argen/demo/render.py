"""Draw a face image from projected 68-point landmarks with OpenCV.

Everything is drawn at ``SUPERSAMPLE`` times the output size and reduced with area averaging, which gives
anti-aliased edges. The drawing keeps what face detectors rely on: dark eye regions above lighter cheeks,
a lit nose bridge, a dark mouth line, a face contour against hair and background (Haar features), and
oriented edges of jaw, brows, eyes and mouth (HOG).

The same bytes on every x86-64 CPU: the float maths goes through :mod:`argen.demo.exact` (no SIMD-dispatched
transcendental functions, no BLAS), and OpenCV runs its baseline code paths (:func:`opencv_baseline`: no
AVX/AVX2/AVX-512 dispatch, no Intel IPP), whose float results do not depend on the CPU either.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from argen.demo import exact
from argen.demo.face import BROW_L, BROW_R, EYE_L, EYE_R, INNER_LIP, JAW, OUTER_LIP

SUPERSAMPLE = 2

SKIN_TONES_BGR = np.array([  # light to dark, sampled between neighbours
    [196, 214, 241], [170, 196, 232], [150, 182, 222], [122, 160, 205], [96, 134, 181], [70, 104, 146],
    [52, 78, 112]], dtype=float)
HAIR_COLOURS_BGR = np.array([
    [20, 20, 25], [30, 45, 70], [40, 70, 110], [90, 140, 190], [160, 160, 165], [30, 50, 130]], dtype=float)
IRIS_COLOURS_BGR = np.array([[30, 50, 80], [60, 90, 120], [130, 110, 60], [90, 120, 90]], dtype=float)
HAIR_STYLES = ("short", "long", "fringe", "bald")


@dataclass(frozen=True)
class Appearance:
    """Identity appearance: colours, hair, glasses and the background scene."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    glasses: bool
    background: tuple[float, float, float]
    background_accent: tuple[float, float, float]

    @staticmethod
    def sample(rng: np.random.Generator) -> "Appearance":
        """A random identity appearance."""
        tone = rng.uniform(0, len(SKIN_TONES_BGR) - 1)
        lo = int(tone)
        skin = SKIN_TONES_BGR[lo] + (tone - lo) * (SKIN_TONES_BGR[min(lo + 1, len(SKIN_TONES_BGR) - 1)] -
                                                   SKIN_TONES_BGR[lo])
        hair = HAIR_COLOURS_BGR[rng.integers(len(HAIR_COLOURS_BGR))] * rng.uniform(0.8, 1.15)
        lips = skin * np.array([0.72, 0.68, 0.95]) * rng.uniform(0.85, 1.0)
        if abs(_luma(hair) - _luma(skin)) < 50:  # keep the hairline visible against the skin
            hair = hair * 0.45 if _luma(skin) > 110 else np.array([15.0, 15.0, 20.0])
        return Appearance(
            skin=tuple(skin), hair=tuple(np.clip(hair, 0, 255)),
            hair_style=HAIR_STYLES[rng.choice(len(HAIR_STYLES), p=[0.42, 0.3, 0.24, 0.04])],
            iris=tuple(IRIS_COLOURS_BGR[rng.integers(len(IRIS_COLOURS_BGR))]), lips=tuple(lips),
            glasses=bool(rng.random() < 0.12),
            background=tuple(rng.uniform(40, 220, 3)), background_accent=tuple(rng.uniform(20, 235, 3)))


def _luma(bgr: np.ndarray) -> float:
    return float(0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2])


def _poly(img: np.ndarray, pts: np.ndarray, colour, closed: bool = True, thickness: int = -1) -> None:
    p = np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)
    if thickness < 0:
        cv2.fillPoly(img, [p], colour, lineType=cv2.LINE_AA, shift=4)
    else:
        cv2.polylines(img, [p], closed, colour, thickness, lineType=cv2.LINE_AA, shift=4)


def _roi(mask: np.ndarray, margin: float) -> tuple[slice, slice] | None:
    """Bounding box of the non-zero part of ``mask`` grown by ``margin`` pixels, or None if empty."""
    x, y, bw, bh = cv2.boundingRect(cv2.compare(mask, 0, cv2.CMP_GT))
    if bw == 0:
        return None
    m = int(np.ceil(margin))
    h, w = mask.shape
    return slice(max(0, y - m), min(h, y + bh + m)), slice(max(0, x - m), min(w, x + bw + m))


def _blend(img: np.ndarray, alpha: np.ndarray, source, roi: tuple[slice, slice] | None) -> None:
    """``img = img * (1 - alpha) + source * alpha`` inside ``roi`` (source: a colour or an image)."""
    if roi is None:
        return
    a = alpha[roi][..., None]
    src = source[roi] if isinstance(source, np.ndarray) and source.ndim == 3 else np.asarray(source, np.float32)
    img[roi] = img[roi] * (1 - a) + src * a


def _soft(img: np.ndarray, mask: np.ndarray, colour, strength: float, blur: float) -> None:
    """Blend ``colour`` into ``img`` through a blurred mask (shadows, blush, eye sockets)."""
    roi = _roi(mask, 3 * blur + 1)
    if roi is None:
        return
    alpha = np.zeros(mask.shape, np.float32)
    alpha[roi] = cv2.GaussianBlur(mask[roi].astype(np.float32), (0, 0), blur) * strength
    _blend(img, alpha, colour, roi)


@contextlib.contextmanager
def opencv_baseline() -> Iterator[None]:
    """Run OpenCV on its baseline code paths (SSE2/SSE3 on x86-64): no CPU-dispatched SIMD, no Intel IPP.

    OpenCV picks AVX2/AVX-512 kernels and IPP code paths by the CPU it runs on, and their float results
    (GaussianBlur, resize, distanceTransform) differ in the last bits between machines. The switch is
    process-wide; the previous setting is restored on exit.
    """
    previous = cv2.useOptimized()
    cv2.setUseOptimized(False)
    try:
        yield
    finally:
        cv2.setUseOptimized(previous)


@functools.lru_cache(maxsize=4)
def _wave_columns(size: int) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of 6 x for the normalised column coordinates x of a square canvas."""
    x = np.arange(size) / size
    return exact.sin(6.0 * x), exact.cos(6.0 * x)


def _background_wave(size: int, phase: float) -> np.ndarray:
    """0.5 + 0.5 sin(6 x + 3 y + phase) over the canvas (x, y normalised), by the angle-addition formula."""
    sin_x, cos_x = _wave_columns(size)
    row = 3.0 * (np.arange(size) / size) + phase
    sin_y, cos_y = exact.sin(row), exact.cos(row)
    return (0.5 + 0.5 * (np.multiply.outer(cos_y, sin_x) + np.multiply.outer(sin_y, cos_x))).astype(np.float32)


def _curve(a: np.ndarray, b: np.ndarray, bulge: float, n: int = 8) -> np.ndarray:
    """Points on a quadratic curve from ``a`` to ``b`` whose middle is pushed sideways by ``bulge``."""
    t = np.linspace(0, 1, n)[:, None]
    normal = np.array([-(b - a)[1], (b - a)[0]])
    mid = (a + b) / 2 + bulge * normal
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * mid + t ** 2 * b


def draw_face(size: int, lm: np.ndarray, forehead: np.ndarray, app: Appearance, aus: dict[int, float],
              background_phase: float) -> np.ndarray:
    """Render one frame.

    Args:
        size: output width and height in pixels.
        lm: (68, 2) landmarks in output pixel coordinates.
        forehead: (n, 2) forehead arc from jaw point 0 over the top of the head to jaw point 16, in pixels.
        app: identity appearance.
        aus: AU intensities of this frame (0-5), for wrinkles and cheek shading.
        background_phase: slow drift of the background pattern across the clip.

    Returns:
        (size, size, 3) float32 BGR image in [0, 255], before lighting, occlusion, blur and noise.
    """
    with opencv_baseline():
        return _draw_face(size, lm, forehead, app, aus, background_phase)


def _draw_face(size: int, lm: np.ndarray, forehead: np.ndarray, app: Appearance, aus: dict[int, float],
               background_phase: float) -> np.ndarray:
    """:func:`draw_face` without the OpenCV switch."""
    s = SUPERSAMPLE
    big = size * s
    lm, forehead = lm * s, forehead * s
    img = np.empty((big, big, 3), np.float32)
    img[:] = app.background
    wave = _background_wave(big, background_phase)
    img += (np.asarray(app.background_accent, np.float32) - img) * (0.5 * wave[..., None])

    face_outline = np.concatenate([lm[JAW], forehead[::-1]])
    centre = face_outline.mean(axis=0)
    face_w = exact.norm(lm[16] - lm[0])
    skin = np.asarray(app.skin, np.float32)
    hair = np.asarray(app.hair, np.float32)

    # Hair behind the head and the neck.
    if app.hair_style != "bald":
        top = forehead[len(forehead) // 2]
        drop = 1.25 if app.hair_style == "long" else 0.55
        axes = (int(face_w * 0.62), int(face_w * drop))
        hair_centre = (int(centre[0]), int(top[1] + axes[1] * 0.92))
        cv2.ellipse(img, hair_centre, axes, 0, 0, 360, hair.tolist(), -1, cv2.LINE_AA)
    neck = np.array([lm[4] + [face_w * 0.05, 0], lm[12] - [face_w * 0.05, 0],
                     [lm[12][0] - face_w * 0.02, big * 1.2], [lm[4][0] + face_w * 0.02, big * 1.2]])
    _poly(img, neck, (skin * 0.78).tolist())
    for side, sign in ((lm[1], -1), (lm[15], 1)):
        cv2.ellipse(img, (int(side[0] + sign * face_w * 0.02), int(side[1] - face_w * 0.08)),
                    (int(face_w * 0.07), int(face_w * 0.14)), 0, 0, 360, (skin * 0.85).tolist(), -1, cv2.LINE_AA)

    # Face with contour shading: darker towards the outline, lit in the middle.
    face_mask = np.zeros((big, big), np.uint8)
    _poly(face_mask, face_outline, 255)
    dist = cv2.distanceTransform(face_mask, cv2.DIST_L2, 5)
    # Shading curve x ** 0.625 from square roots, which every CPU rounds the same way.
    ramp = np.sqrt(np.clip(dist / np.float32(face_w * 0.22), 0, 1))
    shade = ramp * np.sqrt(np.sqrt(ramp))
    roi = _roi(face_mask, 1)
    face_colour = skin * (0.72 + 0.28 * shade[..., None])
    _blend(img, face_mask.astype(np.float32) / 255.0, face_colour, roi)

    eye_w = exact.norm(lm[39] - lm[36])
    # Eye sockets and the shadow under the brows.
    sockets = np.zeros((big, big), np.float32)
    for eye, brow in ((EYE_R, BROW_R), (EYE_L, BROW_L)):
        c = lm[eye].mean(axis=0)
        bc = lm[brow].mean(axis=0)
        mid = (c * 0.7 + bc * 0.3)
        cv2.ellipse(sockets, (int(mid[0]), int(mid[1])), (int(eye_w * 0.85), int(eye_w * 0.5)), 0, 0, 360,
                    1.0, -1)
    _soft(img, sockets, skin * 0.55, 0.55, eye_w * 0.2)

    # Nose: a shadowed side of the bridge, the lit ridge, nostrils.
    shadow = np.zeros((big, big), np.float32)
    side = np.sign(lm[30][0] - lm[27][0]) or 1.0
    ridge = lm[27:31] + np.array([side * face_w * 0.05, 0])
    cv2.polylines(shadow, [np.round(np.vstack([ridge, lm[31:36]])).astype(np.int32)], False, 1.0,
                  max(2, int(face_w * 0.04)))
    _soft(img, shadow, skin * 0.6, 0.6, face_w * 0.015)
    highlight = np.zeros((big, big), np.float32)
    cv2.polylines(highlight, [np.round(lm[27:31]).astype(np.int32)], False, 1.0, max(2, int(face_w * 0.03)))
    _soft(img, highlight, np.minimum(skin * 1.15, 255), 0.5, face_w * 0.015)
    for a, b in ((31, 32), (34, 35)):
        c = (lm[a] + lm[b]) / 2 + [0, face_w * 0.005]
        cv2.ellipse(img, (int(c[0]), int(c[1])), (max(1, int(face_w * 0.03)), max(1, int(face_w * 0.015))), 0, 0,
                    360, (skin * 0.35).tolist(), -1, cv2.LINE_AA)
    _poly(img, _curve(lm[31], lm[33], 0.25), (skin * 0.55).tolist(), closed=False, thickness=max(1, s))
    _poly(img, _curve(lm[33], lm[35], 0.25), (skin * 0.55).tolist(), closed=False, thickness=max(1, s))

    # Cheek raise (AU6) and smile folds (AU12) as soft shading.
    cheek = (aus.get(6, 0) + 0.5 * aus.get(12, 0)) / 5.0
    if cheek > 0.02:
        folds = np.zeros((big, big), np.float32)
        for nose_wing, corner, sign in ((31, 48, -1), (35, 54, 1)):
            pts = _curve(lm[nose_wing] + [sign * face_w * 0.04, 0], lm[corner] + [sign * face_w * 0.05,
                                                                               face_w * 0.03], -sign * 0.25)
            cv2.polylines(folds, [np.round(pts).astype(np.int32)], False, 1.0, max(2, int(face_w * 0.02)))
        _soft(img, folds, skin * 0.55, min(1.0, cheek * 1.2), face_w * 0.012)

    # Wrinkles: glabellar lines (AU4), nose bridge (AU9), forehead (AU1/AU2).
    line_colour = (skin * 0.55).tolist()
    au4, au9, au12 = aus.get(4, 0) / 5, aus.get(9, 0) / 5, aus.get(1, 0) / 5 + aus.get(2, 0) / 5
    wrinkles = np.zeros((big, big), np.float32)
    if au4 > 0.1:
        for dx in (-0.045, 0.045):
            top = (lm[21] + lm[22]) / 2 + [dx * face_w, -face_w * 0.02]
            cv2.line(wrinkles, tuple(np.round(top).astype(int)), tuple(np.round(top + [0, face_w * 0.09]).astype(int)),
                     au4, max(1, int(face_w * 0.012)))
    if au9 > 0.1:
        for k in range(3):
            y = lm[27][1] + (lm[28][1] - lm[27][1]) * (0.5 + 0.6 * k)
            cv2.line(wrinkles, (int(lm[27][0] - face_w * 0.05), int(y)), (int(lm[27][0] + face_w * 0.05), int(y)),
                     au9, max(1, int(face_w * 0.01)))
    if au12 > 0.2:
        brow_top = min(lm[19][1], lm[24][1])
        for k in range(3):
            y = brow_top - face_w * (0.08 + 0.06 * k)
            pts = _curve(np.array([centre[0] - face_w * 0.28, y]), np.array([centre[0] + face_w * 0.28, y]), 0.08)
            cv2.polylines(wrinkles, [np.round(pts).astype(np.int32)], False, min(1.0, au12 * 0.6),
                          max(1, int(face_w * 0.009)))
    _soft(img, wrinkles, line_colour, 0.7, 0.8)

    # Brows.
    brow_colour = np.minimum(hair * 0.8, skin * 0.5).tolist()
    for brow in (BROW_R, BROW_L):
        _poly(img, lm[brow], brow_colour, closed=False, thickness=max(2, int(face_w * 0.05)))

    # Eyes: sclera, iris and pupil clipped to the lids, lashes on the upper lid.
    for eye in (EYE_R, EYE_L):
        eye_mask = np.zeros((big, big), np.uint8)
        _poly(eye_mask, lm[eye], 255)
        content = img.copy()
        _poly(content, lm[eye], (225, 228, 232))
        c = lm[eye].mean(axis=0)
        r = eye_w * 0.28
        cv2.circle(content, (int(c[0]), int(c[1])), int(r), app.iris, -1, cv2.LINE_AA)
        cv2.circle(content, (int(c[0]), int(c[1])), max(1, int(r * 0.45)), (10, 10, 10), -1, cv2.LINE_AA)
        _blend(img, eye_mask.astype(np.float32) / 255.0, content, _roi(eye_mask, 1))
        _poly(img, lm[eye][[0, 1, 2, 3]], (25, 25, 30), closed=False, thickness=max(2, int(face_w * 0.018)))
        _poly(img, lm[eye][[3, 4, 5, 0]], (skin * 0.5).tolist(), closed=False, thickness=max(1, s))

    # Mouth: lips, an open mouth's dark inside and teeth.
    _poly(img, lm[OUTER_LIP], app.lips)
    inner = lm[INNER_LIP]
    opening = float(np.mean(inner[[5, 6, 7], 1] - inner[[3, 2, 1], 1]))
    if opening > face_w * 0.012:
        mouth = img.copy()
        _poly(mouth, inner, (35, 25, 60))
        teeth_top = inner[[1, 2, 3], 1].mean()
        cv2.rectangle(mouth, (int(inner[0][0]), int(teeth_top)), (int(inner[4][0]), int(teeth_top + opening * 0.35)),
                      (215, 225, 230), -1)
        mouth_mask = np.zeros((big, big), np.uint8)
        _poly(mouth_mask, inner, 255)
        _blend(img, mouth_mask.astype(np.float32) / 255.0, mouth, _roi(mouth_mask, 1))
    _poly(img, inner[[0, 1, 2, 3, 4]], (40, 30, 60), closed=False, thickness=max(1, int(face_w * 0.012)))

    # Front hair and glasses.
    if app.hair_style in ("fringe", "short", "long"):
        reach = 0.25 if app.hair_style == "fringe" else 0.08
        brow_y = min(lm[19][1], lm[24][1])
        fringe = np.vstack([forehead, [lm[16] + [0, -face_w * 0.02]],
                            [[lm[16][0] - face_w * 0.08, brow_y - face_w * reach * 0.5]],
                            [[centre[0], brow_y - face_w * (0.12 - reach * 0.3)]],
                            [[lm[0][0] + face_w * 0.08, brow_y - face_w * reach * 0.5]], [lm[0]]])
        _poly(img, fringe, hair.tolist())
    if app.glasses:
        frame_colour = (70, 70, 75)
        for eye in (EYE_R, EYE_L):
            c = lm[eye].mean(axis=0)
            cv2.ellipse(img, (int(c[0]), int(c[1])), (int(eye_w * 0.75), int(eye_w * 0.5)), 0, 0, 360, frame_colour,
                        max(1, int(face_w * 0.01)), cv2.LINE_AA)
        cv2.line(img, tuple((lm[39] + [eye_w * 0.3, 0]).astype(int)), tuple((lm[42] - [eye_w * 0.3, 0]).astype(int)),
                 frame_colour, max(1, int(face_w * 0.01)), cv2.LINE_AA)

    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)

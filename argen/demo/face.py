"""A 68-point face model in the iBUG layout: identity shape, FACS AU displacements and head pose.

Coordinates are face-normalised: x to the image right, y down, the jaw spans x in [-1, 1], the eyes sit
near y = -0.18 and the chin at y = 1. Each point also has a depth z (towards the camera) so that head pose
can be applied as a 3-D rotation followed by an orthographic projection.

iBUG indices (0-based): jaw 0-16, brows 17-21 (image left) and 22-26, nose bridge 27-30, nostrils 31-35,
eyes 36-41 and 42-47, outer lips 48-59, inner lips 60-67.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from argen.aus import INTENSITY_AUS, MAX_INTENSITY
from argen.demo import exact

N_LANDMARKS = 68

JAW = np.arange(0, 17)
BROW_R, BROW_L = np.arange(17, 22), np.arange(22, 27)
NOSE_BRIDGE, NOSTRILS = np.arange(27, 31), np.arange(31, 36)
EYE_R, EYE_L = np.arange(36, 42), np.arange(42, 48)
OUTER_LIP, INNER_LIP = np.arange(48, 60), np.arange(60, 68)


@dataclass(frozen=True)
class FaceShape:
    """Identity parameters of the template; each is a multiplicative or additive tweak of the mean face."""

    jaw_width: float = 1.0       # x scale of the jaw line
    jaw_length: float = 1.0      # chin height relative to the mean
    jaw_roundness: float = 1.0   # exponent of the jaw curve (<1 squarer, >1 more pointed)
    eye_spacing: float = 0.42    # half distance between eye centres
    eye_width: float = 0.19
    eye_height: float = 0.075
    brow_height: float = -0.43
    brow_arch: float = 0.06
    nose_length: float = 0.55
    nose_width: float = 0.21
    mouth_width: float = 0.34
    mouth_y: float = 0.6
    lip_thickness: float = 0.13

    @staticmethod
    def sample(rng: np.random.Generator) -> "FaceShape":
        """A random identity within the range of adult faces (a few per cent around the mean)."""
        def jitter(mean: float, rel: float) -> float:
            return float(mean * (1.0 + rng.uniform(-rel, rel)))
        return FaceShape(
            jaw_width=jitter(1.0, 0.06), jaw_length=jitter(1.0, 0.06), jaw_roundness=jitter(1.0, 0.25),
            eye_spacing=jitter(0.42, 0.06), eye_width=jitter(0.19, 0.1), eye_height=jitter(0.075, 0.15),
            brow_height=jitter(-0.43, 0.06), brow_arch=jitter(0.06, 0.4), nose_length=jitter(0.55, 0.08),
            nose_width=jitter(0.21, 0.12), mouth_width=jitter(0.34, 0.1), mouth_y=jitter(0.6, 0.04),
            lip_thickness=jitter(0.13, 0.2))


def neutral_landmarks(shape: FaceShape) -> np.ndarray:
    """The 68 neutral landmarks of an identity as an array (68, 3) of x, y, z."""
    pts = np.zeros((N_LANDMARKS, 3))
    t = np.linspace(0.0, 1.0, 17)
    chin = 1.0 * shape.jaw_length
    top = -0.2
    pts[JAW, 0] = -shape.jaw_width * exact.cos(np.pi * t)
    pts[JAW, 1] = top + (chin - top) * exact.power(np.maximum(exact.sin(np.pi * t), 0.0), shape.jaw_roundness)
    pts[JAW, 2] = -0.55 * np.abs(exact.cos(np.pi * t))

    s = np.linspace(0.0, 1.0, 5)
    brow_x = -0.8 + 0.62 * s                  # outer (-0.8) to inner (-0.18)
    brow_y = shape.brow_height - shape.brow_arch * exact.sin(np.pi * (0.3 + 0.7 * s)) + 0.02 * s
    pts[BROW_R, 0], pts[BROW_R, 1] = brow_x, brow_y
    pts[BROW_L, 0], pts[BROW_L, 1] = -brow_x[::-1], brow_y[::-1]
    pts[BROW_R, 2] = pts[BROW_L, 2] = 0.12

    eye_y = -0.18
    pts[NOSE_BRIDGE, 0] = 0.0
    pts[NOSE_BRIDGE, 1] = np.linspace(eye_y - 0.02, eye_y + shape.nose_length * 0.72, 4)
    pts[NOSE_BRIDGE, 2] = np.linspace(0.15, 0.45, 4)
    nostril_y = eye_y + shape.nose_length * 0.88
    pts[NOSTRILS, 0] = shape.nose_width * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    pts[NOSTRILS, 1] = nostril_y + np.array([-0.04, 0.0, 0.02, 0.0, -0.04])
    pts[NOSTRILS, 2] = np.array([0.22, 0.3, 0.34, 0.3, 0.22])

    for idx, sign in ((EYE_R, -1.0), (EYE_L, 1.0)):
        cx, w, h = sign * shape.eye_spacing, shape.eye_width, shape.eye_height
        # iBUG order: right eye runs outer->upper->inner->lower; left eye inner->upper->outer->lower.
        xs = np.array([-w, -w / 3, w / 3, w, w / 3, -w / 3])
        ys = np.array([0.0, -h, -h, 0.0, 0.8 * h, 0.8 * h])
        pts[idx, 0] = cx + xs
        pts[idx, 1] = eye_y + ys
        pts[idx, 2] = 0.08
    mw, ly, th = shape.mouth_width, shape.mouth_y, shape.lip_thickness
    outer = np.array([
        [-1.0, 0.0], [-0.62, -0.75], [-0.25, -0.95], [0.0, -0.8], [0.25, -0.95], [0.62, -0.75],
        [1.0, 0.0], [0.62, 0.85], [0.25, 1.1], [0.0, 1.15], [-0.25, 1.1], [-0.62, 0.85]])
    pts[OUTER_LIP, 0] = outer[:, 0] * mw
    pts[OUTER_LIP, 1] = ly + outer[:, 1] * th
    inner_x = np.array([-0.86, -0.3, 0.0, 0.3, 0.86, 0.3, 0.0, -0.3])
    pts[INNER_LIP, 0] = inner_x * mw
    pts[INNER_LIP, 1] = ly
    pts[OUTER_LIP, 2] = 0.24 - 0.12 * np.abs(outer[:, 0])
    pts[INNER_LIP, 2] = 0.22 - 0.1 * np.abs(inner_x)
    return pts


def _basis() -> dict[int, np.ndarray]:
    """Landmark displacement (68, 2) of each AU at full intensity (5), in face-normalised units.

    Directions follow the FACS descriptions of each AU's appearance change (Ekman, Friesen & Hager 2002).
    """
    d = {au: np.zeros((N_LANDMARKS, 2)) for au in INTENSITY_AUS}

    def move(au: int, idx: list[int] | np.ndarray, dx: float | list[float], dy: float | list[float]) -> None:
        d[au][idx, 0] += dx
        d[au][idx, 1] += dy

    # AU1 inner brow raiser: inner brow ends rise.
    move(1, [21, 22], 0, -0.14); move(1, [20, 23], 0, -0.1); move(1, [19, 24], 0, -0.05)
    # AU2 outer brow raiser: outer brow ends rise.
    move(2, [17, 26], 0, -0.14); move(2, [18, 25], 0, -0.11); move(2, [19, 24], 0, -0.06)
    # AU4 brow lowerer: brows down and drawn together, upper lids pushed down.
    move(4, [21], 0.06, 0.11); move(4, [22], -0.06, 0.11); move(4, [20], 0.04, 0.09); move(4, [23], -0.04, 0.09)
    move(4, [17, 18, 19, 24, 25, 26], 0, 0.05); move(4, [37, 38, 43, 44], 0, 0.02)
    # AU5 upper lid raiser: eye aperture widens upward.
    move(5, [37, 38, 43, 44], 0, -0.055)
    # AU6 cheek raiser: lower lids pushed up, slight narrowing of the eye.
    move(6, [40, 41, 46, 47], 0, -0.035); move(6, [36], 0.0, -0.01); move(6, [45], 0.0, -0.01)
    # AU7 lid tightener: lower lids straighten and rise, upper lids drop slightly.
    move(7, [40, 41, 46, 47], 0, -0.04); move(7, [37, 38, 43, 44], 0, 0.015)
    # AU9 nose wrinkler: nose wings and upper lip rise, inner brows pulled down.
    move(9, [31, 35], 0, -0.06); move(9, [32, 33, 34], 0, -0.045); move(9, [29, 30], 0, -0.03)
    move(9, [21, 22], 0, 0.05); move(9, [49, 50, 51, 52, 53], 0, -0.045); move(9, [61, 62, 63], 0, -0.035)
    move(9, [40, 41, 46, 47], 0, -0.02)
    # AU10 upper lip raiser: upper lip rises, centre most.
    move(10, [49, 53], 0, -0.06); move(10, [50, 51, 52], 0, -0.085); move(10, [61, 62, 63], 0, -0.075)
    move(10, [31, 32, 33, 34, 35], 0, -0.015)
    # AU12 lip corner puller: corners up and out.
    move(12, [48], -0.09, -0.11); move(12, [54], 0.09, -0.11); move(12, [60], -0.07, -0.08)
    move(12, [64], 0.07, -0.08); move(12, [49, 59], -0.035, -0.05); move(12, [53, 55], 0.035, -0.05)
    move(12, [50, 58, 67, 61], -0.01, -0.02); move(12, [52, 56, 65, 63], 0.01, -0.02)
    # AU14 dimpler: corners tightened inward and slightly up.
    move(14, [48, 60], 0.035, -0.02); move(14, [54, 64], -0.035, -0.02)
    # AU15 lip corner depressor: corners down.
    move(15, [48, 54], 0, 0.1); move(15, [60, 64], 0, 0.08); move(15, [49, 53, 59, 55], 0, 0.04)
    # AU17 chin raiser: chin and lower lip pushed up.
    move(17, [7, 8, 9], 0, -0.05); move(17, [6, 10], 0, -0.02); move(17, [55, 56, 57, 58, 59], 0, -0.05)
    move(17, [65, 66, 67], 0, -0.03); move(17, [49, 50, 51, 52, 53], 0, -0.015)
    # AU20 lip stretcher: corners pulled sideways, lips flattened.
    move(20, [48], -0.11, 0.02); move(20, [54], 0.11, 0.02); move(20, [60], -0.09, 0.01)
    move(20, [64], 0.09, 0.01); move(20, [49, 59], -0.05, 0); move(20, [53, 55], 0.05, 0)
    move(20, [50, 51, 52], 0, 0.015); move(20, [56, 57, 58], 0, -0.015)
    # AU23 lip tightener: lips narrow and thin.
    move(23, [48, 60], 0.05, 0); move(23, [54, 64], -0.05, 0); move(23, [49, 50, 51, 52, 53], 0, 0.025)
    move(23, [55, 56, 57, 58, 59], 0, -0.025)
    # AU25 lips part: the lower inner lip separates from the upper.
    move(25, [61, 62, 63], 0, -0.015); move(25, [65, 66, 67], 0, 0.075); move(25, [55, 56, 57, 58, 59], 0, 0.04)
    # AU26 jaw drop: jaw and lower lip descend, mouth opens.
    move(26, [8], 0, 0.24); move(26, [7, 9], 0, 0.21); move(26, [6, 10], 0, 0.16); move(26, [5, 11], 0, 0.1)
    move(26, [4, 12], 0, 0.05); move(26, [55, 56, 57, 58, 59], 0, 0.19); move(26, [65, 66, 67], 0, 0.22)
    move(26, [48], 0.03, 0.06); move(26, [54], -0.03, 0.06); move(26, [60, 64], 0, 0.07)
    # AU45 blink: the upper lids close onto the lower lids.
    return d


AU_BASIS: dict[int, np.ndarray] = _basis()


def expressive_landmarks(neutral: np.ndarray, intensities: dict[int, float], shape: FaceShape) -> np.ndarray:
    """Apply AU intensities (OpenFace 0-5 scale) to neutral 3-D landmarks.

    Most AUs add a fixed displacement scaled by intensity / 5. AU45 (blink) closes the upper lid onto the
    lower one by a fraction of the current eye aperture, so that it composes with AU5 and AU7.
    """
    pts = neutral.copy()
    for au, value in intensities.items():
        if value and au != 45:
            pts[:, :2] += AU_BASIS[au] * (value / MAX_INTENSITY)
    blink = intensities.get(45, 0.0) / MAX_INTENSITY
    if blink:
        for upper, lower in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
            gap = pts[list(lower), 1] - pts[list(upper), 1]
            pts[list(upper), 1] += 0.9 * blink * gap
    return pts


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation for head pose angles in radians (yaw about y, pitch about x, roll about z)."""
    cy, sy, cp, sp, cr, sr = (float(f(angle)) for angle in (yaw, pitch, roll) for f in (exact.cos, exact.sin))
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return exact.matmul(exact.matmul(r_roll, r_pitch), r_yaw)


def project(points: np.ndarray, pose: tuple[float, float, float], centre: tuple[float, float],
            scale: float) -> np.ndarray:
    """Rotate face-normalised 3-D points by ``pose`` and project them orthographically to pixels."""
    rotated = exact.matmul(points, rotation(*pose).T)
    return rotated[:, :2] * scale + np.asarray(centre)

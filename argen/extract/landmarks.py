"""The ``landmarks`` AU backend (CPU default): dlib's 68 landmarks and a geometric AU intensity estimator.

Landmarks are smoothed over time first (a [1 2 3 2 1] kernel over neighbouring detected frames, param
``smooth_frames``): expressions change over several frames while landmark jitter does not, and at DFEW's
resolution an AU's movement is often a pixel or two. They are then put in a face frame: rotated so the
eyes are level, centred between the eyes and divided by the inter-ocular distance (IOD), which removes
position, in-plane rotation and scale. The eyes are placed by their corners (canthi), which stay put when
the lids move: anchored on the six-point eye centres, every blink or squint shifted all brow and mouth
heights. From
them come 15 geometric measures (:func:`geometric_measures`). An AU's intensity is read from the change
of its measures relative to a neutral reference of the same face:

``reference = "clip"`` (default)
    the clip's least-expressive frames: each frame's distance from the population median of all frames
    processed is summed over the 15 measures, each in units of its typical full expression
    (:data:`MEASURE_SCALE`, both directions counted alike), the mean measures of the ``REFERENCE_FRAMES``
    closest frames are taken as the clip's neutral, and intensities are computed against it. Identity
    (brow height, mouth width) cancels out. (Ranking frames by their mean AU intensity instead counted
    the mouth's widening four times, through AU06, AU12, AU14 and AU20, and its narrowing never, so a clip
    going from neutral to a tight-lipped frown took its frown as the neutral.)
``reference = "population"``
    the median measures over all frames processed. Needs no neutral frame in the clip, but identity
    differences leak into the estimates.
``reference = "first"``
    the clip's first detected frame. For clips known to start neutral: a generated clip starts on its
    identity frame, so the reward audit (:mod:`argen.rewards.components`) measures the expression a generator
    added against it. (Each generated clip audited on its own, the clip reference would take the frames
    nearest the clip's own median, mid-expression ones, as neutral.)

With ``neutral_bounds`` (default on) the reference is then clamped, measure by measure, into the range a
neutral face can have for the measures whose neutral value does not depend on identity
(:data:`NEUTRAL_BOUNDS`): closed lips have no inner-lip gap, and relaxed lip corners sit near the lip
line. A clip in which the person smiles or talks from the first frame to the last has no neutral frame;
without the bounds its broad smile is its own reference and reads AU12 = 0 (a single smiling photograph
reads all AUs 0). With them the smile shows, while clips that do contain a neutral frame keep their own
reference unchanged.

AU by AU (measure deltas in IOD units; FACS appearance changes per Ekman, Friesen & Hager 2002):

* AU01 inner brow raiser: frontalis, medial part, lifts the inner brow ends → inner brow height rises.
* AU02 outer brow raiser: frontalis, lateral part → outer brow height rises.
* AU04 brow lowerer: corrugator and depressors draw the brows together and down → the gap between the
  inner brow ends shrinks (AU1 cannot undo this, unlike brow height).
* AU05 upper lid raiser: levator palpebrae → upper lid rises above the eye-corner line.
* AU06 cheek raiser: orbicularis oculi, orbital part, pushes the lower lid up and lifts the cheeks, which
  carries the lip corners outwards → lower-lid raise plus 0.3 of the mouth's widening. On real faces
  OpenFace's AU06 moves with the smile (its mouth-width r 0.82); the lower lid alone reached r 0.64.
* AU07 lid tightener: orbicularis oculi, palpebral part, raises and straightens the lower lid → lower-lid
  raise. (Counting the upper lid's lowering too, as before, mixed in blinks and relaxed lids: r 0.43
  against OpenFace on real faces, 0.66 on the lower lid alone.)
* AU09 nose wrinkler: levator labii alaeque nasi lifts the nose wings → nose wing height rises.
* AU10 upper lip raiser: levator labii superioris → the upper lip approaches the nose base.
* AU12 lip corner puller: zygomaticus major draws the corners up and out, towards the cheekbones →
  corners rise above the lip centre (taken as 0.73 of the upper plus 0.27 of the lower inner lip: a jaw
  drop carries the corners down about a quarter of the way the lower lip goes) plus 0.5 of the mouth's
  widening. On real faces the corner height alone missed open-mouth smiles (r 0.72 against OpenFace,
  0.55 within clips); with the widening r is 0.85 (0.78 within clips).
* AU14 dimpler: buccinator pulls the corners back and tightens them → the mouth widens without the
  corners lifting (the AU20 measure; the two cannot be told apart by geometry). The earlier reading,
  mouth narrowing, ran against OpenFace (r −0.25 on real faces), whose AU14 is the dimpler of a widening
  mouth; now r 0.57.
* AU15 lip corner depressor: depressor anguli oris → corners drop below the lip centre.
* AU17 chin raiser: mentalis pushes chin and lower lip up → the lower lip approaches the nose (the lip
  points are steadier than the jaw outline), minus what the jaw's own closing above the reference
  explains. Without that term, lips closing between syllables of a talking clip read AU17 up to 5.0 (on
  37 % of real talking frames ≥ 1, against OpenFace's 1 %); with it 10 %, never saturated.
* AU20 lip stretcher: risorius pulls the corners sideways → mouth widens beyond what AU12's oblique pull
  explains (AU12 widens the mouth about 1.6 times as much as it lifts the corners).
* AU23 lip tightener: orbicularis oris narrows and thins the red of the lips → lip thickness shrinks,
  minus half the mouth's widening (a stretched mouth thins its lips without AU23). Present (≥ 1) on 12 %
  of real talking frames, 60 % before; OpenFace finds it on almost none, so read it as an upper bound.
* AU25 lips part: the inner lips separate beyond what a jaw drop explains (about 0.9 of the chin's drop).
* AU26 jaw drop: the mandible lowers → the lower lip, which rides on it, moves away from the nose. The
  chin outline (point 8) is dlib's least steady point on real faces: it gave r 0.31 against OpenFace,
  the lower lip 0.61.
* AU45 blink: lids close → eye aperture (lid distance / eye width) falls relative to the reference.

Each delta is mapped linearly to intensity with a full-scale delta (``FULL_SCALE``, the change at
intensity 5, in IOD units) and clipped to [0, 5]. The full scales are typical adult amplitudes; they were
checked against the demo's rendered ground truth, so on real faces compare with OpenFace before trusting
the absolute values (the ranking within a clip is what identity selection and the knowledge base use).

Measured against OpenFace 2.0 (``-au_static``) on 1,290 real frames of six people (two studio
talking-head videos, four of OpenFace's webcam samples; ``benchmarks/au_openface.py``): mean Pearson r
over the 14 AUs OpenFace activates 0.50 (0.37 before the changes above; per clip 0.39, 0.29 before).
AU02, AU06, AU07, AU12, AU14, AU25, AU26 and AU45 agree (0.57–0.85); AU01, AU05 and AU10 fairly
(0.30–0.54); AU09, AU15 and AU20 hardly (−0.10–0.13): OpenFace's static intensities for these carry person-specific offsets (AU20 ≥ 1 on
32 % of frames, AU15 on 22 %) that a measure relative to the clip's own neutral cannot reproduce.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS, MAX_INTENSITY
from argen.extract import BOX_COLUMNS, empty_rows
from argen.face import FaceAnalyzer

log = logging.getLogger(__name__)

MEASURES: tuple[str, ...] = ("inner_brow", "outer_brow", "brow_gap", "upper_lid", "lower_lid", "eye_corner",
                             "aperture", "nose_wing", "lip_nose_gap", "corner_height", "mouth_width",
                             "lip_thickness", "lip_gap", "jaw", "lower_lip")
MEASURE_COLUMNS: tuple[str, ...] = tuple(f"geo_{m}" for m in MEASURES)

#: How many least-expressive frames of a clip are averaged into its neutral reference.
REFERENCE_FRAMES = 3

#: A full expression's change of each measure (order of :data:`MEASURES`), in IOD units (the aperture as a
#: ratio): the units in which frames' distances from the population median are summed.
MEASURE_SCALE: np.ndarray = np.array([0.16, 0.15, 0.14, 0.065, 0.06, 0.06, 0.3, 0.07, 0.08, 0.12, 0.2, 0.1,
                                      0.09, 0.28, 0.1])

#: Range (low, high) of the measures whose neutral value is the same for every face, in IOD units: the
#: inner-lip gap of closed lips and the lip corners' height above the lip line (demo neutral frames: 5-95 %
#: range -0.04..0.01; real neutral faces read by dlib within it, see benchmarks/au_openface.py).
NEUTRAL_BOUNDS: dict[str, tuple[float, float]] = {"lip_gap": (-np.inf, 0.03), "corner_height": (-0.05, 0.03)}

#: Delta of each AU's combined measure at intensity 5, in IOD units (AU45: fraction of the aperture).
FULL_SCALE: dict[int, float] = {1: 0.16, 2: 0.15, 4: 0.14, 5: 0.065, 6: 0.06, 7: 0.065, 9: 0.07, 10: 0.08,
                                12: 0.15, 14: 0.1, 15: 0.12, 17: 0.1, 20: 0.2, 23: 0.1, 25: 0.09, 26: 0.28,
                                45: 0.9}


def face_frame(landmarks: np.ndarray, anchor: str = "eyes") -> np.ndarray:
    """Landmarks (n, 68, 2) rotated eyes-level, centred between the eyes, in inter-ocular units.

    ``anchor = "eyes"``: the eye centres (mean of each eye's six points) fix the frame, as
    :func:`argen.face.face_axes` does. ``anchor = "canthi"``: the midpoints of each eye's two corners
    (36/39, 42/45) fix it instead; the corners do not move when the lids do, so blinks, widened eyes and
    squints do not shift the frame (and with it every brow and mouth height) up or down.
    """
    if anchor == "canthi":
        left, right = landmarks[:, [36, 39]].mean(axis=1), landmarks[:, [42, 45]].mean(axis=1)
    else:
        left, right = landmarks[:, 36:42].mean(axis=1), landmarks[:, 42:48].mean(axis=1)
    axis = right - left
    iod = np.linalg.norm(axis, axis=1, keepdims=True)
    cos, sin = (axis / iod).T
    centred = landmarks - ((left + right) / 2)[:, None, :]
    x = centred[..., 0] * cos[:, None] + centred[..., 1] * sin[:, None]
    y = -centred[..., 0] * sin[:, None] + centred[..., 1] * cos[:, None]
    return np.stack([x, y], axis=-1) / iod[:, None, :]


def geometric_measures(landmarks: np.ndarray) -> np.ndarray:
    """The 15 measures of :data:`MEASURES` for landmarks (n, 68, 2); y points down, "height" is -y."""
    p = face_frame(landmarks, anchor="canthi")
    x, y = p[..., 0], p[..., 1]
    corners_y = y[:, [36, 39, 42, 45]].mean(axis=1)
    eye_width = (np.abs(x[:, 39] - x[:, 36]) + np.abs(x[:, 45] - x[:, 42])) / 2
    aperture = (y[:, 41] - y[:, 37] + y[:, 40] - y[:, 38] + y[:, 47] - y[:, 43] + y[:, 46] - y[:, 44]) / 4
    return np.stack([
        -y[:, [21, 22]].mean(axis=1),                       # inner_brow
        -y[:, [17, 18, 25, 26]].mean(axis=1),               # outer_brow
        x[:, 22] - x[:, 21],                                # brow_gap
        corners_y - y[:, [37, 38, 43, 44]].mean(axis=1),    # upper_lid: height above the corner line
        corners_y - y[:, [40, 41, 46, 47]].mean(axis=1),    # lower_lid: (negative) depth below it
        -y[:, [36, 45]].mean(axis=1),                       # eye_corner: outer corners' height
        aperture / eye_width,                               # aperture
        -y[:, [31, 35]].mean(axis=1),                       # nose_wing
        y[:, 51] - y[:, 33],                                # lip_nose_gap
        0.73 * y[:, 62] + 0.27 * y[:, 66] - y[:, [48, 54]].mean(axis=1),  # corner_height (see AU12)
        x[:, 54] - x[:, 48],                                # mouth_width
        (y[:, 57] - y[:, 51]) - (y[:, 66] - y[:, 62]),      # lip_thickness: red of both lips
        y[:, 66] - y[:, 62],                                # lip_gap
        y[:, 8] - y[:, 33],                                 # jaw: chin to nose base
        y[:, 57] - y[:, 33],                                # lower_lip: lower lip to nose base
    ], axis=1)


def intensities_from_deltas(delta: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """AU intensities (n, 17) in OpenFace's order from measure deltas (n, 15) and the reference measures."""
    d = {name: delta[:, i] for i, name in enumerate(MEASURES)}
    pos = lambda v: np.maximum(v, 0.0)  # noqa: E731
    ref_aperture = np.maximum(reference[:, MEASURES.index("aperture")], 1e-3)
    combined = {
        1: d["inner_brow"], 2: d["outer_brow"], 4: -d["brow_gap"], 5: d["upper_lid"],
        6: d["lower_lid"] + 0.3 * d["mouth_width"], 7: d["lower_lid"], 9: d["nose_wing"],
        10: -d["lip_nose_gap"], 12: d["corner_height"] + 0.5 * d["mouth_width"],
        14: d["mouth_width"] - 1.6 * pos(d["corner_height"]), 15: -d["corner_height"],
        17: -d["lower_lip"] - pos(-d["jaw"]), 20: d["mouth_width"] - 1.6 * pos(d["corner_height"]),
        23: -d["lip_thickness"] - 0.5 * pos(d["mouth_width"]), 25: d["lip_gap"] - 0.9 * pos(d["jaw"]),
        26: d["lower_lip"], 45: -d["aperture"] / ref_aperture,
    }
    out = np.stack([pos(combined[au]) / FULL_SCALE[au] * MAX_INTENSITY for au in INTENSITY_AUS], axis=1)
    return np.clip(out, 0.0, MAX_INTENSITY)


def smooth_landmarks(landmarks: np.ndarray, window: int) -> np.ndarray:
    """Temporal low-pass of a clip's landmark track (n, 68, 2) with a triangular kernel of ``window`` taps.

    The ends are padded by repeating the first and last frames, so a track keeps its length and position.
    """
    if window == 1 or len(landmarks) < 2:
        return landmarks
    half = window // 2
    kernel = np.concatenate([np.arange(1, half + 2), np.arange(half, 0, -1)]).astype(float)
    kernel /= kernel.sum()
    padded = np.concatenate([landmarks[:1].repeat(half, 0), landmarks, landmarks[-1:].repeat(half, 0)])
    return sum(w * padded[k:k + len(landmarks)] for k, w in enumerate(kernel))


class LandmarkAUBackend:
    """dlib landmarks per frame, geometric AU intensities relative to a neutral reference (module docs)."""

    name = "landmarks"
    reads_only_frames = True

    def __init__(self, reference: str = "clip", smooth_frames: int = 5, neutral_bounds: bool = True) -> None:
        if reference not in ("clip", "population", "first"):
            raise ValueError(f"reference must be 'clip', 'population' or 'first', got {reference!r}")
        if smooth_frames not in (1, 3, 5):
            raise ValueError(f"smooth_frames must be 1 (off), 3 or 5, got {smooth_frames}")
        self.reference = reference
        self.smooth_frames = smooth_frames
        self.neutral_bounds = neutral_bounds
        self._analyzer: FaceAnalyzer | None = None

    @property
    def analyzer(self) -> FaceAnalyzer:
        """The detectors and predictor, loaded on first use (once per worker process)."""
        if self._analyzer is None:
            self._analyzer = FaceAnalyzer()
        return self._analyzer

    def process_clip(self, clip_id: str, frames_dir: Path, frame_files: list[str],
                     images: list[np.ndarray]) -> pd.DataFrame:
        """Detect and landmark every frame; AU columns are filled by :meth:`finalize`."""
        rows = empty_rows(clip_id, frame_files)
        for col in MEASURE_COLUMNS:
            rows[col] = np.nan
        faces = [self.analyzer.analyze(image) for image in images]
        found = [i for i, face in enumerate(faces) if face is not None]
        if not found:
            return rows
        hits = [faces[i] for i in found]
        smoothed = smooth_landmarks(np.stack([f.landmarks for f in hits]), self.smooth_frames)
        rows.loc[found, "success"] = True
        rows.loc[found, "confidence"] = [1 / (1 + np.exp(-f.score)) for f in hits]
        rows.loc[found, "detector"] = [f.detector for f in hits]
        rows.loc[found, list(BOX_COLUMNS)] = np.array([f.box for f in hits])
        rows.loc[found, [f"x_{k}" for k in range(68)]] = smoothed[..., 0]
        rows.loc[found, [f"y_{k}" for k in range(68)]] = smoothed[..., 1]
        rows.loc[found, list(MEASURE_COLUMNS)] = geometric_measures(smoothed)
        return rows

    def finalize(self, frames: pd.DataFrame) -> pd.DataFrame:
        """Turn the geometric measures of all clips into AU intensities against the chosen reference."""
        frames = frames.copy()
        ok = frames.success.to_numpy(bool)
        if not ok.any():
            return frames
        measures = frames.loc[ok, list(MEASURE_COLUMNS)].to_numpy(float)
        population = np.median(measures, axis=0, keepdims=True)
        reference = np.repeat(population, len(measures), axis=0)
        if self.reference == "clip":
            prelim = (np.abs(measures - reference) / MEASURE_SCALE).sum(axis=1)
            clip_ids = frames.loc[ok, "clip_id"].to_numpy()
            order = pd.DataFrame({"clip_id": clip_ids, "score": prelim, "row": np.arange(len(prelim))})
            calm = order.sort_values("score", kind="stable").groupby("clip_id", sort=False).head(REFERENCE_FRAMES)
            neutral = pd.DataFrame(measures[calm.row.to_numpy()]).groupby(calm.clip_id.to_numpy()).mean()
            reference = neutral.loc[clip_ids].to_numpy()
        elif self.reference == "first":
            clip_ids = frames.loc[ok, "clip_id"].to_numpy()
            first = pd.DataFrame(measures).groupby(clip_ids, sort=False).transform("first")
            reference = first.to_numpy()
        if self.neutral_bounds:
            reference = reference.copy()
            for name, (low, high) in NEUTRAL_BOUNDS.items():
                column = MEASURES.index(name)
                reference[:, column] = np.clip(reference[:, column], low, high)
        frames.loc[ok, list(INTENSITY_COLUMNS)] = intensities_from_deltas(measures - reference, reference)
        return frames

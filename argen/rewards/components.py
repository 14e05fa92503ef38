"""ARD reward components (paper sec. 3.3, eq. 14-18; supplementary D), each in [0, 1].

Videos are uint8 arrays (M, H, W, 3) in BGR order; AUs are arrays (M, 17) in OpenFace's column order
(:data:`argen.aus.INTENSITY_AUS`, 0-5 scale), NaN where no face was found.

* Speed, eq. 14: ``R_S = 1 - T / T_max`` (T the denoising steps chosen from S_T, T_max its largest).
* Quality, eq. 15: ``R_Q = alpha * Q_m + (1 - alpha) * Q_M`` with alpha = 0.6 (paper).

  - ``Q_m`` (intra-frame, "sharpness and contrast"): the mean over frames of
    ``Q_frame = 0.5 * (1 - exp(-sharpness / sharpness_ref)) + 0.5 * min(1, contrast / contrast_ref)``,
    sharpness the variance of the grey frame's Laplacian (the measure of eq. 22) and contrast the grey
    frame's standard deviation (eq. 26). The paper gives no normalisation; this one is 0 for a flat frame,
    saturates for sharp, contrasty ones and is monotone in both. The references were set from the
    demo's 85 identity frames (128 px: Laplacian variance 5/25/50 % quantiles 134/367/568, grey std
    24/31/35) and the astronaut test image (face crop at 128 px: 1150 and 74): ``sharpness_ref = 200``
    gives the median identity frame 0.94 and its lower quartile 0.84; ``contrast_ref = 32`` (about the
    identity frames' lower quartile) gives three quarters of them full contrast marks.
  - ``Q_M`` (inter-frame smoothness): the mean SSIM (scikit-image, grey frames, data range 255) of
    consecutive frames, each pair's SSIM clipped to [0, 1] (SSIM can be negative); a one-frame video
    has nothing to be inconsistent with and scores 1.

* Face, eq. 16: ``R_F = mean_m p_m``. ``p_m`` is 1 when OpenCV's Haar frontal-face cascade finds a face
  whose side is at least ``min_size_fraction`` of the frame's shorter side, else 0: a Haar cascade is a
  binary detector (no calibrated probability), so the paper's "probability of face presence" is read as
  a 0/1 indicator. The size floor keeps a speck of texture in a corner from counting as the face.
* Expression, eq. 17: ``R_E = mean_m max(0, 1 - ||a_m||_2 / a_max)`` over the 16 expression AUs (AU45,
  the blink, is left out: a blink is not an expression, and a video should not be rewarded for keeping
  its eyes open). A frame without a face (NaN AUs) contributes 0: an unknown amplitude earns nothing,
  and a video whose face the AU extractor loses should not score as calm. ``a_max`` is "empirically
  determined" in the paper: :func:`empirical_a_max` takes a quantile of ||a|| over real frames; the
  default 5.0 is one AU at full intensity (the demo's extract_aus rows give a 95 % quantile of 5.41).
* AU fidelity (project addition, from the supplement's "audits the accuracy of each expression frame"):
  ``R_A = F1`` between the prompt's AUs and the AUs active in the video (maximum over detected frames at
  least ``active_threshold`` = 1.5, the knowledge base's threshold). Prompt intensities r are not used,
  only which AUs the prompt names. A prompt that names no AU has no R_A (NaN); R_X is then R_C alone.
* Target-emotion score (project addition, issue 20): ``R_C = p(target emotion | AU trajectory)`` from
  :class:`EmotionScorer`, a logistic regression (scikit-learn, standardised inputs, balanced class
  weights) fitted on the *training split's* real clips only (the extract_aus rows of clips whose split is
  ``train``; a test clip is never read). Its input is :func:`emotion_features`: the peak and the mean over
  the detected frames of the 16 expression AUs. The training clips' AUs are measured against each clip's
  own neutral frames, a generated video's against its first (neutral identity) frame: both are the change
  from neutral. A video without a detected face scores 0.
* Human preference ``R_H``: ratings in [0, 1] read by :func:`read_ratings`; an unrated clip's R_H is NaN
  and the caller decides what that means.

:class:`VideoAuditor` computes R_S, R_Q (with Q_m, Q_M), R_F, R_E, R_A and R_C for one generated video.
"""

from __future__ import annotations

import csv
import hashlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity

from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS, MAX_INTENSITY
from argen.errors import InputError
from argen.extract import AUBackend
from argen.extract.run import quality_figures
from argen.face import haar_cascade
from argen.io import read_text_lines

#: Positions of the expression AUs (all but AU45) in OpenFace's order, and their column names.
EXPRESSION_INDEX: tuple[int, ...] = tuple(i for i, au in enumerate(INTENSITY_AUS) if au != 45)
EXPRESSION_COLUMNS: tuple[str, ...] = tuple(INTENSITY_COLUMNS[i] for i in EXPRESSION_INDEX)


def _check_video(frames: np.ndarray) -> None:
    """Raise ValueError unless ``frames`` is a non-empty (M, H, W, 3) uint8 video."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"expected a video (M, H, W, 3) uint8 with M >= 1, got {frames.shape} {frames.dtype}")


def _check_aus(aus: np.ndarray) -> np.ndarray:
    """``aus`` as a float array (M, 17); ValueError when it has another shape."""
    aus = np.asarray(aus, dtype=float)
    if aus.ndim != 2 or aus.shape[1] != len(INTENSITY_AUS):
        raise ValueError(f"expected AUs (M, {len(INTENSITY_AUS)}) in OpenFace's order, got {aus.shape}")
    return aus


def speed_reward(steps: int, steps_max: int) -> float:
    """R_S = 1 - T / T_max (eq. 14).

    Args:
        steps: denoising steps T used, 0 <= T <= T_max.
        steps_max: the largest step count T_max of the action set S_T.
    """
    if steps_max <= 0 or not 0 <= steps <= steps_max:
        raise ValueError(f"need 0 <= steps <= steps_max and steps_max > 0, got {steps} and {steps_max}")
    return 1.0 - steps / steps_max


def frame_quality(frames: np.ndarray, sharpness_ref: float, contrast_ref: float) -> np.ndarray:
    """Per-frame quality Q_frame = 0.5 (1 - exp(-sharpness / sharpness_ref)) + 0.5 min(1, contrast / contrast_ref).

    Args:
        frames: video (M, H, W, 3) uint8 BGR.
        sharpness_ref: Laplacian variance at which the sharpness term reaches 1 - 1/e.
        contrast_ref: grey standard deviation from which the contrast term is 1.

    Returns:
        Q_frame per frame (M,), in [0, 1].
    """
    _check_video(frames)
    figures = np.array([quality_figures(frame) for frame in frames])
    sharpness, contrast = figures[:, 0], figures[:, 2]
    return 0.5 * (1.0 - np.exp(-sharpness / sharpness_ref)) + 0.5 * np.minimum(1.0, contrast / contrast_ref)


def temporal_consistency(frames: np.ndarray) -> float:
    """Q_M: mean SSIM of consecutive grey frames (data range 255), each clipped to [0, 1]; 1.0 for one frame.

    Args:
        frames: video (M, H, W, 3) uint8 BGR, frames at least 7 x 7 pixels (SSIM's window).
    """
    _check_video(frames)
    if len(frames) == 1:
        return 1.0
    grey = [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for frame in frames]
    scores = [structural_similarity(a, b, data_range=255) for a, b in zip(grey, grey[1:])]
    return float(np.mean(np.clip(scores, 0.0, 1.0)))


def quality_reward(frames: np.ndarray, alpha: float = 0.6, sharpness_ref: float = 200.0,
                   contrast_ref: float = 32.0) -> tuple[float, float, float]:
    """R_Q = alpha Q_m + (1 - alpha) Q_M (eq. 15).

    Args:
        frames: video (M, H, W, 3) uint8 BGR.
        alpha: weight of the intra-frame quality (0.6 in the paper).
        sharpness_ref, contrast_ref: see :func:`frame_quality`.

    Returns:
        (R_Q, Q_m the mean of :func:`frame_quality`, Q_M from :func:`temporal_consistency`).
    """
    q_m = float(frame_quality(frames, sharpness_ref, contrast_ref).mean())
    q_big_m = temporal_consistency(frames)
    return alpha * q_m + (1.0 - alpha) * q_big_m, q_m, q_big_m


def face_reward(frames: np.ndarray, cascade: cv2.CascadeClassifier | None = None,
                min_size_fraction: float = 0.2) -> tuple[float, np.ndarray]:
    """R_F = mean of p_m (eq. 16), p_m = 1 when the Haar cascade finds a large enough face in frame m.

    Args:
        frames: video (M, H, W, 3) uint8 BGR.
        cascade: OpenCV's Haar frontal-face cascade (:func:`argen.face.haar_cascade` when None).
        min_size_fraction: smallest face side counted, as a fraction of the frame's shorter side.

    Returns:
        (R_F, p_m per frame (M,) as 0.0 / 1.0).
    """
    _check_video(frames)
    cascade = haar_cascade() if cascade is None else cascade
    side = max(1, math.ceil(min_size_fraction * min(frames.shape[1:3])))
    presence = np.array([
        float(len(cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), scaleFactor=1.1,
                                           minNeighbors=5, minSize=(side, side))) > 0)
        for frame in frames])
    return float(presence.mean()), presence


def expression_reward(aus: np.ndarray, a_max: float) -> float:
    """R_E = mean over frames of max(0, 1 - ||a_m||_2 / a_max) (eq. 17), AU45 left out, NaN frames 0.

    Args:
        aus: AU intensities (M, 17) in OpenFace's order; a frame with any NaN AU counts as no face.
        a_max: the largest reasonable amplitude ||a||_2 (see :func:`empirical_a_max`).
    """
    aus = _check_aus(aus)[:, EXPRESSION_INDEX]
    if len(aus) == 0:
        raise ValueError("expected AUs of at least one frame")
    detected = ~np.isnan(aus).any(axis=1)
    per_frame = np.zeros(len(aus))
    per_frame[detected] = np.maximum(0.0, 1.0 - np.linalg.norm(aus[detected], axis=1) / a_max)
    return float(per_frame.mean())


def au_fidelity(aus: np.ndarray, prompt_aus: dict[int, float], threshold: float = 1.5) -> float:
    """R_A: F1 between the prompt's AUs and the AUs active in the video.

    An AU is active when its maximum over the detected frames (no NaN AU) reaches ``threshold``. Only
    the prompt's AUs in :data:`argen.aus.INTENSITY_AUS` other than 45 count, and AU45 is never active.

    Args:
        aus: AU intensities (M, 17) in OpenFace's order.
        prompt_aus: the prompt's AUs {AU: r} (:func:`argen.generators.factory.prompt_aus_from_line`).
        threshold: activation threshold on the 0-5 scale.

    Returns:
        2 |P & A| / (|P| + |A|); 0.0 when no frame has a face; NaN when the prompt cites no AU that counts
        (a prompt naming only its emotion, or ``asi.mode: fixed``): there is nothing to check the video
        against, and scoring "no AU active" as agreement would reward a still face.
    """
    aus = _check_aus(aus)
    wanted = {au for au in prompt_aus if au in INTENSITY_AUS and au != 45}
    if not wanted:
        return float("nan")
    detected = aus[~np.isnan(aus).any(axis=1)]
    if len(detected) == 0:
        return 0.0
    peaks = detected.max(axis=0)
    active = {INTENSITY_AUS[i] for i in EXPRESSION_INDEX if peaks[i] >= threshold}
    return 2 * len(wanted & active) / (len(wanted) + len(active))


def emotion_features(aus: np.ndarray) -> np.ndarray | None:
    """The input of :class:`EmotionScorer`: peak and mean over the detected frames of the 16 expression AUs.

    Args:
        aus: AU intensities (M, 17) in OpenFace's order; rows with a NaN count as no face.

    Returns:
        (32,) [peaks, means], or None when no frame has a face.
    """
    aus = _check_aus(aus)[:, EXPRESSION_INDEX]
    detected = aus[~np.isnan(aus).any(axis=1)]
    if len(detected) == 0:
        return None
    return np.concatenate([detected.max(axis=0), detected.mean(axis=0)])


class EmotionScorer:
    """R_C: the probability of a video's target emotion from its AU trajectory (module docstring).

    Fitted by :meth:`fit` on the training split's real clips only. Attributes: ``classes`` (emotions seen in
    training), ``n_clips`` (training clips per emotion).
    """

    def __init__(self, model, classes: list[str], n_clips: dict[str, int]) -> None:
        self.model = model
        self.classes = classes
        self.n_clips = n_clips

    @classmethod
    def fit(cls, frames: pd.DataFrame, clips: pd.DataFrame, seed: int = 0) -> "EmotionScorer":
        """Fit on the clips of ``clips`` whose ``split`` is ``train`` (any other clip is never read).

        Args:
            frames: extract_aus rows (``clip_id``, ``success`` and the AU columns).
            clips: one row per clip with ``clip_id``, ``label`` and ``split`` (extract_aus' aus_clips).
            seed: the solver's random state.

        Raises:
            InputError: fewer than two emotions have a training clip with a detected face.
        """
        train_ids = set(clips.clip_id[clips.split == "train"])
        labels = dict(zip(clips.clip_id, clips.label))
        rows = frames[frames.clip_id.isin(train_ids)]
        features, targets = [], []
        for clip_id, clip_rows in rows.groupby("clip_id", sort=True):
            aus = clip_rows[list(INTENSITY_COLUMNS)].to_numpy(float, copy=True)
            aus[~clip_rows["success"].to_numpy(bool)] = np.nan
            feature = emotion_features(aus)
            if feature is not None:
                features.append(feature)
                targets.append(labels[clip_id])
        if len(set(targets)) < 2:
            raise InputError(f"the target-emotion score R_C needs training clips of at least two emotions with a "
                             f"detected face; found {sorted(set(targets))} in {len(train_ids)} training clips")
        from sklearn.linear_model import LogisticRegression  # here: scikit-learn (and scipy) cost ~0.6 s per import
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced",
                                                                   random_state=seed))
        model.fit(np.array(features), np.array(targets))
        counts = pd.Series(targets).value_counts().sort_index()
        return cls(model, [str(c) for c in model.classes_], {str(k): int(v) for k, v in counts.items()})

    def score(self, aus: np.ndarray, emotion: str) -> float:
        """R_C: the probability of ``emotion`` for a video's AUs (M, 17); 0 without a detected face or when the
        scorer saw no training clip of ``emotion``."""
        feature = emotion_features(aus)
        if feature is None or emotion not in self.classes:
            return 0.0
        return float(self.model.predict_proba(feature[None])[0, self.classes.index(emotion)])

    def digest(self) -> str:
        """A hex digest of the fitted coefficients (part of the reward table's fingerprint)."""
        scaler, logistic = self.model[0], self.model[-1]
        parts = [scaler.mean_, scaler.scale_, logistic.coef_, logistic.intercept_]
        return hashlib.sha256(b"".join(np.ascontiguousarray(p, np.float64).tobytes() for p in parts)
                              + ",".join(self.classes).encode()).hexdigest()[:16]


def empirical_a_max(frames: pd.DataFrame, quantile: float = 0.95) -> float:
    """a_max from data: the ``quantile`` of ||a||_2 (AU45 left out) over the detected rows of extract_aus.

    Args:
        frames: extract_aus rows (``success`` and the AU columns ``AU01_r`` ... ``AU45_r``).
        quantile: which quantile of the amplitudes, in (0, 1].

    Raises:
        InputError: the table lacks the columns, or has no row with a face and finite AUs.
    """
    missing = [c for c in ("success", *EXPRESSION_COLUMNS) if c not in frames.columns]
    if missing:
        raise InputError(f"cannot estimate a_max: the AU table lacks column(s) {', '.join(missing)}")
    aus = frames.loc[frames["success"].astype(bool), list(EXPRESSION_COLUMNS)].to_numpy(float)
    aus = aus[np.isfinite(aus).all(axis=1)]
    if len(aus) == 0:
        raise InputError(f"cannot estimate a_max: none of the {len(frames)} AU rows has a detected face "
                         "with AU intensities")
    return float(np.quantile(np.linalg.norm(aus, axis=1), quantile))


def training_a_max(frames: pd.DataFrame, clips: pd.DataFrame, quantile: float = 0.95) -> float:
    """:func:`empirical_a_max` over the frames of the training clips only (validation and test clips never
    set a reward's scale).

    Args:
        frames: extract_aus rows (``clip_id``, ``success`` and the AU columns).
        clips: the clip table (``clip_id``, ``split``).
        quantile: see :func:`empirical_a_max`.
    """
    training = clips.clip_id[clips.split == "train"]
    return empirical_a_max(frames[frames.clip_id.isin(training)], quantile)


def read_ratings(path: Path | str, known_clips: set[str]) -> tuple[pd.Series, list[str]]:
    """Human ratings R_H from a CSV with header ``clip,rating`` (ratings in [0, 1]).

    The encoding and BOM are handled by :func:`argen.io.read_text_lines`; header names are stripped and
    lower-cased; blank lines are ignored. A line that cannot be read, lacks a field or has extra ones,
    names an unknown clip, holds a rating that is not a finite number or lies outside [0, 1], or rates
    a clip rated before, is skipped with one problem naming the file and line. A clip without a rating
    is not a problem: its R_H is NaN, and the caller decides.

    Args:
        path: the ratings CSV.
        known_clips: clip ids that may be rated.

    Returns:
        (rating by clip id, float Series named ``rating``; problems, one message per bad line).

    Raises:
        InputError: the file cannot be read, is empty, or its header lacks ``clip`` or ``rating``.
    """
    text = read_text_lines(path)
    problems = [f"{path}, line {number}: cannot be read: {why}" for number, why in text.unreadable]
    lines = [(number, line) for number, line in text.lines if line.strip()]
    if not lines:
        raise InputError(f"{path} is empty: expected a header line 'clip,rating'")
    header = [name.strip().lower() for name in next(csv.reader([lines[0][1]]))]
    if "clip" not in header or "rating" not in header:
        raise InputError(f"{path}: the header {lines[0][1].strip()!r} lacks 'clip' or 'rating' "
                         "(expected 'clip,rating')")
    clip_at, rating_at = header.index("clip"), header.index("rating")
    ratings: dict[str, float] = {}
    first_line: dict[str, int] = {}
    for number, line in lines[1:]:
        where = f"{path}, line {number}"
        values = [v.strip() for v in next(csv.reader([line]))]
        if len(values) != len(header):
            problems.append(f"{where}: {len(values)} field(s), the header has {len(header)}: {line.strip()!r}")
            continue
        clip, raw = values[clip_at], values[rating_at]
        if clip not in known_clips:
            problems.append(f"{where}: unknown clip {clip!r}")
            continue
        try:
            rating = float(raw)
        except ValueError:
            rating = math.nan
        if not math.isfinite(rating):
            problems.append(f"{where}: rating {raw!r} of clip {clip!r} is not a number")
        elif not 0.0 <= rating <= 1.0:
            problems.append(f"{where}: rating {raw} of clip {clip!r} is outside [0, 1]")
        elif clip in first_line:
            problems.append(f"{where}: clip {clip!r} rated again (first at line {first_line[clip]})")
        else:
            first_line[clip] = number
            ratings[clip] = rating
    series = pd.Series(ratings, dtype=float, name="rating")
    series.index.name = "clip"
    return series, problems


@dataclass(frozen=True)
class RewardSettings:
    """Parameters of the reward components (module docstring).

    Args:
        alpha: weight of the intra-frame quality Q_m in R_Q (eq. 15).
        sharpness_ref, contrast_ref: normalisations of :func:`frame_quality`.
        face_min_size: smallest face side counted by R_F, as a fraction of the frame's shorter side.
        a_max: largest reasonable AU amplitude ||a||_2 for R_E (:func:`empirical_a_max`).
        active_threshold: AU intensity (0-5) from which an AU counts as active in R_A.
    """

    alpha: float = 0.6
    sharpness_ref: float = 200.0
    contrast_ref: float = 32.0
    face_min_size: float = 0.2
    a_max: float = MAX_INTENSITY
    active_threshold: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if min(self.sharpness_ref, self.contrast_ref, self.a_max) <= 0:
            raise ValueError("sharpness_ref, contrast_ref and a_max must be positive")
        if not 0.0 < self.face_min_size <= 1.0:
            raise ValueError(f"face_min_size must lie in (0, 1], got {self.face_min_size}")


class VideoAuditor:
    """Scores generated videos with every reward component.

    The AU backend gets the frames both in memory and on disk: they are always written as PNG
    (``000000.png``, ...) into a temporary folder, so backends that read files (OpenFace) and those that
    take the decoded images (landmarks) are driven the same way. Each video is its own clip for
    ``finalize`` (a clip-relative backend takes its neutral reference from the video itself).

    Args:
        backend: an AU backend (:class:`argen.extract.AUBackend`).
        cascade: OpenCV's Haar frontal-face cascade (:func:`argen.face.haar_cascade` when None).
        settings: reward parameters.
        scorer: the target-emotion scorer for R_C (None: R_C is not computed, NaN).
    """

    def __init__(self, backend: AUBackend, cascade: cv2.CascadeClassifier | None = None,
                 settings: RewardSettings = RewardSettings(), scorer: EmotionScorer | None = None) -> None:
        self.backend = backend
        self.cascade = haar_cascade() if cascade is None else cascade
        self.settings = settings
        self.scorer = scorer

    def aus(self, video: np.ndarray, clip_id: str = "audit") -> np.ndarray:
        """AU intensities (M, 17) of the video's frames from the backend; NaN rows where it found no face."""
        _check_video(video)
        images = list(video)
        frame_files = [f"{k:06d}.png" for k in range(len(images))]
        with tempfile.TemporaryDirectory(prefix="argen-audit-") as tmp:
            frames_dir = Path(tmp)
            for name, image in zip(frame_files, images):
                if not cv2.imwrite(str(frames_dir / name), image):
                    raise OSError(f"cannot write frame {frames_dir / name}")
            rows = self.backend.process_clip(clip_id, frames_dir, frame_files, images)
            rows = self.backend.finalize(rows)
        rows = rows.sort_values("frame", kind="stable")
        aus = rows[list(INTENSITY_COLUMNS)].to_numpy(dtype=float, copy=True)
        aus[~rows["success"].to_numpy(bool)] = np.nan
        return aus

    def audit(self, video: np.ndarray, prompt_aus: dict[int, float], steps: int, steps_max: int,
              emotion: str = "") -> dict:
        """All reward components of one video.

        Args:
            video: (M, H, W, 3) uint8 BGR.
            prompt_aus: the prompt's AUs {AU: r}.
            steps, steps_max: denoising steps used and the largest of S_T.
            emotion: the target emotion (for R_C).

        Returns:
            {"R_S", "R_Q", "Q_m", "Q_M", "R_F", "R_E", "R_A", "R_C": float, "au_frames_detected": int}.
        """
        s = self.settings
        aus = self.aus(video)
        r_q, q_m, q_big_m = quality_reward(video, s.alpha, s.sharpness_ref, s.contrast_ref)
        r_f, _ = face_reward(video, self.cascade, s.face_min_size)
        return {"R_S": speed_reward(steps, steps_max), "R_Q": r_q, "Q_m": q_m, "Q_M": q_big_m, "R_F": r_f,
                "R_E": expression_reward(aus, s.a_max), "R_A": au_fidelity(aus, prompt_aus, s.active_threshold),
                "R_C": self.scorer.score(aus, emotion) if self.scorer is not None else math.nan,
                "au_frames_detected": int((~np.isnan(aus).any(axis=1)).sum())}

"""The ``warp`` generator (CPU default): an identity frame animated by a piecewise-affine landmark warp.

1. **AU -> landmark model.** From extract_aus rows, each detected frame's landmarks are put in the face
   frame (eyes level, inter-ocular units; :func:`argen.extract.landmarks.face_frame`) and taken relative
   to its clip's least-expressive frame; its AU vector is taken relative to the same frame. A ridge
   least-squares fit gives a (17 x 136) matrix W with displacement = delta_AU @ W.
2. **Trajectory.** The prompt's AUs (r in [0, 1], times 5 for OpenFace's scale) are scaled over the video
   by an onset curve: the regularised incomplete Beta function I_x(a, b) at x = (m - 1) / (M - 1), the
   cumulative form of eq. 12's kernel. (2, 2) rises symmetrically, (3, 2) late, (2, 3) early; frame 1 is
   the identity frame itself.
3. **Render.** Target landmarks are mapped back to pixels with the identity's own similarity transform;
   :func:`argen.generators.render.render_frames` constrains them (lips in order, no folded triangle of its fixed
   canonical mesh), warps the frame piecewise-affinely and paints the mouth interior where the lips part
   further than in the identity frame. With ``size`` the frame is first cropped square around the face
   and resized (:func:`argen.generators.render.fit_to_size`).

The number of diffusion steps T has no effect on this generator; the record says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import betainc

from argen.generators.render import fit_to_size, render_frames
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS, MAX_INTENSITY
from argen.extract import landmarks_of
from argen.extract.landmarks import face_frame
from argen.face import face_axes


@dataclass
class AULandmarkModel:
    """Linear map from AU intensity changes (17) to face-frame landmark displacements (68 x 2)."""

    weights: np.ndarray  # (17, 136): x_0..x_67 then y_0..y_67 displacement per unit AU intensity
    n_frames: int
    ridge: float

    def displacement(self, delta_aus: np.ndarray) -> np.ndarray:
        """Face-frame displacements (n, 68, 2) for AU changes (n, 17)."""
        flat = np.atleast_2d(delta_aus) @ self.weights
        return np.stack([flat[:, :68], flat[:, 68:]], axis=-1)

    def save(self, path: Path) -> None:
        """Store as .npz."""
        np.savez(path, weights=self.weights, n_frames=self.n_frames, ridge=self.ridge)

    @staticmethod
    def load(path: Path) -> "AULandmarkModel":
        """Read a model written by :meth:`save`."""
        data = np.load(path)
        return AULandmarkModel(data["weights"], int(data["n_frames"]), float(data["ridge"]))


def fit_au_landmark_model(frames: pd.DataFrame, ridge: float = 1.0) -> AULandmarkModel:
    """Fit the AU -> landmark model on extract_aus rows (module docstring, step 1).

    Raises:
        ValueError: fewer detected frames than AUs to fit.
    """
    found = frames[frames.success.astype(bool)].reset_index(drop=True)
    if len(found) <= len(INTENSITY_AUS):
        raise ValueError(f"only {len(found)} detected frames: too few to fit the AU-to-landmark model")
    shapes = face_frame(landmarks_of(found))
    aus = found[list(INTENSITY_COLUMNS)].to_numpy(float)
    reference = pd.Series(aus.mean(axis=1)).groupby(found.clip_id).transform("idxmin").to_numpy()
    delta_aus = aus - aus[reference]
    delta_shape = (shapes - shapes[reference]).reshape(len(found), -1, order="F")  # x_0..x_67, y_0..y_67
    gram = delta_aus.T @ delta_aus + ridge * np.eye(len(INTENSITY_AUS))
    weights = np.linalg.solve(gram, delta_aus.T @ delta_shape)
    return AULandmarkModel(weights=weights, n_frames=len(found), ridge=ridge)


def onset_curve(n_frames: int, a: float, b: float) -> np.ndarray:
    """Expression level per output frame: I_x(a, b) at x = (m - 1) / (M - 1), 0 at frame 1, 1 at the last."""
    x = np.linspace(0.0, 1.0, n_frames)
    return betainc(a, b, x)


class WarpGenerator:
    """Animate an identity frame with AU-driven landmark motion (module docstring)."""

    name = "warp"

    def __init__(self, model: AULandmarkModel) -> None:
        self.model = model

    def target_landmarks(self, landmarks: np.ndarray, aus: dict[int, float], levels: np.ndarray) -> np.ndarray:
        """Pixel landmarks (n_frames, 68, 2) for AU intensities ``aus`` (0-5) scaled by ``levels``."""
        apex = np.array([aus.get(au, 0.0) for au in INTENSITY_AUS])
        moves = self.model.displacement(levels[:, None] * apex[None, :])
        _, x_axis, y_axis, iod = face_axes(landmarks)
        return landmarks[None] + (moves * iod) @ np.stack([x_axis, y_axis])

    def generate(self, image: np.ndarray, landmarks: np.ndarray, prompt_aus: dict[int, float],
                 action: tuple[int, float, float], seed: int, n_frames: int = 16,
                 size: int | None = None) -> tuple[np.ndarray, dict]:
        """A video from the identity frame.

        Args:
            image: identity frame, uint8 (H, W, 3).
            landmarks: its 68 landmarks in pixels.
            prompt_aus: the prompt's AUs with r in [0, 1].
            action: (T, a, b) from the policy; T is recorded but has no effect here.
            seed: unused (the warp is deterministic); recorded for the common interface.
            n_frames: output frames, the identity frame first.
            size: output side in pixels (square crop around the face, resized); None keeps the frame as is.

        Returns:
            (frames uint8 (n_frames, H, W, 3), record).
        """
        start = time.perf_counter()
        steps, a, b = action
        if size is not None:
            image, landmarks = fit_to_size(image, landmarks, size)
        levels = onset_curve(n_frames, a, b)
        targets = self.target_landmarks(landmarks, {au: r * MAX_INTENSITY for au, r in prompt_aus.items()}, levels)
        frames, stats = render_frames(image, landmarks, targets)
        record = {"generator": self.name, "steps_requested": int(steps), "steps_run": 0,
                  "steps_note": "T has no effect on the warp generator", "a": float(a), "b": float(b),
                  "seed": int(seed), "levels": [round(float(v), 4) for v in levels], "size": size,
                  "constrained_vertices": int(max(stats["constrained_vertices"])),
                  "max_folded_before": int(max(stats["folded_before"])),
                  "mouth_painted_frames": int(sum(stats["mouth_painted"])),
                  "seconds": round(time.perf_counter() - start, 4)}
        return frames, record

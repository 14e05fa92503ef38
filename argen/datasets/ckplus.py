"""CK+ adapter: the sequences that carry an emotion label, all in the test split.

Layout read::

    root/cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
    root/Emotion/S005/001/S005_001_00000011_emotion.txt     one float, e.g. "   3.0000000e+00"
    root/FACS/S005/001/S005_001_00000011_facs.txt           lines "AU intensity", two floats each

Sequences run from neutral to the peak expression. Only 327 of the 593 sequences have an emotion file;
the others are skipped. Emotion codes follow :data:`argen.emotions.CKPLUS_LABELS`; contempt (2) has no
canonical class and is skipped. FACS codes are kept as (AU, intensity) pairs (intensity 0 means "not
coded"); a sequence without a FACS file gets ``facs=None``. CK+ is used zero-shot (for generation metrics,
never for training), so every clip is in the ``test`` split. Hidden files such as ``.DS_Store`` are ignored.
"""

from __future__ import annotations

import math
from pathlib import Path

from natsort import natsorted

from argen.datasets.base import ClipSource, Skip, require_path
from argen.emotions import CKPLUS_LABELS
from argen.io import read_text_lines


def _visible(folder: Path, pattern: str = "*") -> list[Path]:
    """Entries of ``folder`` matching ``pattern``, hidden ones left out, in natural order."""
    if not folder.is_dir():
        return []
    return natsorted((p for p in folder.glob(pattern) if not p.name.startswith(".")), key=lambda p: p.name)


def _read_facs(path: Path) -> tuple[tuple[int, float], ...]:
    """(AU, intensity) pairs from a ``*_facs.txt`` file.

    Raises:
        ValueError: a line cannot be read or is not an integer AU and a finite intensity >= 0; the message
            names the line.
    """
    text = read_text_lines(path)
    if text.unreadable:
        number, why = text.unreadable[0]
        raise ValueError(f"line {number} of {path.name} cannot be read: {why}")
    pairs = []
    for number, line in text.lines:
        if not line.strip():
            continue
        try:
            au, intensity = (float(v) for v in line.split())
        except ValueError:
            au = intensity = math.nan
        if not (au.is_integer() and au > 0 and math.isfinite(intensity) and intensity >= 0):
            raise ValueError(f"line {number} of {path.name} is not 'AU intensity': {line.strip()!r}")
        pairs.append((int(au), intensity))
    return tuple(pairs)


def _read_sequence(root: Path, images: Path) -> ClipSource | Skip:
    """The clip for one image sequence folder, or the reason it is left out."""
    subject, sequence = images.parent.name, images.name
    clip_id = f"{subject}/{sequence}"
    emotion_files = _visible(root / "Emotion" / subject / sequence, "*_emotion.txt")
    if not emotion_files:
        return Skip(clip_id, "no Emotion label (CK+ labels 327 of 593 sequences)")
    if len(emotion_files) > 1:
        return Skip(clip_id, f"{len(emotion_files)} emotion files, expected one")
    emotion_file = emotion_files[0]
    text = read_text_lines(emotion_file)
    if text.unreadable:
        number, why = text.unreadable[0]
        return Skip(clip_id, f"line {number} of {emotion_file.name} cannot be read: {why}")
    raw_label = " ".join(line.strip() for _, line in text.lines if line.strip())
    try:
        code = float(raw_label)
    except ValueError:
        return Skip(clip_id, f"{emotion_file.name} does not hold a number: {raw_label!r}")
    if not code.is_integer() or int(code) not in CKPLUS_LABELS:
        return Skip(clip_id, f"unknown CK+ emotion code {raw_label!r} in {emotion_file.name} (expected 0..7)")
    label = CKPLUS_LABELS[int(code)]
    if label is None:
        return Skip(clip_id, "contempt (CK+ code 2) has no canonical class")
    facs_files = _visible(root / "FACS" / subject / sequence, "*_facs.txt")
    try:
        facs = _read_facs(facs_files[0]) if facs_files else None
    except ValueError as err:
        return Skip(clip_id, f"unreadable FACS file: {err}")
    return ClipSource(clip_id=clip_id, frames_dir=images, label=label, split="test", subject=subject,
                      source_label=raw_label, facs=facs)


def find_ckplus(root: Path) -> tuple[list[ClipSource], list[Skip]]:
    """Find the emotion-labelled CK+ sequences.

    Args:
        root: the CK+ folder holding ``cohn-kanade-images/`` and ``Emotion/`` (``FACS/`` optional).

    Returns:
        One clip per labelled sequence (subjects and sequences in natural order, all ``test``), and a skip
        for every sequence left out.

    Raises:
        DatasetLayoutError: ``cohn-kanade-images/`` or ``Emotion/`` is missing.
    """
    root = Path(root)
    images_root = require_path(root / "cohn-kanade-images", "CK+ image folder",
                               "expected cohn-kanade-images/S005/001/*.png under the CK+ root")
    require_path(root / "Emotion", "CK+ emotion label folder",
                 "expected Emotion/S005/001/*_emotion.txt under the CK+ root")
    clips: list[ClipSource] = []
    skips: list[Skip] = []
    for subject in _visible(images_root):
        for images in _visible(subject):
            if not images.is_dir():
                continue
            found = _read_sequence(root, images)
            if isinstance(found, Skip):
                skips.append(found)
            else:
                clips.append(found)
    return clips, skips

"""FERV39k adapter: the All_scenes train and test setup.

Layout read::

    root/2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip>/*.jpg
    root/4_setups/All_scenes/train_All.csv
    root/4_setups/All_scenes/test_All.csv

Each list line is ``Scene/Emotion/clip label``, separated by spaces (a comma is accepted too). The label is
an emotion name in any case (``Happy``) or an integer in the canonical order (happy 0, sad 1, neutral 2,
angry 3, surprise 4, disgust 5, fear 6). The lists usually have no header; a first line with neither a
known label nor a ``Scene/Emotion/clip`` path (such as ``path label``) is taken as one. Blank lines are
ignored; the encoding is found as :func:`argen.io.read_text_lines` describes; clip paths are normalised
by :func:`~argen.datasets.base.clip_path`. The list label is trusted where it disagrees with the
``<Emotion>`` folder of the path. A clip listed twice in a list is skipped the second time; a clip in both
lists is an error.
"""

from __future__ import annotations

from pathlib import Path

from argen.datasets.base import ClipSource, DatasetLayoutError, Skip, clip_path, listed_again, read_lines, \
    require_path
from argen.emotions import EMOTIONS, canonical_name, is_emotion_name


def _parse_label(token: str) -> str | None:
    """Canonical name for an emotion name or a canonical index, else None."""
    if token.isdigit():
        index = int(token)
        return EMOTIONS[index] if index < len(EMOTIONS) else None
    return canonical_name(token) if is_emotion_name(token) else None


def _split_line(line: str) -> tuple[str, str] | None:
    """``(path, label)`` from a list line separated by a comma or spaces, or None when malformed."""
    parts = line.rsplit(",", 1) if "," in line else line.rsplit(None, 1)
    if len(parts) != 2:
        return None
    path, label = parts[0].strip(), parts[1].strip()
    return (path, label) if path and label else None


def _is_header(line: str) -> bool:
    """True for a first line such as ``path label``: no known label and no ``Scene/Emotion/clip`` path."""
    fields = _split_line(line)
    return fields is not None and _parse_label(fields[1]) is None and "/" not in fields[0]


def _read_list(root: Path, path: Path, split: str,
               frames_root: Path) -> tuple[list[ClipSource], list[Skip]]:
    """Read one setup list into clips, skipping malformed lines, unknown labels and repeated clips."""
    where = str(path.relative_to(root))
    lines, skips = read_lines(path, where)
    if lines and _is_header(lines[0][1]):
        lines = lines[1:]
    clips: list[ClipSource] = []
    first_line: dict[str, int] = {}
    for number, text in lines:
        text = text.strip()
        fields = _split_line(text)
        if fields is None:
            skips.append(Skip(f"{where}:{number}", f"malformed line {number} of {where}: {text!r} "
                                                   f"(expected 'Scene/Emotion/clip label')"))
            continue
        clip_id, raw_label = clip_path(fields[0]), fields[1]
        label = _parse_label(raw_label)
        if label is None:
            skips.append(Skip(clip_id, f"unknown label {raw_label!r} in {where}, line {number} (expected an "
                                       f"emotion name or 0..{len(EMOTIONS) - 1})"))
            continue
        repeat = listed_again(first_line, clip_id, where, number)
        if repeat:
            skips.append(repeat)
            continue
        clips.append(ClipSource(clip_id=clip_id, frames_dir=frames_root / clip_id, label=label,
                                split=split, subject=None, source_label=raw_label))
    return clips, skips


def find_ferv39k(root: Path) -> tuple[list[ClipSource], list[Skip]]:
    """Find the clips of FERV39k's All_scenes setup.

    Args:
        root: the FERV39k folder holding ``2_ClipsforFaceCrop/`` and ``4_setups/``.

    Returns:
        The clips (train lines then test lines, in file order) and a skip for every line left out.

    Raises:
        DatasetLayoutError: a folder or list is missing, or a clip is listed in both train and test.
    """
    root = Path(root)
    frames_root = require_path(root / "2_ClipsforFaceCrop", "FERV39k frames folder",
                               "expected 2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip>/ under the FERV39k root")
    setups = root / "4_setups" / "All_scenes"
    clips: list[ClipSource] = []
    skips: list[Skip] = []
    for split in ("train", "test"):
        path = require_path(setups / f"{split}_All.csv", f"FERV39k {split} list",
                            "expected 4_setups/All_scenes/train_All.csv and test_All.csv")
        found, left_out = _read_list(root, path, split, frames_root)
        clips += found
        skips += left_out
    train_ids = {c.clip_id for c in clips if c.split == "train"}
    both = sorted({c.clip_id for c in clips if c.split == "test"} & train_ids)
    if both:
        shown = ", ".join(both[:10]) + (f" and {len(both) - 10} more" if len(both) > 10 else "")
        raise DatasetLayoutError(f"FERV39k All_scenes: clip(s) {shown} listed in both train and test")
    return clips, skips

"""Generic folder adapter: clips listed in a CSV file beside them.

Layout read::

    root/<csv_name>             header frames_dir,label[,subject][,split]
    root/<frames_dir>/*.jpg     one folder of frames per row (an absolute frames_dir is used as is)

The CSV is read by :func:`~argen.datasets.base.read_label_csv` (header names in any case or spacing, any
encoding). ``frames_dir`` is normalised (:func:`~argen.datasets.base.clip_path`), so ``a/`` and ``./a`` are
the same clip. ``label`` must be an emotion name; spellings such as ``Happiness`` or ``anger`` are accepted (see
:func:`argen.emotions.canonical_name`). Integer labels are refused because their order differs between
datasets. ``split`` must be ``train`` or ``test``. Without a ``split`` column the splits are drawn from the
seed: by subject when there is a ``subject`` column (all clips of a subject land in the same split; a row
with an empty subject is its own group), otherwise by clip.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from argen.datasets.base import SPLITS, ClipSource, Skip, clip_path, listed_again, read_label_csv, require_path
from argen.emotions import canonical_name, is_emotion_name

_REQUIRED: tuple[str, ...] = ("frames_dir", "label")


def _assign_splits(clips: list[ClipSource], test_fraction: float, seed: int) -> list[ClipSource]:
    """Put about ``test_fraction`` of the groups (subjects, else clips) in test, reproducibly from ``seed``.

    Groups are drawn from their sorted keys, so the draw does not depend on the row order. The number of
    test groups is rounded, and kept between 1 and all groups but one whenever ``test_fraction`` is positive
    and there are at least two groups.
    """
    def group(clip: ClipSource) -> tuple[str, str]:
        return ("subject", clip.subject) if clip.subject else ("clip", clip.clip_id)

    groups = sorted({group(c) for c in clips})
    n_test = round(test_fraction * len(groups))
    if test_fraction > 0 and len(groups) >= 2:
        n_test = min(max(n_test, 1), len(groups) - 1)
    order = np.random.default_rng(seed).permutation(len(groups))
    test_groups = {groups[i] for i in order[:n_test]}
    return [replace(c, split="test" if group(c) in test_groups else "train") for c in clips]


def find_folder(root: Path, csv_name: str, test_fraction: float,
                seed: int) -> tuple[list[ClipSource], list[Skip]]:
    """Find the clips listed in ``root/<csv_name>``.

    Args:
        root: the folder holding the CSV; relative ``frames_dir`` values are relative to it.
        csv_name: the CSV file name, with header ``frames_dir,label`` and optionally ``subject``, ``split``.
        test_fraction: share of subjects (or clips) put in test when the CSV has no ``split`` column.
        seed: seed of that split draw.

    Returns:
        The clips in file order and a skip for every row left out.

    Raises:
        DatasetLayoutError: the CSV is missing or lacks a required column.
    """
    root = Path(root)
    path = require_path(root / csv_name, "clip list CSV", "set data.folder_csv to the CSV under data.root")
    header, rows, skips = read_label_csv(path, csv_name, _REQUIRED,
                                         f"the header needs {','.join(_REQUIRED)}, optionally subject and split")
    has_split = "split" in header
    clips: list[ClipSource] = []
    first_line: dict[str, int] = {}
    for line, cell in rows:
        raw_dir, raw_label = cell["frames_dir"], cell["label"]
        if not raw_dir:
            skips.append(Skip(f"{csv_name}:{line}", f"empty frames_dir in {csv_name}, line {line}"))
            continue
        clip_id = clip_path(raw_dir)
        if not is_emotion_name(raw_label):
            skips.append(Skip(clip_id, f"label {raw_label!r} in {csv_name}, line {line} is not an "
                                       f"emotion name (integer labels are not accepted)"))
            continue
        split = cell["split"].lower() if has_split else "train"  # drawn by _assign_splits below
        if split not in SPLITS:
            skips.append(Skip(clip_id, f"split {cell['split']!r} in {csv_name}, line {line} is not "
                                       f"train or test"))
            continue
        repeat = listed_again(first_line, clip_id, csv_name, line)
        if repeat:
            skips.append(repeat)
            continue
        # Joining an absolute frames_dir onto root gives frames_dir itself.
        clips.append(ClipSource(clip_id=clip_id, frames_dir=root / clip_id, label=canonical_name(raw_label),
                                split=split, subject=cell.get("subject") or None, source_label=raw_label))
    if not has_split:
        clips = _assign_splits(clips, test_fraction, seed)
    return clips, skips

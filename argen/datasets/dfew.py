"""DFEW adapter: one fold's single-labelled train and test clips.

Layout read (``root`` is the folder holding ``Clip/`` and ``EmoLabel_DataSplit/``)::

    root/Clip/<frames_variant>/00001/1.jpg 2.jpg ... 10.jpg ...
    root/EmoLabel_DataSplit/train(single-labeled)/set_1.csv ... set_5.csv
    root/EmoLabel_DataSplit/test(single-labeled)/set_1.csv ... set_5.csv

``frames_variant`` is ``clip_224x224`` (all frames; really 256x256) or ``clip_224x224_16f`` (16 frames). The
split folders are also spelled ``(single_labeled)``; both spellings are accepted, independently for train
and test (the split file is looked for in each). Each split file has the header ``video_name,label`` (in
any case, spacing or encoding: see :func:`~argen.datasets.base.read_label_csv`): ``video_name`` is the clip
number, written with or without its zero padding to 5 digits, and ``label`` is 1-based (1 happy ... 7 fear,
see :data:`argen.emotions.DFEW_LABELS`). A clip listed twice in a split file is skipped the second time; a clip
in both the train and test file of a fold is an error.
"""

from __future__ import annotations

from pathlib import Path

from argen.datasets.base import ClipSource, DatasetLayoutError, Skip, listed_again, read_label_csv, require_path
from argen.emotions import DFEW_LABELS

_SPLIT_SPELLINGS: tuple[str, ...] = ("{split}(single-labeled)", "{split}(single_labeled)")


def _split_file(root: Path, split: str, fold: int) -> Path:
    """The ``set_<fold>.csv`` of ``split``, in whichever spelling of the split folder holds it."""
    labels = require_path(root / "EmoLabel_DataSplit", "DFEW label folder",
                          "expected EmoLabel_DataSplit/ under the DFEW root")
    candidates = [labels / spelling.format(split=split) / f"set_{fold}.csv" for spelling in _SPLIT_SPELLINGS]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise DatasetLayoutError(f"DFEW {split} split file not found: neither {candidates[0]} nor "
                                 f"{candidates[1]} exists (DFEW folds are set_1..set_5)")
    return found


def _read_split(root: Path, split: str, fold: int,
                frames_root: Path) -> tuple[list[ClipSource], list[Skip]]:
    """Read one split file into clips, skipping unknown labels and repeated video names."""
    path = _split_file(root, split, fold)
    where = str(path.relative_to(root))
    _, rows, skips = read_label_csv(path, where, ("video_name", "label"), "expected the header video_name,label")
    clips: list[ClipSource] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        name, raw_label = row["video_name"], row["label"]
        if not name.isdigit():
            skips.append(Skip(f"{where}:{line}", f"video_name {name!r} in {where}, line {line} is not "
                                                 f"a clip number"))
            continue
        clip_id = f"{int(name):05d}"
        label = DFEW_LABELS.get(int(raw_label)) if raw_label.isdigit() else None
        if label is None:
            skips.append(Skip(clip_id, f"unknown label {raw_label!r} in {where}, line {line} "
                                       f"(DFEW labels are 1..7)"))
            continue
        repeat = listed_again(first_line, clip_id, where, line)
        if repeat:
            skips.append(repeat)
            continue
        clips.append(ClipSource(clip_id=clip_id, frames_dir=frames_root / clip_id, label=label,
                                split=split, subject=None, source_label=raw_label))
    return clips, skips


def find_dfew(root: Path, fold: int,
              frames_variant: str = "clip_224x224") -> tuple[list[ClipSource], list[Skip]]:
    """Find the clips of one DFEW fold.

    Args:
        root: the DFEW folder holding ``Clip/`` and ``EmoLabel_DataSplit/``.
        fold: which ``set_<fold>.csv`` to read (1..5).
        frames_variant: the folder under ``Clip/`` holding the frame folders.

    Returns:
        The clips (train rows then test rows, in file order) and a skip for every row left out.

    Raises:
        DatasetLayoutError: a folder or split file is missing, a split file lacks its columns, or a clip
            is listed in both train and test of the fold.
    """
    root = Path(root)
    frames_root = require_path(root / "Clip" / frames_variant, "DFEW frames folder",
                               "expected Clip/clip_224x224/ or Clip/clip_224x224_16f/ under the DFEW root")
    train, train_skips = _read_split(root, "train", fold, frames_root)
    test, test_skips = _read_split(root, "test", fold, frames_root)
    both = sorted({c.clip_id for c in train} & {c.clip_id for c in test})
    if both:
        shown = ", ".join(both[:10]) + (f" and {len(both) - 10} more" if len(both) > 10 else "")
        raise DatasetLayoutError(f"DFEW fold {fold}: clip(s) {shown} listed in both train and test")
    return train + test, train_skips + test_skips

"""How many clips the augmentation adds per scarce emotion: the paper's table 7 scaled to a dataset.

In the paper (table 7) ARGen adds surprise 180, disgust 162 and fear 141 clips to a DFEW fold's training
split, whose clips of those emotions number 1470, 145 and 905 (2520 together). ``generate.per_class:
table7`` keeps the paper's share of the scarce training clips (483 / 2520 = 19.2 %) and its proportions
180 : 162 : 141: the count of emotion e is ``max(1, round(factor * added_e * n / 2520))``, n the training
split's clips of those three emotions. Only the training split's labels are read, never a test clip. The
``generate`` stage draws that many generated clips, and the ``oversample`` recognition set repeats that
many real training clips.

What the generated set holds per emotion (its clips whose status is ok, :func:`generated_counts`) is written
by ``generate`` to ``data/generated/counts.json``; the ``oracle`` stage renders as many and depends on that
file alone, so a change to the generated clips that keeps their counts (another policy, reward or prompt
mode) does not re-render the oracle.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from argen.errors import InputError

#: The paper's table 7: clips ARGen adds to a DFEW fold's training split ("add_all"), and that split's clips of
#: the same emotions.
TABLE7_ADDED: dict[str, int] = {"surprise": 180, "disgust": 162, "fear": 141}
TABLE7_TRAIN: dict[str, int] = {"surprise": 1470, "disgust": 145, "fear": 905}


def table7_counts(train_labels: pd.Series, factor: float = 1.0) -> dict[str, int]:
    """Clips to generate per scarce emotion: table 7 scaled to this training split (module docstring).

    Args:
        train_labels: the label of every clip of the training split (test clips must not be passed).
        factor: multiplies every count (1 = the paper's share).

    Returns:
        {emotion: count} for surprise, disgust and fear.
    """
    scarce_train = int(train_labels.isin(list(TABLE7_ADDED)).sum())
    total_train = sum(TABLE7_TRAIN.values())
    return {e: max(1, int(round(factor * added * scarce_train / total_train))) for e, added in TABLE7_ADDED.items()}


def resolve_per_class(per_class: dict[str, int] | str, clips: pd.DataFrame, factor: float = 1.0) -> dict[str, int]:
    """``generate.per_class`` as counts: itself, or with ``table7`` :func:`table7_counts` of ``clips``' training
    split (a clip table with ``label`` and ``split``)."""
    if per_class != "table7":
        return dict(per_class)
    return table7_counts(clips.label[clips.split == "train"], factor)


def generated_counts(index: pd.DataFrame) -> dict[str, int]:
    """Clips per emotion a generated set holds: the rows of its index whose status is ok, emotions sorted."""
    ok = index[index.status.str.startswith("ok")]
    return {emotion: int(n) for emotion, n in ok.emotion.value_counts().sort_index().items()}


def read_generated_counts(path: Path) -> dict[str, int]:
    """The counts ``generate`` wrote to ``path`` (:func:`generated_counts`).

    Raises:
        InputError: the file is missing, is not JSON, or is not an object of emotion -> whole number >= 0.
    """
    if not path.is_file():
        raise InputError(f"{path} not found: run the generate stage first (dvc repro generate)")
    try:
        counts = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not JSON ({err}): run `dvc repro generate` again") from None
    if not isinstance(counts, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in counts.items()):
        raise InputError(f"{path}: expected {{emotion: clips}} with whole numbers >= 0, got {counts!r:.200}: "
                         "run `dvc repro generate` again")
    return counts

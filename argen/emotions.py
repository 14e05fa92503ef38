"""The canonical emotion order and the label maps of each supported dataset.

Every table the pipeline writes uses the canonical order below (DFEW's order shifted to 0-based, which is
also FERV39k's): happy 0, sad 1, neutral 2, angry 3, surprise 4, disgust 5, fear 6.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

#: The paper's scarce classes (sec. 3): low recall and far fewer than 1/7 of the samples.
DEFAULT_SCARCE: tuple[str, ...] = ("surprise", "disgust", "fear")

#: Spellings met in dataset folders and label files, mapped to canonical names.
_ALIASES: dict[str, str] = {
    "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "neutral": "neutral",
    "angry": "angry", "anger": "angry",
    "surprise": "surprise", "surprised": "surprise",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "fearfulness": "fear",
}

#: DFEW ``label`` column: 1-based, 1 happy ... 7 fear.
DFEW_LABELS: dict[int, str] = {i + 1: name for i, name in enumerate(EMOTIONS)}

#: CK+ ``*_emotion.txt`` codes. Contempt (2) has no canonical class.
CKPLUS_LABELS: dict[int, str | None] = {
    0: "neutral", 1: "angry", 2: None, 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise",
}


def canonical_name(label: str) -> str:
    """Map a spelling such as ``Happiness`` or ``anger`` to its canonical emotion name.

    Raises:
        ValueError: the spelling is not a known emotion; the message lists the accepted names.
    """
    key = str(label).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown emotion label {label!r}; expected one of {', '.join(EMOTIONS)}")
    return _ALIASES[key]


def is_emotion_name(label: str) -> bool:
    """True when ``label`` is a known spelling of a canonical emotion."""
    return str(label).strip().lower() in _ALIASES

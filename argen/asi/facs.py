"""The FACS reference table (package data ``argen/data/facs.yaml``, sources named in the file).

Holds the AU vocabulary (Facial-R1's list plus AU45), a plain-words phrase per AU for descriptions, the
emotions Facial-R1 associates with each AU, and the EMFACS prototypes and major variants per emotion.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml

from argen.emotions import EMOTIONS

#: FACS intensity grades A-E mapped to r in [0, 1]; an AU without a grade is taken as C.
GRADE_TO_R: dict[str, float] = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}


@dataclass(frozen=True)
class ActionUnit:
    """One FACS action unit: number, FACS name, appearance phrase, associated emotions (Facial-R1)."""

    number: int
    name: str
    phrase: str
    emotions: tuple[str, ...]

    @property
    def code(self) -> str:
        """Zero-padded code as OpenFace writes it, e.g. ``AU01``."""
        return f"AU{self.number:02d}"


@dataclass(frozen=True)
class Prototype:
    """An EMFACS AU combination for an emotion, with per-AU intensity r in [0, 1]."""

    emotion: str
    intensities: dict[int, float]
    kind: str
    source: str


@dataclass(frozen=True)
class FacsTable:
    """The AU vocabulary and the emotion prototypes."""

    aus: dict[int, ActionUnit]
    prototypes: tuple[Prototype, ...]

    def prototypes_of(self, emotion: str) -> list[Prototype]:
        """The prototype and variants of ``emotion``."""
        return [p for p in self.prototypes if p.emotion == emotion]

    def associated_aus(self, emotion: str) -> list[int]:
        """AUs Facial-R1's Table 11 lists as possible for ``emotion`` (generic knowledge, no data)."""
        return [n for n, au in self.aus.items() if emotion in au.emotions]


def _parse_combination(text: str) -> dict[int, float]:
    """``"1 2 5B 26"`` -> {1: 0.6, 2: 0.6, 5: 0.4, 26: 0.6}."""
    out = {}
    for token in text.split():
        match = re.fullmatch(r"(\d+)([A-E]?)", token)
        if not match:
            raise ValueError(f"facs.yaml: bad AU token {token!r} in {text!r}")
        out[int(match.group(1))] = GRADE_TO_R[match.group(2) or "C"]
    return out


@functools.lru_cache(maxsize=1)
def load_facs() -> FacsTable:
    """Read and check the packaged FACS table."""
    raw = yaml.safe_load(resources.files("argen").joinpath("data/facs.yaml").read_text())
    aus = {int(n): ActionUnit(int(n), v["name"], v["phrase"], tuple(v["emotions"])) for n, v in raw["aus"].items()}
    prototypes = []
    for emotion, entries in raw["prototypes"].items():
        if emotion not in EMOTIONS:
            raise ValueError(f"facs.yaml: unknown emotion {emotion!r}")
        for entry in entries:
            intensities = _parse_combination(entry["aus"])
            unknown = set(intensities) - set(aus)
            if unknown:
                raise ValueError(f"facs.yaml: {emotion} uses AUs missing from the table: {sorted(unknown)}")
            prototypes.append(Prototype(emotion, intensities, entry["kind"], entry["source"]))
    return FacsTable(aus=aus, prototypes=tuple(prototypes))

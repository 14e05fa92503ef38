"""The hallucination check of generated prompts (paper supp. G; Facial-R1's verifiable AU reward).

A prompt must follow figure 4's format ``Identity: ...; Expression: <emotion>; <changes (AU codes)>``.
Every AU code it cites is checked:

* **invalid**: not a FACS action unit (``AU98``, ``AU3``);
* **contradictory**: a FACS AU found in none of the target emotion's knowledge-base entries;
* **supported**: otherwise.

A prompt is hallucinated when it cites an invalid or contradictory AU. AU precision, recall and F1 are
measured against the AUs that were retrieved for it (as Facial-R1 scores AU F1 against ground truth);
they are undefined (NaN) when nothing was retrieved.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from argen.asi.facs import FacsTable
from argen.emotions import canonical_name, is_emotion_name

AU_CODE = re.compile(r"\bAU\s?0*(\d{1,3})\b", re.IGNORECASE)
PROMPT_FORMAT = re.compile(r"Identity:\s*(?P<identity>[^;]+?)\s*;\s*Expression:\s*(?P<emotion>[^;]+?)\s*;\s*"
                           r"(?P<changes>.+)", re.IGNORECASE | re.DOTALL)
AU_TAG = re.compile(r"\s*\((?:\s*AU\s?\d{1,3}\s*[,/+]?\s*)+\)", re.IGNORECASE)


@dataclass
class Verification:
    """What the check found in one prompt."""

    format_ok: bool
    emotion_ok: bool
    cited: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    contradictory: list[int] = field(default_factory=list)
    precision: float = math.nan
    recall: float = math.nan
    f1: float = math.nan

    @property
    def hallucinated(self) -> bool:
        """Cites an AU that is not FACS or not in the target emotion's knowledge base."""
        return bool(self.invalid or self.contradictory)

    @property
    def usable(self) -> bool:
        """Well formed, the right emotion, at least two AUs cited, none hallucinated (figure 4's rule)."""
        return self.format_ok and self.emotion_ok and len(set(self.cited)) >= 2 and not self.hallucinated


def cited_aus(text: str) -> list[int]:
    """AU numbers cited in ``text``, in order of first appearance."""
    return list(dict.fromkeys(int(m) for m in AU_CODE.findall(text)))


def verify(text: str, emotion: str, allowed: set[int], retrieved: set[int], facs: FacsTable) -> Verification:
    """Check one generated prompt against the FACS table and the target emotion's knowledge base.

    Args:
        text: the VLM's (or template's) raw output.
        emotion: target emotion (canonical name).
        allowed: union of the AUs of the emotion's knowledge-base entries.
        retrieved: AUs of the entries retrieved for this prompt (empty without retrieval).
        facs: the FACS table (the valid AU vocabulary).
    """
    match = PROMPT_FORMAT.search(text or "")
    stated = match.group("emotion").strip().split()[0].strip(".,") if match else ""
    emotion_ok = bool(match) and is_emotion_name(stated) and canonical_name(stated) == emotion
    cited = cited_aus(match.group("changes")) if match else cited_aus(text or "")
    invalid = [au for au in cited if au not in facs.aus]
    contradictory = [au for au in cited if au in facs.aus and au not in allowed]
    result = Verification(format_ok=bool(match), emotion_ok=emotion_ok, cited=cited, invalid=invalid,
                          contradictory=contradictory)
    if retrieved:
        hits = len(set(cited) & retrieved)
        result.precision = hits / len(cited) if cited else 0.0
        result.recall = hits / len(retrieved)
        total = result.precision + result.recall
        result.f1 = 2 * result.precision * result.recall / total if total else 0.0
    return result


def drop_aus(text: str, bad: set[int]) -> str:
    """Remove the clauses of the changes part that cite any AU in ``bad`` (clauses split at commas)."""
    match = PROMPT_FORMAT.search(text)
    if not match:
        return text
    clauses = [c.strip() for c in re.split(r",|;|\band\b", match.group("changes").rstrip(". ")) if c.strip()]
    kept = [c for c in clauses if not set(cited_aus(c)) & bad]
    return f"Identity: {match.group('identity')}; Expression: {match.group('emotion')}; {', '.join(kept)}."


def strip_au_tags(text: str) -> str:
    """The prompt the generator sees (X_T): AU codes in brackets removed, spacing tidied."""
    cleaned = AU_TAG.sub("", text)
    cleaned = AU_CODE.sub("", cleaned)
    cleaned = re.sub(r"\s+([,.;])", r"\1", cleaned)
    return re.sub(r"\s{2,}", " ", cleaned).strip()

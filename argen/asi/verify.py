"""The hallucination check of generated prompts (paper supp. G; Facial-R1's verifiable AU reward).

A prompt must follow figure 4's format ``Identity: ...; Expression: <emotion>; <changes (AU codes)>``.
Every AU code it cites is checked:

* **invalid**: not a FACS action unit (``AU98``, ``AU3``);
* **contradictory**: a FACS AU found in none of the target emotion's knowledge-base entries;
* **supported**: otherwise.

A prompt is hallucinated when it cites an invalid or contradictory AU. AU precision, recall and F1 are
measured against the AUs that were retrieved for it (as Facial-R1 scores AU F1 against ground truth);
they are undefined (NaN) when nothing was retrieved.

What is accepted (real VLMs do not write the format to the letter; each case is tested in test_asi.py):

* **Markup**: Markdown bold/italic/code marks (``**Expression:** fear``, ``*fear*``, ``_fear_``, backticks)
  are removed before parsing; so are quotes around the line and trailing spaces.
* **Preamble and notes**: text before ``Identity:`` (``Sure! Here is the sentence:``) is ignored; the
  changes part ends at the end of its line, so notes on later lines are neither parsed nor cited.
* **Labels**: ``Identity`` and ``Expression`` in any letter case; fields separated by ``;`` or by line
  breaks; an optional ``Changes:`` / ``Specific changes:`` label before the changes.
* **Emotion**: the ``Expression`` field may qualify the emotion (``slight fear``, ``a fearful look``,
  ``scared``); it is right when it names the target emotion (canonical names, :mod:`argen.emotions`'
  spellings, and the few everyday synonyms in :data:`EMOTION_WORDS`) and no other emotion
  (``fear mixed with surprise`` is rejected as ambiguous).
* **AU codes**: ``AU12``, ``AU 12``, ``AU-12``, ``AU012``, ``au12``, an intensity letter (``AU12C``), and
  chains joined by ``+``, ``/`` or ``&`` with or without the prefix (``AU1+2`` cites 1 and 2, ``AU01/AU02``
  cites 1 and 2). Bare numbers after a comma (``AU1, 2``) are not codes. Lists in brackets (``(AU1+2)``)
  are removed from X_T like single codes.

Anything else (no ``Identity:`` or ``Expression:`` label) is a format failure, with its AU codes still read
from the whole text for the hallucination counts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from argen.asi.facs import FacsTable
from argen.emotions import EMOTIONS, canonical_name, is_emotion_name

_ONE_AU = r"AU\s*[-#]?\s*0*(?:\d{1,3})(?:[A-E](?![a-z]))?"
_NEXT_AU = r"\s*[+/&]\s*(?:AU\s*[-#]?\s*)?0*\d{1,3}(?:[A-E](?![a-z]))?"
#: One AU citation: a code, or a chain ``AU1+2``, ``AU01/AU02`` (the numbers are read by AU_NUMBER).
AU_CODE = re.compile(rf"\b{_ONE_AU}(?:{_NEXT_AU})*\b", re.IGNORECASE)
AU_NUMBER = re.compile(r"(\d{1,3})")
_SEP = r"\s*(?:;|\n)\s*"
PROMPT_FORMAT = re.compile(
    rf"\bIdentity\s*:\s*(?P<identity>[^;\n]+?){_SEP}Expression\s*:\s*(?P<emotion>[^;\n]+?){_SEP}"
    r"(?:(?:specific\s+)?changes\s*:\s*)?(?P<changes>[^\n]+)", re.IGNORECASE)
AU_TAG = re.compile(rf"\s*\(\s*(?:{_ONE_AU}(?:{_NEXT_AU})*\s*[,;]?\s*)+\)", re.IGNORECASE)
_MARKUP = re.compile(r"\*+|`+|(?<!\w)_+|_+(?!\w)")

#: Everyday words for the emotions that :mod:`argen.emotions` does not list (it maps dataset labels).
EMOTION_WORDS: dict[str, str] = {
    "scared": "fear", "afraid": "fear", "frightened": "fear", "terrified": "fear", "fright": "fear",
    "terror": "fear", "anxious": "fear", "anxiety": "fear",
    "astonished": "surprise", "astonishment": "surprise", "amazed": "surprise", "shocked": "surprise",
    "shock": "surprise",
    "revulsion": "disgust", "revolted": "disgust", "repulsed": "disgust", "disgusting": "disgust",
    "mad": "angry", "furious": "angry", "rage": "angry",
    "sorrow": "sad", "unhappy": "sad", "happiness": "happy", "joyful": "happy",
}


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


def _unmark(text: str) -> str:
    """``text`` without Markdown emphasis/code marks (trailing spaces need nothing: fields are stripped)."""
    return _MARKUP.sub("", text or "")


def _parse(text: str) -> re.Match | None:
    """The figure-4 fields of ``text`` (markup removed), or None."""
    return PROMPT_FORMAT.search(_unmark(text))


def _field(value: str) -> str:
    """A field with surrounding quotes, spaces and end punctuation removed."""
    return value.strip().strip("\"'“”").strip().rstrip(".").strip()


def emotions_named(phrase: str) -> set[str]:
    """Canonical emotions named by the words of ``phrase`` (``slight fear`` -> {fear})."""
    names = set()
    for word in re.findall(r"[a-z]+", phrase.lower()):
        if is_emotion_name(word):
            names.add(canonical_name(word))
        elif word in EMOTION_WORDS:
            names.add(EMOTION_WORDS[word])
    return names & set(EMOTIONS)


def cited_aus(text: str) -> list[int]:
    """AU numbers cited in ``text`` (chains such as ``AU1+2`` give each number), in order of first appearance."""
    numbers = (int(n) for m in AU_CODE.finditer(_unmark(text)) for n in AU_NUMBER.findall(m.group()))
    return list(dict.fromkeys(numbers))


def verify(text: str, emotion: str, allowed: set[int], retrieved: set[int], facs: FacsTable) -> Verification:
    """Check one generated prompt against the FACS table and the target emotion's knowledge base.

    Args:
        text: the VLM's (or template's) raw output.
        emotion: target emotion (canonical name).
        allowed: union of the AUs of the emotion's knowledge-base entries.
        retrieved: AUs of the entries retrieved for this prompt (empty without retrieval).
        facs: the FACS table (the valid AU vocabulary).
    """
    match = _parse(text)
    emotion_ok = bool(match) and emotions_named(match.group("emotion")) == {emotion}
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


def canonical_line(text: str) -> str:
    """``text`` rewritten as one figure-4 line (preamble, markup, labels and later lines gone); as is if malformed."""
    match = _parse(text)
    if not match:
        return text
    changes = _field(match.group("changes"))
    return f"Identity: {_field(match.group('identity'))}; Expression: {_field(match.group('emotion'))}; {changes}."


def drop_aus(text: str, bad: set[int]) -> str:
    """Remove the clauses of the changes part that cite any AU in ``bad`` (clauses split at commas)."""
    match = _parse(text)
    if not match:
        return text
    clauses = [c.strip() for c in re.split(r",|;|\band\b", _field(match.group("changes"))) if c.strip()]
    kept = [c for c in clauses if not set(cited_aus(c)) & bad]
    return (f"Identity: {_field(match.group('identity'))}; Expression: {_field(match.group('emotion'))}; "
            f"{', '.join(kept)}.")


def strip_au_tags(text: str) -> str:
    """The prompt the generator sees (X_T): the canonical line with AU codes in brackets removed, spacing tidied."""
    cleaned = AU_TAG.sub("", canonical_line(text))
    cleaned = AU_CODE.sub("", cleaned)
    cleaned = re.sub(r"\(\s*\)", "", cleaned)
    cleaned = re.sub(r"\s+([,.;])", r"\1", cleaned)
    return re.sub(r"\s{2,}", " ", cleaned).strip()

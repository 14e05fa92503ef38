"""The scarce-emotion AU knowledge base K = {(A_i, c_i, d_i, r_i)} (paper eq. 7).

Two sources are merged per scarce emotion:

* **literature**: the EMFACS prototype and major variants from the packaged FACS table;
* **data**: AU combinations observed in the scarce training clips D_s. For each clip the apex frame is
  the detected frame with the highest mean AU intensity; an AU is active there when its intensity is at
  least ``active_threshold`` (0-5 scale). AU combinations of 2-4 active AUs are counted over the clips
  (itemsets, as in frequent-itemset mining); those present in at least ``min_support`` of the emotion's
  clips (and at least 2 clips) are kept, most frequent first, skipping a combination that is a subset of
  an already kept one with the same support (it adds nothing). Per-AU intensity r is the mean apex
  intensity of that AU over the supporting clips, divided by 5. AU45 (blink) is no expression and is left
  out.

A data combination identical to a literature one merges into a single ``literature+data`` entry with the
data's r and support. Each entry's description d_i joins the AUs' appearance phrases, each with its
intensity adverb and AU code: ``inner brows raised strongly (AU01), jaw dropped slightly (AU26)``.

**Checked against the training split** (``au_kb.data_check``, on by default; :func:`check_against_data`). The
literature describes the emotions in general; the AU extraction of a given dataset may see them otherwise
(on the demo, the landmark estimator finds real fear's brows drawn together and barely raised, while raised
inner and outer brows, AU1 + AU2, are surprise's). A generator conditioned on an entry makes the emotion
whose clips show its AUs, so an entry whose AUs the training clips of another emotion show more often would
make that other emotion. Per entry and per emotion of the training split (all of them, neutral included),
the score is the mean over the entry's AUs of the share of that emotion's clips with the AU active at the
apex (``active_threshold``, as above); the entry's *closest emotion* has the highest score (a tie keeps the
entry's own). Entries whose closest emotion is another are left out of the knowledge base (so neither
retrieved nor accepted by the hallucination check) and listed with their scores in the stage's report. An
emotion none of whose entries passes is left without an entry: its prompts name the emotion and cite no AU
(:mod:`argen.asi.prompts`), which the generator, conditioned on the prompt's words, still renders as the
emotion. (Keeping its least contradicted entry instead made the 600-clip demo's fear prompts cite AU6 + AU14
+ AU20, which the training clips show in happy faces: the previews smiled.) Entries citing no AU the
extraction measures (AU16, AU27 alone) cannot be checked and are kept. ``data_check: false`` is the paper's
plain union. Measured on the 3000-clip evidence demo (docs/generators.md): fear's literature entries made
clips judged fear in 0-22 % of cases (surprise otherwise), its one entry that passed the check 27-36 %, and
fear's prompt without AU codes 36-39 %.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow as pa

from argen.asi.facs import FacsTable
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS, MAX_INTENSITY
from argen.errors import InputError
from argen.io import read_parquet_metadata, read_table

KB_SCHEMA = pa.schema([
    ("entry_id", pa.string()), ("emotion", pa.string()), ("aus", pa.list_(pa.int16())),
    ("intensities", pa.list_(pa.float32())), ("description", pa.string()), ("source", pa.string()),
    ("kind", pa.string()), ("support", pa.int32()), ("support_fraction", pa.float32()),
])

#: AUs that can enter a data-driven combination (OpenFace's intensity AUs without the blink).
EXPRESSION_AUS: tuple[int, ...] = tuple(au for au in INTENSITY_AUS if au != 45)

#: Upper bounds of r for each intensity adverb (eq. 9's modifier(r)), checked in order.
MODIFIERS: tuple[tuple[float, str], ...] = ((0.25, "slightly"), (0.5, "moderately"), (0.75, "clearly"),
                                            (1.01, "strongly"))


def modifier(r: float) -> str:
    """The intensity adverb for r in [0, 1] (eq. 9)."""
    for bound, word in MODIFIERS:
        if r < bound:
            return word
    return MODIFIERS[-1][1]


def _adverb_midpoints() -> dict[str, float]:
    """r read back from an intensity adverb: the middle of the adverb's band in eq. 9's modifier map."""
    bounds = [0.0] + [min(upper, 1.0) for upper, _ in MODIFIERS]
    return {word: round((lo + hi) / 2, 3) for lo, hi, (_, word) in zip(bounds, bounds[1:], MODIFIERS)}


ADVERB_R: dict[str, float] = _adverb_midpoints()
CLAUSE_AU = re.compile(r"(?P<text>[^,;()]*?)\(\s*AU\s?0*(?P<au>\d{1,2})\s*\)", re.IGNORECASE)


def prompt_aus_from_line(line: str) -> dict[int, float]:
    """AUs and their r from a verified raw line: ``jaw dropped clearly (AU26)`` -> {26: 0.625}.

    A clause without a known adverb gets the middle of the scale, 0.5.
    """
    out = {}
    for match in CLAUSE_AU.finditer(line):
        words = match.group("text").lower().split()
        out[int(match.group("au"))] = next((ADVERB_R[w] for w in reversed(words) if w in ADVERB_R), 0.5)
    return out


def au_phrase(au: int, r: float, facs: FacsTable) -> str:
    """One AU in words with its adverb and code: ``upper eyelids raised clearly (AU05)``."""
    return f"{facs.aus[au].phrase} {modifier(r)} ({facs.aus[au].code})"


def describe(intensities: dict[int, float], facs: FacsTable) -> str:
    """Description d_i of an AU combination, AUs in numeric order."""
    return ", ".join(au_phrase(au, intensities[au], facs) for au in sorted(intensities))


def apex_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """Per clip, the detected frame with the highest mean AU intensity (clips without a face are absent)."""
    found = frames[frames.success.astype(bool)]
    strength = found[list(INTENSITY_COLUMNS)].mean(axis=1)
    return found.loc[strength.groupby(found.clip_id, sort=False).idxmax()].reset_index(drop=True)


def knowledge_base_problems(kb: pd.DataFrame, emotions: list[str], facs: FacsTable,
                            built_for: list[str] | None = None) -> list[str]:
    """Why ``kb`` cannot serve prompts about ``emotions``; empty when it can.

    Checked: every emotion has an entry, or the knowledge base was built for it (``built_for``, the au_kb
    stage's scarce classes: the data check may leave an emotion without entries, and its prompts then cite
    no AU); every AU is in the FACS table; every entry has one intensity per AU.
    """
    problems = [f"no entry for {e} (decompose.scarce_classes lists it)" for e in emotions
                if not (kb.emotion == e).any() and e not in (built_for or [])]
    unknown = sorted({int(au) for aus in kb.aus for au in aus} - set(facs.aus))
    if unknown:
        problems.append(f"AU(s) {', '.join(map(str, unknown))} not in the FACS table")
    uneven = kb.entry_id[kb.aus.map(len) != kb.intensities.map(len)].tolist()
    if uneven:
        problems.append(f"entries {', '.join(uneven[:5])} do not have one intensity per AU")
    return problems


def read_knowledge_base(path: Path, emotions: list[str], facs: FacsTable) -> pd.DataFrame:
    """The au_kb stage's knowledge base at ``path``, checked to serve prompts about ``emotions``.

    Raises:
        InputError: the file is missing or unreadable, or :func:`knowledge_base_problems` finds a problem.
    """
    kb = read_table(path, KB_SCHEMA.names, "au_kb")
    built_for = read_parquet_metadata(path).get("scarce", "").split()
    problems = knowledge_base_problems(kb, emotions, facs, built_for)
    if problems:
        raise InputError(f"{path}: {'; '.join(problems)} (run `dvc repro au_kb`)")
    return kb


def unusable_clips(knowledge: pd.DataFrame, apex: pd.DataFrame, scarce: list[str]) -> pd.DataFrame:
    """The knowledge clips (clip_id, label) that add nothing to the knowledge base, as (item, reason) rows."""
    rows = []
    for clip in knowledge.itertuples():
        if clip.label not in scarce:
            rows.append((clip.clip_id, f"label {clip.label} is not one of decompose.scarce_classes {scarce}"))
        elif clip.clip_id not in set(apex.clip_id):
            rows.append((clip.clip_id, "no face found in any frame by extract_aus, so no apex frame"))
    return pd.DataFrame(rows, columns=["item", "reason"])


def frequent_combinations(active: list[frozenset[int]], min_support: float, max_entries: int,
                          sizes: tuple[int, int] = (2, 4)) -> list[tuple[frozenset[int], int]]:
    """Frequent AU combinations among the clips' active-AU sets, most supported first (module docstring)."""
    counts: Counter[frozenset[int]] = Counter()
    for aus in active:
        for size in range(sizes[0], min(sizes[1], len(aus)) + 1):
            counts.update(frozenset(c) for c in combinations(sorted(aus), size))
    needed = max(2, int(np.ceil(min_support * len(active))))
    ranked = sorted((c for c in counts.items() if c[1] >= needed), key=lambda c: (-c[1], -len(c[0]), sorted(c[0])))
    kept: list[tuple[frozenset[int], int]] = []
    for combo, support in ranked:
        if any(combo < other and support == other_support for other, other_support in kept):
            continue
        kept.append((combo, support))
        if len(kept) == max_entries:
            break
    return kept


def build_knowledge_base(apex: pd.DataFrame, labels: pd.Series, scarce: list[str], facs: FacsTable,
                         active_threshold: float, min_support: float, max_data_entries: int,
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge literature prototypes with combinations observed in the scarce clips.

    Args:
        apex: apex frame rows (:func:`apex_frames`) of the scarce training clips.
        labels: emotion of each clip, indexed by clip_id.
        scarce: the scarce emotions.
        facs: the FACS table.
        active_threshold, min_support, max_data_entries: see the module docstring.

    Returns:
        (knowledge base with the columns of :data:`KB_SCHEMA`, AU activation rate per emotion and AU).
    """
    apex = apex.assign(emotion=labels.reindex(apex.clip_id).to_numpy())
    entries, activation = [], []
    for emotion in scarce:
        rows = apex[apex.emotion == emotion]
        values = rows[[f"AU{au:02d}_r" for au in EXPRESSION_AUS]].to_numpy(float)
        active_mask = values >= active_threshold
        active = [frozenset(np.array(EXPRESSION_AUS)[m].tolist()) for m in active_mask]
        activation.extend({"emotion": emotion, "au": au, "rate": float(active_mask[:, j].mean()) if len(rows) else 0.0,
                           "clips": len(rows)} for j, au in enumerate(EXPRESSION_AUS))
        observed = {}
        for combo, support in frequent_combinations(active, min_support, max_data_entries):
            holders = np.array([combo <= a for a in active])
            r = {au: float(values[holders, EXPRESSION_AUS.index(au)].mean() / MAX_INTENSITY) for au in combo}
            observed[combo] = (r, support)
        for proto in facs.prototypes_of(emotion):
            combo = frozenset(proto.intensities)
            r, support, source = proto.intensities, 0, "literature"
            if combo in observed:
                r, support = observed.pop(combo)
                source = "literature+data"
            entries.append((emotion, r, source, proto.kind, support, len(rows)))
        entries.extend((emotion, r, "data", "observed", support, len(rows)) for r, support in observed.values())
    kb = pd.DataFrame([{
        "entry_id": "", "emotion": emotion, "aus": sorted(r),
        "intensities": [round(r[au], 3) for au in sorted(r)], "description": describe(r, facs), "source": source,
        "kind": kind, "support": support, "support_fraction": support / n if n else 0.0,
    } for emotion, r, source, kind, support, n in entries], columns=KB_SCHEMA.names)
    kb["entry_id"] = [f"{e}-{i:02d}" for e, i in zip(kb.emotion, kb.groupby("emotion").cumcount())]
    return kb, pd.DataFrame(activation)


def activation_rates(apex: pd.DataFrame, labels: pd.Series, active_threshold: float) -> pd.DataFrame:
    """Share of each emotion's clips whose apex frame has each AU active (rows: emotions, columns: AUs).

    ``apex`` holds apex frames (:func:`apex_frames`) of any clips; ``labels`` the emotion of each, by clip_id.
    """
    emotions = labels.reindex(apex.clip_id).to_numpy()
    active = apex[[f"AU{au:02d}_r" for au in EXPRESSION_AUS]].to_numpy(float) >= active_threshold
    return pd.DataFrame(active, columns=list(EXPRESSION_AUS)).groupby(emotions).mean()


def check_against_data(kb: pd.DataFrame, rates: pd.DataFrame, drop: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The entries of ``kb`` the training clips associate with their own emotion (module docstring).

    Args:
        kb: knowledge base (:func:`build_knowledge_base`).
        rates: :func:`activation_rates` of the training clips of every emotion.
        drop: leave out the entries that fail (``au_kb.data_check``); false keeps every entry, checked.

    Returns:
        (the kept entries, which may leave an emotion without any; one row per entry: entry_id, emotion, aus,
        closest_emotion, passes, kept, reason and the score of every emotion as ``score_<emotion>``).
    """
    rows = []
    for entry in kb.itertuples():
        measured = [au for au in entry.aus if au in rates.columns]
        scores = rates[measured].mean(axis=1) if measured else pd.Series(dtype=float)
        if not measured:
            closest, reason = entry.emotion, "cites no AU the extraction measures: not checked"
        elif entry.emotion not in scores.index:
            closest, reason = entry.emotion, "no training clip of this emotion: not checked"
        else:
            best = scores.max()
            closest = entry.emotion if scores[entry.emotion] >= best else str(scores.idxmax())
            reason = "" if closest == entry.emotion else f"its AUs are more often active in {closest} clips"
        rows.append({"entry_id": entry.entry_id, "emotion": entry.emotion, "aus": " ".join(map(str, entry.aus)),
                     "closest_emotion": closest, "passes": closest == entry.emotion,
                     "kept": closest == entry.emotion or not drop, "reason": reason,
                     **{f"score_{e}": round(float(v), 4) for e, v in scores.items()}})
    check = pd.DataFrame(rows)
    kept = kb[kb.entry_id.isin(check.entry_id[check.kept])].reset_index(drop=True)
    return kept, check


def plot_au_distribution(activation: pd.DataFrame, kb: pd.DataFrame, path: Path) -> None:
    """Per scarce emotion, how often each AU is active at the apex (like the paper's figure 7)."""
    emotions = list(dict.fromkeys(activation.emotion))
    fig, axes = plt.subplots(1, len(emotions), figsize=(4.2 * len(emotions), 3.4), dpi=110, squeeze=False)
    for ax, emotion in zip(axes[0], emotions):
        part = activation[activation.emotion == emotion]
        literature = set().union(*kb[(kb.emotion == emotion) & kb.source.str.contains("literature")].aus.map(set))
        colours = ["#c0392b" if au in literature else "#7f8c8d" for au in part.au]
        ax.bar(range(len(part)), part.rate, color=colours)
        ax.set_xticks(range(len(part)), [str(au) for au in part.au])
        ax.set_ylim(0, 1)
        ax.set_title(f"{emotion} ({int(part.clips.iloc[0]) if len(part) else 0} clips)", fontsize=10)
        ax.set_xlabel("AU (red: in the EMFACS prototypes)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    axes[0][0].set_ylabel("share of clips, AU active at apex")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

"""From features to the generation metrics and their tables (paper tables 1, 4, 5, 8; eq. 29-33).

**Distances.** In every feature space: the Fréchet distance between real and generated clips (overall),
its mean over subjects (sFD, the analogue of sFVD) and over expressions (tFD, of tFVD), each with N, the
groups used and left out, and a 95 % bootstrap interval. Only I3D logits earn the names FVD, sFVD and
tFVD; the same distances in the other spaces keep their own names.

**Two comparisons.**

* ``ground_truth``: the paper's protocol (:mod:`argen.evaluate.ground_truth`): each real evaluation clip
  against the clip ARGen generated from its first frame and label. Paired: the bootstrap resamples
  (real, generated) pairs together. The floor (demo) is the same comparison with the demo renderer's own
  clips of the same subjects and labels.
* ``augmentation``: the augmentation set D3 (``data/generated``) against the real training clips of the
  scarce emotions (unpaired; overall and per expression: D3's identities are neutral clips whose subjects
  have few scarce clips, so there is no per-subject figure). The floor is the oracle set
  (``data/oracle``), which holds exactly as many clips per emotion as D3.

**Diversity** (table 8's question): the mean pairwise distance between clips of one emotion in each space,
for the real clips, ARGen's and the floor's; LPIPS only with its backbone weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from argen.evaluate.frechet import fd_difference, fd_with_interval, grouped_fd, mean_pairwise_distance
from argen.markdown import markdown_table


def _interval(interval) -> list[float] | None:
    return None if interval is None else [_round(interval[0]), _round(interval[1])]


def _round(value: float) -> float | None:
    """Five significant digits (JSON stays readable; the small face-descriptor distances keep their digits)."""
    return None if value is None or not np.isfinite(value) else float(f"{round(float(value), 6):.5g}")


def distance_block(real: np.ndarray, generated: np.ndarray, subjects: np.ndarray | None, emotions: np.ndarray,
                   n_boot: int, seed: int, min_group: int, paired: bool,
                   generated_subjects: np.ndarray | None = None, generated_emotions: np.ndarray | None = None) -> dict:
    """FD, sFD and tFD of one comparison in one space, with N, intervals, groups and warnings.

    Args:
        real, generated: features (N, D) and (M, D); rows with NaN are left out (paired: the pair).
        subjects, emotions: the real rows' groups (and the generated rows', when unpaired).
        paired: ``real[i]`` and ``generated[i]`` belong together.
    """
    generated_subjects = subjects if generated_subjects is None else generated_subjects
    generated_emotions = emotions if generated_emotions is None else generated_emotions
    real_ok, gen_ok = ~np.isnan(real).any(axis=1), ~np.isnan(generated).any(axis=1)
    if paired:
        real_ok = gen_ok = real_ok & gen_ok
    block: dict = {"n_real": int(real_ok.sum()), "n_generated": int(gen_ok.sum()), "dim": int(real.shape[1]),
                   "left_out": int((~real_ok).sum() + (~gen_ok).sum()) if not paired else int((~real_ok).sum())}
    if real_ok.sum() < 2 or gen_ok.sum() < 2:
        block["warning"] = "fewer than 2 clips with a feature on a side: no distance"
        return block
    overall = fd_with_interval(real[real_ok], generated[gen_ok], n_boot=n_boot, seed=seed, paired=paired)
    block.update(fd=_round(overall.value), fd_interval=_interval(overall.interval), warning=overall.warning)
    groupings = {"tfd": (emotions, generated_emotions)}
    if subjects is not None:
        groupings["sfd"] = (subjects, generated_subjects)
    for key, (real_groups, gen_groups) in groupings.items():
        grouped = grouped_fd(real[real_ok], np.asarray(real_groups)[real_ok], generated[gen_ok],
                             np.asarray(gen_groups)[gen_ok], min_n=min_group, n_boot=n_boot, seed=seed, paired=paired)
        block.update({key: _round(grouped.mean), f"{key}_sd": _round(grouped.sd),
                      f"{key}_interval": _interval(grouped.interval), f"{key}_groups": int(grouped.n_groups),
                      f"{key}_skipped": int(len(grouped.skipped)),
                      f"{key}_per_group": [{"group": str(r.group), "n_real": int(r.n_real),
                                            "n_generated": int(r.n_generated), "fd": _round(r.fd)}
                                           for r in grouped.table.itertuples(index=False)]})
    return block


def excess_block(real: np.ndarray, generated: np.ndarray, floor: np.ndarray, n_boot: int, seed: int) -> dict:
    """ARGen's FD minus the floor's, over the clips all three sets have a feature for (row-matched)."""
    ok = ~(np.isnan(real).any(axis=1) | np.isnan(generated).any(axis=1) | np.isnan(floor).any(axis=1))
    if ok.sum() < 2:
        return {"n": int(ok.sum())}
    value, interval = fd_difference(real[ok], generated[ok], floor[ok], n_boot=n_boot, seed=seed)
    return {"fd_excess": _round(value), "fd_excess_interval": _interval(interval), "n": int(ok.sum())}


def diversity(features: np.ndarray, emotions: np.ndarray) -> dict[str, dict]:
    """Mean pairwise distance between clips of each emotion, with N (rows with NaN left out)."""
    out = {}
    for emotion in sorted(set(emotions)):
        rows = features[(np.asarray(emotions) == emotion) & ~np.isnan(features).any(axis=1)]
        out[emotion] = {"mean_pairwise_distance": _round(mean_pairwise_distance(rows)), "n": int(len(rows))}
    return out


def _num(value: float) -> str:
    """Two decimals, or three significant digits below 1 (face-descriptor distances are ~0.01)."""
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def _fmt(block: dict, key: str) -> str:
    value = block.get(key)
    if value is None:
        return "n/a"
    interval = block.get(f"{key}_interval")
    text = _num(value)
    if key != "fd" and block.get(f"{key}_sd") is not None:
        text += f" ± {_num(block[f'{key}_sd'])}"
    if interval:
        text += f" [{_num(interval[0])}, {_num(interval[1])}]"
    return text


def distance_table(title: str, spaces: dict[str, str], blocks: dict[str, dict], floor_blocks: dict[str, dict],
                   grouped: tuple[str, ...], caption: str, excess: dict[str, dict] | None = None) -> list[str]:
    """Markdown lines: one row per space, ARGen's value beside the floor's (and ARGen − floor), N and groups."""
    names = {"fd": "FD", "sfd": "sFD (subjects)", "tfd": "tFD (expressions)"}
    header = ["feature space", "N real / gen"] + [f"{names[k]} ARGen" for k in ("fd", *grouped)] \
        + ([f"{names[k]} floor" for k in ("fd", *grouped)] if floor_blocks else []) \
        + (["FD ARGen − floor (paired)"] if excess else [])
    rows, warnings = [], []
    for space, label in spaces.items():
        block, floor = blocks.get(space, {}), floor_blocks.get(space, {})
        cells = [label, f"{block.get('n_real', 0)} / {block.get('n_generated', 0)}"]
        cells += [_fmt(block, k) + (f" ({block.get(f'{k}_groups', 0)} groups, {block.get(f'{k}_skipped', 0)} "
                                    f"too small)" if k != "fd" and k in block else "") for k in ("fd", *grouped)]
        if floor_blocks:
            cells += [_fmt(floor, k) for k in ("fd", *grouped)]
        if excess:
            cells.append(_fmt(excess.get(space, {}), "fd_excess"))
        rows.append(cells)
        for who, b in (("ARGen", block), ("floor", floor)):
            if b.get("warning"):
                warnings.append(f"{label}, {who}: {b['warning']}")
    lines = [f"**{title}.** {caption}", "", *markdown_table(header, rows, "No feature space was computed.")]
    lines.append("")
    lines += [f"- {w}" for w in warnings] + ([""] if warnings else [])
    return lines


def diversity_table(spaces: dict[str, str], sets: dict[str, dict[str, dict]], caption: str) -> list[str]:
    """Markdown lines: mean pairwise distance per emotion and space for each named set (with N)."""
    header = ["emotion"] + [f"{label.replace(' FD', '')}: {name}" for label in spaces.values() for name in sets]
    emotions = sorted({e for by_space in sets.values() for space in by_space.values() for e in space})
    rows = []
    for emotion in emotions:
        cells = [emotion]
        for space in spaces:
            for by_space in sets.values():
                entry = by_space.get(space, {}).get(emotion)
                cells.append("n/a" if not entry or entry["mean_pairwise_distance"] is None
                             else f"{_num(entry['mean_pairwise_distance'])} (n={entry['n']})")
        rows.append(cells)
    return [f"**Diversity (table 8's question).** {caption}", "",
            *markdown_table(header, rows, "No clip set has clips of an emotion to compare."), ""]


def au_f1_table(rows_in: pd.DataFrame, judge: pd.DataFrame | None, caption: str) -> list[str]:
    """Markdown lines: per emotion the AU F1 of prompt vs extraction (mean, n) and the judge's share."""
    header = ["emotion", "AU F1, D3 (n)", "AU F1, evaluation clips ARGen (n)", "AU F1, the real clips (n)",
              "judge: D3 classified as target [95 % CI] (n)"]
    judged = set(judge.emotion) if judge is not None else set()
    rows = []
    for emotion in sorted(set(rows_in.emotion) | judged):
        cells = [emotion]
        for which in ("augmentation", "ground_truth_generated", "ground_truth_real"):
            values = rows_in[(rows_in.emotion == emotion) & (rows_in.set == which)].f1
            cells.append(f"{values.mean():.2f} ({len(values)})" if len(values) else "n/a")
        hit = judge[judge.emotion == emotion] if judge is not None else pd.DataFrame()
        cells.append(f"{100 * hit.share.iloc[0]:.1f} % [{100 * hit.low.iloc[0]:.1f}, {100 * hit.high.iloc[0]:.1f}] "
                     f"({int(hit.clips.iloc[0])})" if len(hit) else "n/a")
        rows.append(cells)
    empty = ("No AU F1: no prompt cites an Action Unit (as with fixed prompts, `asi.mode: fixed`); and the judge "
             "classified no clip.")
    return [f"**Expression fidelity.** {caption}", "", *markdown_table(header, rows, empty), ""]

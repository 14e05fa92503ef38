"""From the reward table to the policy's training data, and the held-out comparison of policies.

**Total reward** (eq. 18, "normal" case, plus two terms beyond the paper):
R = R_S + lambda (w_Q R_Q + w_F R_F + w_E R_E) + w_X R_X + w_H R_H, with w_Q = w_F = w_E = 1 by default (the
paper; table 4's reward subsets set some of them to 0, all from the one reward table).

* ``ard.reward: paper`` is the paper's reward: w_X = 0.
* ``ard.reward: argen`` (the default) adds the **expression-fidelity term** R_X = (R_A + R_C) / 2: R_A the
  verifiable AU check (F1 of the prompt's AUs against those found in the video; a prompt naming no AU has none, and
  R_X is then R_C alone), R_C the target-emotion
  score of a classifier fitted on the training split's clips (:class:`argen.rewards.components.EmotionScorer`).
  Why: R_E rewards small AU amplitudes and R_S few steps, so on its own eq. 18 prefers the action whose
  clip shows the least expression (issue 20: the paper-only policy's clips carry the prompt's AUs in 8 %
  of cases); R_X is what keeps the expression.
* R_H is a human rating in [0, 1] of the video (``ratings_csv``, keyed by the table's ``video_id``); an
  unrated video gets the mean of the rated ones, and the count is reported. Weight 0 by default.

**Choosing w_X** (``ard.weight_fidelity: auto``, :func:`choose_fidelity_weight`), on the **training pairs
only** (never a validation pair, never a test clip): for each weight w of :data:`FIDELITY_GRID`, in
increasing order, take the actions a policy trained on that total reward would take and the mean R_X at
them. w_X is the smallest w at which that mean reaches ``ard.fidelity_keep`` (0.9) of the attainable mean:
the least weight that keeps the target expression, so the paper's terms still decide among the actions
that keep it. If no weight of the grid reaches it, the largest is taken and the stage says so. Which
actions stand for the policy's is ``ard.fidelity_reference``:

* ``fixed`` (default): the best fixed action under that total (the one action with the highest mean over
  training pairs), against the attainable of the action with the highest mean R_X. The learned policy
  must beat the best fixed action and, where the identity and prompt say little about which action suits
  a pair, it takes it (the demo's policy takes it for every held-out pair), so this is what the policy's
  clips will keep.
* ``per_pair``: each pair's best action, against each pair's largest R_X. With one seed per action both
  are maxima over 12 noisy draws, so the rule is satisfied by per-pair luck the policy cannot reproduce:
  on the demo (fold 1) it chose w_X = 3 as keeping 92 % of the per-pair attainable R_X (0.658), while the
  policy then took (5, 2, 3) for every pair, whose R_X on the training pairs is 0.521 (79 %). The grid and each weight's outcome go to ``reports/policy/metrics.json``.

**Complete pairs.** The policy learns from pairs with every action and every seed audited (status ok);
the others are left out and counted.

**Held-out comparison** on the validation pairs, per policy: the mean total reward (and its standard
error over pairs), each component and the mean model calls, for

* ``learned``: the trained policy's argmax action per pair;
* ``random``: the expectation under a uniform choice of the 12 actions (exact, not a sample);
* ``fixed_T20``: T = 20 with (2, 2) for every pair;
* ``best_fixed``: the one action with the highest mean total reward on the *training* pairs;
* ``oracle``: per pair the action with the highest mean total reward (an upper bound no policy can pass).
  It chooses and is scored on the same seeds, so part of its lead is the luck of those seeds' noise, which
  no policy can foresee from the identity and the prompt;
* ``oracle_heldout_seed`` (when the table has two or more seeds per action): per pair the best action on
  half of the seeds (even seed indices), scored on the other half, and the reverse, averaged: the gain that
  knowing the pair, not the noise, can buy.

``gap_closed``: for each oracle, (learned - best_fixed) / (oracle - best_fixed), the share of the
per-pair oracle's lead over the best fixed action that the learned policy captures.

The learned policy earns its keep only if it beats ``best_fixed``: the paired difference over the
validation pairs, with a 95 % interval, says whether it does beyond noise (``beats`` when the whole
interval lies above 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from argen.actions import ACTIONS
from argen.policy.reinforce import PolicyNetwork, PolicySettings, greedy_choices, train_policy
from argen.errors import InputError
from argen.rewards.table import COMPONENTS
from argen.stats import Z95


#: The weights w_X tried by :func:`choose_fidelity_weight`, in increasing order (lambda is 3: R_X at 1 weighs a
#: third of one of the paper's naturalness terms, at 16 five times all three).
FIDELITY_GRID: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def fidelity_term(table: pd.DataFrame) -> pd.Series:
    """R_X = (R_A + R_C) / 2 per row of the reward table; R_C alone where the prompt names no AU (R_A NaN)."""
    return table.R_C.where(table.R_A.isna(), 0.5 * (table.R_A + table.R_C))


def total_reward(table: pd.DataFrame, lam: float, weight_fidelity: float = 0.0, weight_human: float = 0.0,
                 ratings: pd.Series | None = None, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
                 ) -> tuple[pd.Series, int]:
    """Total reward per row of the table, and how many rows had no human rating (when R_H is used).

    Args:
        weight_fidelity: w_X, the weight of the expression-fidelity term R_X (0: the paper's reward).
        weights: (w_Q, w_F, w_E), the weights of R_Q, R_F and R_E inside lambda's bracket.
    """
    w_q, w_f, w_e = weights
    total = table.R_S + lam * (w_q * table.R_Q + w_f * table.R_F + w_e * table.R_E)
    if weight_fidelity:
        total = total + weight_fidelity * fidelity_term(table)
    unrated = 0
    if weight_human > 0:
        rated = table.video_id.map(ratings) if ratings is not None else pd.Series(np.nan, index=table.index)
        unrated = int(rated.isna().sum())
        fill = float(rated.mean()) if rated.notna().any() else 0.0
        total = total + weight_human * rated.fillna(fill)
    return total, unrated


def choose_fidelity_weight(base: np.ndarray, fidelity: np.ndarray, splits: list[str], keep: float,
                           grid: tuple[float, ...] = FIDELITY_GRID, reference: str = "fixed"
                           ) -> tuple[float, pd.DataFrame]:
    """w_X by the procedure of the module docstring, on training pairs only.

    Args:
        base: (pairs, 12, seeds) total reward without the fidelity term, of training pairs.
        fidelity: (pairs, 12, seeds) R_X of the same pairs.
        splits: each pair's split; anything but ``train`` is refused (the procedure must not see it).
        keep: share of the attainable mean R_X the chosen actions must reach, in (0, 1].
        grid: candidate weights, increasing.
        reference: ``fixed`` (the best fixed action) or ``per_pair`` (each pair's best action).

    Returns:
        (w_X, one row per weight tried: weight, mean R_X at the chosen actions, its share of the attainable,
        mean R_S at the chosen actions, and whether it reached ``keep``).

    Raises:
        ValueError: a pair is not a training pair, or the cubes are empty or differ in shape.
    """
    leaked = sorted(set(splits) - {"train"})
    if leaked:
        raise ValueError(f"the fidelity weight is chosen on training pairs only; got {len(splits)} pairs with "
                         f"split(s) {leaked}")
    if base.shape != fidelity.shape or base.shape[0] != len(splits) or base.shape[0] == 0:
        raise ValueError(f"expected two (pairs, 12, seeds) cubes of {len(splits)} pairs, got {base.shape} and "
                         f"{fidelity.shape}")
    if reference not in ("fixed", "per_pair"):
        raise ValueError(f"fidelity reference must be 'fixed' or 'per_pair', got {reference!r}")
    base, fidelity = np.nanmean(base, axis=2), np.nanmean(fidelity, axis=2)
    if reference == "fixed":
        attainable = float(fidelity.mean(axis=0).max())
    else:
        attainable = float(fidelity.max(axis=1).mean())
    rows, pairs = [], np.arange(len(base))
    for weight in grid:
        total = base + weight * fidelity
        if reference == "fixed":
            action = int(total.mean(axis=0).argmax())
            kept = float(fidelity[:, action].mean())
        else:
            kept = float(fidelity[pairs, total.argmax(axis=1)].mean())
        rows.append({"weight": weight, "R_X": kept, "share": kept / attainable if attainable > 0 else 1.0,
                     "reaches": kept >= keep * attainable})
    outcome = pd.DataFrame(rows)
    reached = outcome[outcome.reaches]
    return float(reached.weight.iloc[0] if len(reached) else grid[-1]), outcome


def fidelity_weight_for(table: pd.DataFrame, pairs: pd.DataFrame, lam: float,
                        weights: tuple[float, float, float], keep: float, reference: str = "fixed"
                        ) -> tuple[float, pd.DataFrame]:
    """:func:`choose_fidelity_weight` on the reward table's training pairs (``pairs.split == "train"``).

    Only the table's rows of training pairs are read; validation pairs never enter.
    """
    train_ids = set(pairs.pair_id[pairs.split == "train"])
    rows = table[table.pair_id.isin(train_ids)]
    base, _ = total_reward(rows, lam, 0.0, weights=weights)
    complete, cubes, _ = reward_cubes(rows, {"base": base, "fidelity": fidelity_term(rows)})
    if not complete:
        raise InputError(f"no training pair has every action audited ({len(train_ids)} training pairs): the fidelity "
                         "weight cannot be chosen (re-run the rewards stage, or give ard.weight_fidelity a number)")
    splits = pairs.set_index("pair_id").split.loc[complete].tolist()
    return choose_fidelity_weight(cubes["base"], cubes["fidelity"], splits, keep, reference=reference)


def reward_cubes(table: pd.DataFrame, values: dict[str, pd.Series]) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    """Arrays (pairs, 12 actions, seeds) of each named value for the complete pairs.

    Returns:
        (complete pair ids in table order, cubes by name, pair ids left out as incomplete).
    """
    ok = table.status == "ok"
    n_seeds = int(table.seed_index.max()) + 1
    counts = table[ok].groupby("pair_id", sort=False).size()
    complete = [p for p in dict.fromkeys(table.pair_id) if counts.get(p, 0) == len(ACTIONS) * n_seeds]
    left_out = [p for p in dict.fromkeys(table.pair_id) if p not in set(complete)]
    rows = table[ok & table.pair_id.isin(complete)]
    position = {p: k for k, p in enumerate(complete)}
    index = (rows.pair_id.map(position).to_numpy(int), rows.action.to_numpy(int), rows.seed_index.to_numpy(int))
    cubes = {}
    for name, series in values.items():
        cube = np.full((len(complete), len(ACTIONS), n_seeds), np.nan)
        cube[index] = series[rows.index].to_numpy(float)
        cubes[name] = cube
    return complete, cubes, left_out


def compare_policies(cubes: dict[str, np.ndarray], learned: np.ndarray, best_fixed: int,
                     fixed: tuple[int, float, float]) -> pd.DataFrame:
    """The held-out comparison (module docstring) on validation cubes (pairs, 12, seeds).

    Args:
        cubes: ``total``, ``model_calls`` and each component in :data:`COMPONENTS`.
        learned: the learned policy's action per validation pair.
        best_fixed: the action index chosen on the training pairs.
        fixed: the fixed baseline's action.
    """
    per_pair = {name: cube.mean(axis=2) for name, cube in cubes.items()}  # (pairs, 12)
    n = per_pair["total"].shape[0]
    rows = np.arange(n)
    choices = {"learned": np.asarray(learned, int), "fixed_T20": np.full(n, ACTIONS.index(tuple(fixed))),
               "best_fixed": np.full(n, best_fixed), "oracle": per_pair["total"].argmax(axis=1)}
    table = {}
    for policy, choice in choices.items():
        table[policy] = {name: per_pair[name][rows, choice] for name in per_pair}
    table["random"] = {name: values.mean(axis=1) for name, values in per_pair.items()}
    out = []
    if cubes["total"].shape[2] >= 2:
        table["oracle_heldout_seed"] = heldout_seed_oracle(cubes)
    for policy in ("learned", "random", "fixed_T20", "best_fixed", "oracle", "oracle_heldout_seed"):
        if policy not in table:
            continue
        values = table[policy]
        total = values["total"]
        out.append({"policy": policy, "reward": float(total.mean()),
                    "reward_se": float(total.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                    **{name: _mean_where_defined(values[name]) for name in COMPONENTS if name in values},
                    "model_calls": float(values["model_calls"].mean())})
    return pd.DataFrame(out).set_index("policy")


def _mean_where_defined(values: np.ndarray) -> float:
    """Mean over the pairs that have the value (R_A is NaN for prompts naming no AU); NaN when none has it."""
    values = np.asarray(values, float)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def heldout_seed_oracle(cubes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per pair, each value at the action chosen on one half of the seeds, scored on the other (both ways).

    Seeds with even index form one half, odd the other; the two cross-scores are averaged per pair.
    """
    halves = [slice(0, None, 2), slice(1, None, 2)]
    rows = np.arange(cubes["total"].shape[0])
    crossed = [(cubes["total"][:, :, choose].mean(axis=2).argmax(axis=1), score)
               for choose, score in (halves, halves[::-1])]
    return {name: np.mean([cube[:, :, score].mean(axis=2)[rows, choice] for choice, score in crossed], axis=0)
            for name, cube in cubes.items()}


def gap_closed(comparison: pd.DataFrame) -> dict[str, float]:
    """Per oracle row: (learned - best_fixed) / (oracle - best_fixed) of the mean rewards; NaN without a gap."""
    reward = comparison.reward
    out = {}
    for oracle in ("oracle", "oracle_heldout_seed"):
        if oracle in reward:
            gap = reward[oracle] - reward["best_fixed"]
            out[oracle] = float((reward["learned"] - reward["best_fixed"]) / gap) if gap > 0 else float("nan")
    return out


def paired_difference(cubes: dict[str, np.ndarray], learned: np.ndarray, best_fixed: int) -> dict[str, float]:
    """Learned minus best fixed, per validation pair: mean, 95 % interval (normal), and pairs."""
    total = cubes["total"].mean(axis=2)
    rows = np.arange(total.shape[0])
    diff = total[rows, np.asarray(learned, int)] - total[:, best_fixed]
    n = len(diff)
    se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    mean = float(diff.mean()) if n else float("nan")
    return {"mean": mean, "low": mean - Z95 * se, "high": mean + Z95 * se, "pairs": n}


def best_fixed_action(total: np.ndarray) -> int:
    """The action with the highest mean total reward over pairs and seeds (training cube)."""
    return int(np.nanmean(total, axis=(0, 2)).argmax())


@dataclass
class PolicyOutcome:
    """A trained policy and how it compares on the validation pairs."""

    model: PolicyNetwork
    history: pd.DataFrame
    comparison: pd.DataFrame
    difference: dict[str, float]
    best_fixed: int
    learned: np.ndarray

    @property
    def beats_best_fixed(self) -> bool:
        """The paired difference's 95 % interval lies above 0."""
        return bool(self.difference["low"] > 0)


def fit_and_compare(cubes: dict[str, np.ndarray], image_emb: np.ndarray, text_emb: np.ndarray, train: np.ndarray,
                    settings: PolicySettings, fixed: tuple[int, float, float],
                    on_step: Callable[[int, dict], None] | None = None) -> PolicyOutcome:
    """Train on the training pairs' total rewards; compare on the others (module docstring)."""
    val = ~train
    model, history = train_policy(image_emb[train], text_emb[train], cubes["total"][train], settings, on_step)
    learned = greedy_choices(model, image_emb[val], text_emb[val])
    best = best_fixed_action(cubes["total"][train])
    val_cubes = {name: cube[val] for name, cube in cubes.items()}
    return PolicyOutcome(model, history, compare_policies(val_cubes, learned, best, fixed),
                         paired_difference(val_cubes, learned, best), best, learned)

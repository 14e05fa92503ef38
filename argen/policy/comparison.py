"""From the reward table to the policy's training data, and the held-out comparison of policies.

**Total reward** (eq. 18, "normal" case, plus two optional terms, weight 0 by default):
R = R_S + lambda (w_Q R_Q + w_F R_F + w_E R_E) + w_A R_A + w_H R_H, with w_Q = w_F = w_E = 1 by default (the
paper; table 4's reward subsets set some of them to 0, all from the one reward table). R_H is a human rating in [0, 1] of the video
(``ratings_csv``, keyed by the table's ``video_id``); an unrated video gets the mean of the rated ones
(a neutral value: the term then ranks only what was rated), and the count is reported.

**Complete pairs.** The policy learns from pairs with every action and every seed audited (status ok);
the others are left out and counted.

**Held-out comparison** on the validation pairs, per policy: the mean total reward (and its standard
error over pairs), each component and the mean model calls, for

* ``learned``: the trained policy's argmax action per pair;
* ``random``: the expectation under a uniform choice of the 12 actions (exact, not a sample);
* ``fixed_T20``: T = 20 with (2, 2) for every pair;
* ``best_fixed``: the one action with the highest mean total reward on the *training* pairs;
* ``oracle``: per pair the action with the highest mean total reward (an upper bound no policy can pass).

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
from argen.rewards.table import COMPONENTS
from argen.stats import Z95


def total_reward(table: pd.DataFrame, lam: float, weight_au: float = 0.0, weight_human: float = 0.0,
                 ratings: pd.Series | None = None, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
                 ) -> tuple[pd.Series, int]:
    """Total reward per row of the table, and how many rows had no human rating (when R_H is used).

    Args:
        weights: (w_Q, w_F, w_E), the weights of R_Q, R_F and R_E inside lambda's bracket.
    """
    w_q, w_f, w_e = weights
    total = table.R_S + lam * (w_q * table.R_Q + w_f * table.R_F + w_e * table.R_E) + weight_au * table.R_A
    unrated = 0
    if weight_human > 0:
        rated = table.video_id.map(ratings) if ratings is not None else pd.Series(np.nan, index=table.index)
        unrated = int(rated.isna().sum())
        fill = float(rated.mean()) if rated.notna().any() else 0.0
        total = total + weight_human * rated.fillna(fill)
    return total, unrated


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
    index = (rows.pair_id.map(position).to_numpy(), rows.action.to_numpy(), rows.seed_index.to_numpy())
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
    for policy in ("learned", "random", "fixed_T20", "best_fixed", "oracle"):
        values = table[policy]
        total = values["total"]
        out.append({"policy": policy, "reward": float(total.mean()),
                    "reward_se": float(total.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                    **{name: float(values[name].mean()) for name in COMPONENTS if name in values},
                    "model_calls": float(values["model_calls"].mean())})
    return pd.DataFrame(out).set_index("policy")


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

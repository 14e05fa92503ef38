"""The paper-only reward against the default (argen) reward on the pipeline's reward table.

Run after the rewards stage (reads ``data/interim/rewards.parquet`` and ``reward_pairs.parquet``):

    python -m benchmarks.reward_modes [--policy-steps 0]

Prints the fidelity weight w_X chosen on the training pairs (every grid weight's outcome), then for each
reward (``paper``: w_X = 0; ``argen``: the chosen w_X) the actions it prefers and what their clips keep,
on the validation pairs: the best fixed action (chosen on the training pairs) and the per-pair optimum,
each with its mean R_S, R_E, R_A, R_C and R_X. With ``--policy-steps N`` > 0 the policy is also trained
(as the policy stage does, N steps) and its greedy actions reported the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from argen.policy.comparison import best_fixed_action, fidelity_weight_for, fit_and_compare, reward_cubes, total_reward
from argen.actions import ACTIONS
from argen.policy.reinforce import PolicySettings
from argen.rewards.table import COMPONENTS
from argen.params import load_params

SHOWN = ("R_S", "R_E", "R_A", "R_C")


def describe(name: str, choice: np.ndarray, cubes: dict[str, np.ndarray]) -> str:
    """One line: the actions chosen (counts) and the mean components at them."""
    rows = np.arange(len(choice))
    values = {c: float(cubes[c].mean(axis=2)[rows, choice].mean()) for c in SHOWN}
    values["R_X"] = (values["R_A"] + values["R_C"]) / 2
    actions = pd.Series([f"{t} ({a:g},{b:g})" for t, a, b in (ACTIONS[k] for k in choice)]).value_counts()
    shown = ", ".join(f"{k} x{v}" for k, v in actions.head(4).items())
    return f"  {name:22s} " + " ".join(f"{k} {v:.3f}" for k, v in values.items()) + f"   actions: {shown}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy-steps", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params()
    ard = params.ard
    table = pd.read_parquet("data/interim/rewards.parquet")
    pairs = pd.read_parquet("data/interim/reward_pairs.parquet")
    weights = (ard.weight_quality, ard.weight_face, ard.weight_expression)
    weight, outcome = fidelity_weight_for(table, pairs, ard.lambda_, weights, ard.fidelity_keep)
    print(f"reward table: {len(table)} videos, {int((pairs.split == 'train').sum())} training / "
          f"{int((pairs.split == 'val').sum())} validation pairs")
    print(f"fidelity weight chosen on the training pairs: w_X = {weight:g} (keep {ard.fidelity_keep:g})")
    print(outcome.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for mode, w in (("paper", 0.0), ("argen", weight)):
        total, _ = total_reward(table, ard.lambda_, w, weights=weights)
        complete, cubes, _ = reward_cubes(table, {"total": total, "model_calls": table.model_calls,
                                                  **{c: table[c] for c in COMPONENTS}})
        split = pairs.set_index("pair_id").split.loc[complete].to_numpy()
        train, val = split == "train", split == "val"
        val_cubes = {k: v[val] for k, v in cubes.items()}
        best = best_fixed_action(cubes["total"][train])
        print(f"\nreward {mode} (w_X = {w:g}), validation pairs ({int(val.sum())}):")
        print(describe("best fixed (train)", np.full(int(val.sum()), best), val_cubes))
        print(describe("per-pair optimum", val_cubes["total"].mean(axis=2).argmax(axis=1), val_cubes))
        if args.policy_steps > 0:
            from argen.policy.state import pair_states
            from argen.extract import LANDMARK_COLUMNS

            kept = pairs.set_index("pair_id").loc[complete].reset_index()
            identities = pd.read_parquet("data/interim/identities.parquet",
                                         columns=["clip_id", "image_file", *LANDMARK_COLUMNS])
            image_emb, text_emb, _ = pair_states(params.generator, kept, identities.set_index("clip_id"),
                                                 Path("data/interim/identities"))
            settings = PolicySettings(candidates=ard.candidates, top_k=ard.top_k, gamma=ard.gamma, lr=ard.policy_lr,
                                      batch_size=ard.policy_batch, steps=args.policy_steps, advantage=ard.advantage,
                                      d_model=ard.policy_d_model, seed=ard.policy_seed)
            result = fit_and_compare(cubes, image_emb, text_emb, train, settings, params.generate.fixed_action)
            print(describe(f"learned ({args.policy_steps} steps)", result.learned, val_cubes))


if __name__ == "__main__":
    main()

"""The policy's held-out comparison over several training seeds, on the pipeline's reward table.

Run after ``make repro`` (reads ``data/interim/rewards.parquet``, the pairs and the identities):

    python -m benchmarks.policy_seeds [--seeds 0 1 2] [--lambda 3] [--weight-au 0] [--advantage reinforce]

For each policy seed (initialisation, batches and sampled actions) the policy is trained on the training
pairs exactly as the policy stage does, and the validation pairs' mean total reward and model calls are
printed for the learned policy, a random policy, fixed T = 20 (2, 2), the best fixed action and the oracle,
with the paired difference learned - best fixed and its 95 % interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from argen.policy.comparison import fit_and_compare, reward_cubes, total_reward
from argen.actions import ACTIONS
from argen.policy.reinforce import PolicySettings
from argen.rewards.table import COMPONENTS
from argen.policy.state import pair_states
from argen.extract import LANDMARK_COLUMNS
from argen.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lambda", dest="lam", type=float, default=None, help="default: ard.lambda")
    parser.add_argument("--weight-au", type=float, default=None, help="default: ard.weight_au")
    parser.add_argument("--advantage", choices=["reinforce", "group"], default=None, help="default: ard.advantage")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params()
    ard = params.ard
    lam = ard.lambda_ if args.lam is None else args.lam
    weight_au = ard.weight_au if args.weight_au is None else args.weight_au
    table = pd.read_parquet("data/interim/rewards.parquet")
    pairs = pd.read_parquet("data/interim/reward_pairs.parquet")
    total, _ = total_reward(table, lam, weight_au)
    complete, cubes, _ = reward_cubes(table, {"total": total, "model_calls": table.model_calls,
                                              **{c: table[c] for c in COMPONENTS}})
    pairs = pairs.set_index("pair_id").loc[complete].reset_index()
    identities = pd.read_parquet("data/interim/identities.parquet", columns=["clip_id", "image_file",
                                                                              *LANDMARK_COLUMNS])
    image_emb, text_emb, encoder = pair_states(params.generator, pairs, identities.set_index("clip_id"),
                                               Path("data/interim/identities"))
    train = (pairs.split == "train").to_numpy()
    print(f"reward table: {len(table)} videos, {int(train.sum())} training / {int((~train).sum())} validation pairs; "
          f"R = R_S + {lam:g} (R_Q + R_F + R_E) + {weight_au:g} R_A; states: {encoder}")
    rows = []
    for seed in args.seeds:
        settings = PolicySettings(candidates=ard.candidates, top_k=ard.top_k, gamma=ard.gamma, lr=ard.policy_lr,
                                  batch_size=ard.policy_batch, steps=ard.policy_steps,
                                  advantage=args.advantage or ard.advantage, d_model=ard.policy_d_model, seed=seed)
        outcome = fit_and_compare(cubes, image_emb, text_emb, train, settings, params.generate.fixed_action)
        diff = outcome.difference
        print(f"\nseed {seed}: best fixed {ACTIONS[outcome.best_fixed]}; learned chose "
              f"{pd.Series([ACTIONS[k] for k in outcome.learned]).value_counts().to_dict()}")
        print(outcome.comparison[["reward", "reward_se", "R_S", "R_Q", "R_F", "R_E", "R_A", "model_calls"]]
              .to_string(float_format=lambda v: f"{v:.3f}"))
        print(f"learned - best fixed: {diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}] "
              f"over {diff['pairs']} pairs: {'beats it' if outcome.beats_best_fixed else 'does not beat it'}")
        rows.append(outcome.comparison.reward.rename(seed))
    summary = pd.concat(rows, axis=1)
    print("\nmean total reward over seeds (mean +- sd):")
    for policy, values in summary.iterrows():
        print(f"  {policy:10s} {values.mean():.3f} +- {values.std(ddof=1) if len(values) > 1 else 0:.3f}")


if __name__ == "__main__":
    main()

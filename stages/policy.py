"""Stage ``policy`` (Algorithm 1 stage 1, eq. 13, 18-21): REINFORCE on the cached reward table.

Reads ``ard`` (lambda, reward, weight_fidelity, fidelity_keep, gamma, top_k, candidates, advantage, weight_human, ratings_csv,
policy_*), ``generator`` (the state encoders; the table must be fresh), ``rewards`` (the table must be fresh),
``generate.fixed_action`` (the fixed baseline), ``data/interim/rewards.parquet`` and ``reward_pairs.parquet``, and the
identity frames (the state encoders). Rewards are looked up in the table, never regenerated, so
``dvc exp run -S ard.lambda=3`` re-runs this stage and what follows it, not the rewards stage.
Writes ``models/policy/`` (weights and config), ``reports/policy/metrics.json`` (the held-out comparison:
learned vs random vs fixed T = 20 vs best fixed vs oracle), ``reports/policy/comparison.png`` and the
training curves (DVCLive, ``reports/policy/live/``: loss, raw and shaped reward, entropy, share of pairs
whose greedy action is the table's best; the paper's figure 8).
"""

from argen.params import Params
from argen.policy.train import run_policy_stage
from argen.stage import run_stage


def main(params: Params) -> None:
    run_policy_stage(params)


if __name__ == "__main__":
    run_stage(main)

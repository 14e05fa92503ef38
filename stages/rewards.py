"""Stage ``rewards`` (eq. 14-17, supp. D): the cached reward table of every (pair, action, seed).

Reads ``seed``, ``rewards``, ``generator``, ``extract_aus`` (the audit backend's options),
the identities and prompts, the generator's model and the extract_aus rows (R_E's ``a_max: auto``).
Writes ``data/interim/rewards.parquet`` (one row per video: pair, action, seed, R_S, R_Q, Q_m, Q_M, R_F,
R_E, R_A, steps run, model calls, status), ``data/interim/reward_pairs.parquet`` (the pairs and their
train/val split), ``reports/rewards/metrics.json`` and ``reports/rewards/actions.png``. Seconds per video
go to ``data/cache/reward_timings.parquet``, outside DVC's outputs: timings differ from run to run, and the
outputs must not (the same params give the same bytes).

Resumable: finished shards stay in ``data/cache/reward_shards/`` (not a DVC output either, so DVC never
deletes it before a run) and a rerun computes only the rest.
On several GPUs: ``torchrun --nproc_per_node N stages/rewards.py`` (one process per GPU, shards split by
rank, merged by rank 0 in a fixed order).
"""

from argen.params import Params
from argen.rewards.run import run_rewards_stage
from argen.stage import run_stage


def main(params: Params) -> None:
    run_rewards_stage(params)


if __name__ == "__main__":
    run_stage(main)

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

import json
import logging
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from argen.actions import ACTIONS
from argen.rewards.plots import plot_action_rewards
from argen.rewards.table import (
    COMPONENTS, TIMING_COLUMNS, RewardContext, ShardStore, distributed_rank, fingerprint, generation_settings,
    identity_landmarks, make_pairs, read_reward_inputs, run_shards, shard_pairs,
)
from argen.rewards.components import empirical_a_max
from argen.extract import FRAME_COLUMNS
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.stage import provenance, run_stage

IDENTITIES = Path("data/interim/identities.parquet")
IMAGES = Path("data/interim/identities")
PROMPTS = Path("data/interim/prompts.parquet")
FRAMES = Path("data/interim/aus.parquet")
CLIPS = Path("data/interim/aus_clips.parquet")
SHARDS = Path("data/cache/reward_shards")
TABLE = Path("data/interim/rewards.parquet")
PAIRS = Path("data/interim/reward_pairs.parquet")
TIMINGS = Path("data/cache/reward_timings.parquet")
REPORTS = Path("reports/rewards")

log = logging.getLogger("argen.stages.rewards")


def a_max_value(params: Params) -> float:
    """R_E's a_max: the param, or with ``auto`` the quantile of real training frames' AU norms."""
    cfg = params.rewards
    if cfg.a_max != "auto":
        return float(cfg.a_max)
    clips = read_table(CLIPS, ["clip_id", "split"], "extract_aus")
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus")
    value = empirical_a_max(frames[frames.clip_id.isin(clips.clip_id[clips.split == "train"])], cfg.a_max_quantile)
    log.info("a_max = %.3f (the %.2f quantile of the AU-vector norm over real training frames)", value,
             cfg.a_max_quantile)
    return value


def main(params: Params) -> None:
    cfg = params.rewards
    rank, world, local_rank = distributed_rank()
    identities, prompts = read_reward_inputs(IDENTITIES, PROMPTS)
    pairs = make_pairs(identities, prompts, cfg.val_fraction, params.seed, cfg.max_identities)
    device = f"cuda:{local_rank}" if world > 1 and torch.cuda.is_available() else ""
    context = RewardContext(generator=params.generator, rewards=cfg, extract=params.extract_aus, a_max=a_max_value(params),
                            base_seed=params.seed, image_dir=str(IMAGES), landmarks=identity_landmarks(identities),
                            au_rows_path=str(FRAMES), device=device)
    store = ShardStore(SHARDS, fingerprint(context, pairs))
    shards = shard_pairs(pairs, cfg.shard_pairs)
    done = store.finished(len(shards)) if rank == 0 or world == 1 else set()
    if world > 1:
        torch.distributed.init_process_group("nccl" if device else "gloo")
        torch.distributed.barrier()  # rank 0 has discarded stale shards before anyone reads the folder
        done = store.finished(len(shards))
    todo = [k for k in range(len(shards)) if k not in done and k % world == rank]
    log.info("%d pairs (%d train, %d val) x %d actions x %d seeds in %d shards: %d finished before, %d to do%s",
             len(pairs), int((pairs.split == "train").sum()), int((pairs.split == "val").sum()), len(ACTIONS),
             cfg.n_seeds, len(shards), len(done), len(todo), f" on rank {rank}/{world}" if world > 1 else "")
    workers = 1 if world > 1 else cfg.workers
    for index, frame in tqdm(run_shards(todo, shards, context, workers), total=len(todo), desc="reward shards",
                             unit="shard"):
        store.write(index, frame)
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return
    write_outputs(params, pairs, store.merged(len(shards)), store.fingerprint, context.a_max)


def write_outputs(params: Params, pairs: pd.DataFrame, merged: pd.DataFrame, digest: str, a_max: float) -> None:
    """The reward table, the pairs, the timings, metrics and the per-action figure."""
    timings = merged[["video_id", *[c for c in TIMING_COLUMNS if c in merged]]]
    table = merged.drop(columns=[c for c in TIMING_COLUMNS if c in merged])
    ok = table[table.status == "ok"]
    failed = table[table.status != "ok"]
    meta = provenance("rewards", params, "rewards", generator=params.generator.generator, fingerprint=digest,
                      a_max=f"{a_max:.6f}", frames=params.rewards.frames,
                      generation=json.dumps(generation_settings(params.generator)))
    per_action = ok.groupby("action")[list(COMPONENTS) + ["model_calls"]].mean()
    metrics = {"pairs": len(pairs), "train_pairs": int((pairs.split == "train").sum()),
               "val_pairs": int((pairs.split == "val").sum()), "videos": len(table), "failed": len(failed),
               "generator": params.generator.generator, "a_max": round(a_max, 4),
               "mean": {c: round(float(ok[c].mean()), 4) for c in COMPONENTS},
               "mean_seconds_per_video": round(float(timings.seconds.mean()), 4)}
    with staged_outputs() as out:
        out.parquet(table, TABLE, metadata=meta)
        out.parquet(pairs, PAIRS, metadata=meta)
        out.parquet(timings, TIMINGS, metadata=meta)
        out.json({k: v for k, v in metrics.items() if k != "mean_seconds_per_video"}, REPORTS / "metrics.json")
        plot_action_rewards(per_action, out.path(REPORTS / "actions.png"))
    log.info("reward table: %d videos (%d failed), %.3f s per video; mean %s", len(table), len(failed),
             metrics["mean_seconds_per_video"], metrics["mean"])
    for reason, n in failed.status.value_counts().head(5).items():
        log.warning("  %d videos %s", n, reason)


if __name__ == "__main__":
    run_stage(main)

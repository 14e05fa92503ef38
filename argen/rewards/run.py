"""The rewards stage's work: the reward table, sharded over processes or torchrun ranks, and its outputs.

``stages/rewards.py`` runs it; its docstring says what the stage reads and writes.
"""

from __future__ import annotations

import json
import logging

import pandas as pd
from tqdm import tqdm

from argen.actions import ACTIONS
from argen.rewards.plots import plot_action_rewards
from argen.rewards.table import (
    COMPONENTS, TIMING_COLUMNS, RewardContext, ShardStore, fingerprint, generation_settings, identity_landmarks,
    make_pairs, read_reward_inputs, run_shards, shard_pairs,
)
from argen.distributed import launched_ranks
from argen.extract import FRAME_COLUMNS
from argen.io import read_table, staged_outputs
from argen.params import Params
from argen.rewards.components import EmotionScorer, training_a_max
from argen.paths import (
    AU_CLIPS as CLIPS, FRAMES, IDENTITIES, IDENTITY_IMAGES as IMAGES, PROMPTS, REWARDS as TABLE,
    REWARD_PAIRS as PAIRS, REWARD_SHARDS as SHARDS, REWARD_TIMINGS as TIMINGS, report_dir,
)
from argen.stage import provenance

REPORTS = report_dir("rewards")

log = logging.getLogger("argen.stages.rewards")


def a_max_value(params: Params) -> float:
    """R_E's a_max: the param, or with ``auto`` the quantile of real training frames' AU norms."""
    cfg = params.rewards
    if cfg.a_max != "auto":
        return float(cfg.a_max)
    clips = read_table(CLIPS, ["clip_id", "split"], "extract_aus")
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus")
    value = training_a_max(frames, clips, cfg.a_max_quantile)
    log.info("a_max = %.3f (the %.2f quantile of the AU-vector norm over real training frames)", value,
             cfg.a_max_quantile)
    return value


def emotion_scorer(params: Params) -> EmotionScorer:
    """R_C's classifier, fitted on the extract_aus rows of the training split's clips only."""
    clips = read_table(CLIPS, ["clip_id", "label", "split"], "extract_aus")
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus")
    scorer = EmotionScorer.fit(frames, clips, params.seed)
    log.info("R_C's emotion classifier: fitted on %d training clips %s", sum(scorer.n_clips.values()), scorer.n_clips)
    return scorer


def run_rewards_stage(params: Params) -> None:
    cfg = params.rewards
    ranks = launched_ranks()
    identities, prompts = read_reward_inputs(IDENTITIES, PROMPTS)
    pairs = make_pairs(identities, prompts, cfg.val_fraction, params.seed, cfg.max_identities)
    scorer = emotion_scorer(params)
    context = RewardContext(generator=params.generator, rewards=cfg, extract=params.extract_aus, a_max=a_max_value(params),
                            base_seed=params.seed, image_dir=str(IMAGES), landmarks=identity_landmarks(identities),
                            au_rows_path=str(FRAMES), scorer=scorer, device=ranks.device)
    store = ShardStore(SHARDS, fingerprint(context, pairs))
    shards = shard_pairs(pairs, cfg.shard_pairs)
    done = store.finished(len(shards)) if ranks.rank == 0 else set()
    if ranks.distributed:
        ranks.start()
        ranks.barrier()  # rank 0 has discarded stale shards before anyone reads the folder
        done = store.finished(len(shards))
    todo = [k for k in range(len(shards)) if k not in done and ranks.mine(k)]
    log.info("%d pairs (%d train, %d val) x %d actions x %d seeds in %d shards: %d finished before, %d to do%s",
             len(pairs), int((pairs.split == "train").sum()), int((pairs.split == "val").sum()), len(ACTIONS),
             cfg.n_seeds, len(shards), len(done), len(todo), f" on rank {ranks.rank}/{ranks.world}" if ranks.distributed else "")
    workers = 1 if ranks.distributed else cfg.workers
    for index, frame in tqdm(run_shards(todo, shards, context, workers), total=len(todo), desc="reward shards",
                             unit="shard"):
        store.write(index, frame)
    if not ranks.finish():
        return
    write_outputs(params, pairs, store.merged(len(shards)), store.fingerprint, context.a_max, scorer)


def write_outputs(params: Params, pairs: pd.DataFrame, merged: pd.DataFrame, digest: str, a_max: float,
                  scorer: EmotionScorer) -> None:
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
               "emotion_scorer_train_clips": scorer.n_clips,
               "mean": {c: round(float(ok[c].mean()), 4) for c in COMPONENTS if ok[c].notna().any()},  # R_A: none
               "R_A_undefined": int(ok.R_A.isna().sum()),  # videos whose prompt names no AU (nothing to check)
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

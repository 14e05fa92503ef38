"""The reward table: every (pair, action, seed) generated as a short video and audited once (eq. 14-17).

**Pairs.** One (x0, y) pair per identity x scarce-emotion prompt, ``pair_id = <identity>-<emotion>``. They are
split into training and validation by identity (a seeded permutation of the identities; the last
``val_fraction`` of it validates), so no identity is on both sides.

**Work.** For each pair, each of the 12 actions (:data:`argen.policy.reinforce.ACTIONS`) and each seed index s, the
generator makes a ``rewards.frames``-frame video and :class:`argen.rewards.components.VideoAuditor` scores it. All
actions of a pair share its seeds (common random numbers: the actions of a pair are compared on the same
noise), ``seed = base_seed + 1000 * pair_number + s``. Every row keeps the component rewards, the steps run
and the model calls; seconds go to a separate timings table, so the reward table itself is byte-identical
for the same params.

**Shards and resuming.** Pairs are grouped in shards of ``shard_pairs``; a finished shard is written at once
(atomically) under ``data/cache/reward_shards/`` with a fingerprint of everything that determines its
rows (the pairs, generator settings and model files, frames, size, audit settings, seeds, and the source
of the generation and audit code). A rerun reuses the finished shards
whose fingerprint matches and discards, naming them, those made under other settings: a stale table is
never mixed with a fresh one. Shards run on ``workers`` CPU processes; under ``torchrun`` /
``accelerate launch`` (``WORLD_SIZE`` > 1) each rank takes the shards ``rank, rank + world, ...`` on its own
device, and rank 0 merges all shards in index order once every rank is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from argen.actions import ACTIONS
from argen.errors import InputError, UserError
from argen.extract import landmarks_of
from argen.extract.run import make_backend
from argen.face import haar_cascade
from argen.generators.factory import GenerationInput, make_generator
from argen.asi.kb import prompt_aus_from_line
from argen.identities import read_identity_image
from argen.io import read_table, staged_outputs
from argen.params import ExtractAUsParams, GeneratorParams, RewardsParams
from argen.paths import REWARD_VIDEOS
from argen.rewards.components import EmotionScorer, RewardSettings, VideoAuditor

log = logging.getLogger(__name__)

#: ``generator`` keys that decide no row of the table: where it runs, and the length of full clips (the
#: table's videos have ``rewards.frames``). Every other key makes the table stale when it changes.
NOT_GENERATION_KEYS: frozenset[str] = frozenset({"device", "n_frames"})
#: The modules whose code decides a row of the table (generation, rendering, audit, the action set), relative
#: to the package: part of the fingerprint, so that a code change never reuses old shards.
ROW_MODULES: tuple[str, ...] = ("generators/factory.py", "generators/guidance.py", "generators/motion.py",
                                "generators/render.py", "generators/mean_face.py", "generators/warp.py",
                                "generators/ti2v.py", "rewards/components.py", "rewards/table.py", "actions.py")
#: ``rewards`` keys that change how the work runs, not what it computes.
EXECUTION_KEYS: tuple[str, ...] = ("workers", "shard_pairs", "keep_videos")
#: Component columns of the reward table.
COMPONENTS: tuple[str, ...] = ("R_S", "R_Q", "Q_m", "Q_M", "R_F", "R_E", "R_A", "R_C")
TIMING_COLUMNS: tuple[str, ...] = ("generate_seconds", "seconds")


def make_pairs(identities: pd.DataFrame, prompts: pd.DataFrame, val_fraction: float, seed: int,
               max_identities: int = 0) -> pd.DataFrame:
    """The (x0, y) pairs with their split (module docstring).

    Raises:
        InputError: no prompt refers to a known identity.
    """
    known = prompts[prompts.identity_id.isin(identities.clip_id)]
    if known.empty:
        raise InputError("no prompt refers to an identity of identities.parquet: re-run the prompts stage")
    ids = np.array(sorted(known.identity_id.unique()))
    order = ids[np.random.default_rng(seed).permutation(len(ids))]
    if max_identities:
        order = order[:max_identities]
    n_val = int(round(val_fraction * len(order)))
    if val_fraction > 0 and len(order) > 1:
        n_val = min(max(n_val, 1), len(order) - 1)
    split = {identity: ("val" if k >= len(order) - n_val else "train") for k, identity in enumerate(order)}
    table = identities.set_index("clip_id")
    pairs = known[known.identity_id.isin(split)].sort_values(["identity_id", "emotion"]).reset_index(drop=True)
    return pd.DataFrame({
        "pair_id": pairs.identity_id + "-" + pairs.emotion, "pair_number": np.arange(len(pairs)),
        "identity_id": pairs.identity_id, "emotion": pairs.emotion, "split": pairs.identity_id.map(split),
        "prompt": pairs.prompt, "raw_final": pairs.raw_final,
        "image_file": table.loc[pairs.identity_id, "image_file"].to_numpy()})


def action_label(action: tuple[int, float, float]) -> str:
    """``T20-a2-b2`` for (20, 2, 2): the action part of a video id."""
    return f"T{action[0]}-a{action[1]:g}-b{action[2]:g}"


@dataclass(frozen=True)
class RewardContext:
    """Everything a worker needs to generate and audit (picklable)."""

    generator: GeneratorParams
    rewards: RewardsParams
    extract: ExtractAUsParams
    a_max: float
    base_seed: int
    image_dir: str
    landmarks: dict[str, np.ndarray]   # identity -> (68, 2)
    au_rows_path: str                  # extract_aus rows (the warp generator fits on them)
    scorer: EmotionScorer | None = None   # R_C's classifier, fitted on the training split's clips
    device: str = ""


def generation_settings(cfg: GeneratorParams) -> dict:
    """The generator settings a reward table is made under (recorded with it; the policy stage checks them)."""
    return {key: value for key, value in cfg.model_dump(mode="json").items() if key not in NOT_GENERATION_KEYS}


def stale_settings(meta: dict[str, str], generator: GeneratorParams, rewards: RewardsParams
                   ) -> dict[str, tuple[object, object]]:
    """The settings that differ between a reward table (its Parquet metadata, as the rewards stage writes it)
    and the current params: ``{"generator.size": (table's value, params' value), ...}``; empty when fresh.

    The generator settings of :func:`generation_settings` and every ``rewards`` key but the execution
    ones (:data:`EXECUTION_KEYS`) count; a key the table does not record counts as changed.
    """
    made = json.loads(meta.get("generation", "{}"))
    stale = {f"generator.{key}": (made.get(key), value) for key, value in generation_settings(generator).items()
             if made.get(key) != value}
    made_rewards = json.loads(meta.get("params", "{}")).get("rewards", {})
    for key, value in rewards.model_dump(mode="json", exclude=set(EXECUTION_KEYS)).items():
        if made_rewards.get(key) != value:
            stale[f"rewards.{key}"] = (made_rewards.get(key), value)
    return stale


def check_fresh(meta: dict[str, str], generator: GeneratorParams, rewards: RewardsParams, path: Path) -> None:
    """Stop when the reward table at ``path`` (metadata ``meta``) was made under other settings than the params.

    Raises:
        UserError: naming each stale setting with the table's and the params' value.
    """
    stale = stale_settings(meta, generator, rewards)
    if stale:
        shown = ", ".join(f"{k}: table {a!r}, params {b!r}" for k, (a, b) in stale.items())
        raise UserError(f"{path} is stale ({shown}): re-run the rewards stage (dvc repro rewards)")


def fingerprint(context: RewardContext, pairs: pd.DataFrame) -> str:
    """A digest of what determines the table's rows: the pairs (prompts, identity frames and landmarks),
    the settings and the generator's model files."""
    settings = {"generator": generation_settings(context.generator),
                # shard_pairs changes no row but decides which pairs a shard index holds
                "rewards": context.rewards.model_dump(mode="json", exclude={"workers", "keep_videos"}),
                "extract": context.extract.model_dump(mode="json") if context.rewards.au_backend == "openface" else {},
                "a_max": round(context.a_max, 9), "base_seed": context.base_seed,
                "scorer": context.scorer.digest() if context.scorer is not None else None}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted([*(package / name for name in ROW_MODULES), *(package / "extract").glob("*.py"),
                        package / "face.py", package / "aus.py"]):
        digest.update(path.read_bytes())  # the code that makes and audits the videos
    digest.update(pd.util.hash_pandas_object(pairs, index=False).to_numpy().tobytes())
    for identity in sorted(set(pairs.identity_id)):
        digest.update(np.ascontiguousarray(context.landmarks[identity], dtype=np.float64).tobytes())
    for name in sorted(set(pairs.image_file)):
        path = Path(context.image_dir) / name
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    cfg = context.generator
    model_dir = Path(cfg.motion_path if cfg.generator == "motion" else
                     cfg.t2v_path if cfg.generator == "ti2v" else context.au_rows_path)
    files = sorted(p for p in model_dir.rglob("*") if p.is_file()) if model_dir.is_dir() else [model_dir]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest() if path.stat().st_size < 2**28 else
                          f"{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


_worker: dict = {}


def _init_worker(context: RewardContext) -> None:
    """Build the generator and the auditor once per process."""
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)
    cfg = context.generator if not context.device else context.generator.model_copy(update={"device": context.device})
    rows = pd.read_parquet(context.au_rows_path) if cfg.generator == "warp" else None
    # a generated clip starts on its (neutral) identity frame: the landmarks backend measures against it
    extract = context.extract.model_copy(update={"backend": context.rewards.au_backend, "reference": "first"})
    settings = RewardSettings(alpha=context.rewards.alpha, sharpness_ref=context.rewards.sharpness_ref,
                              contrast_ref=context.rewards.contrast_ref, face_min_size=context.rewards.face_min_size,
                              a_max=context.a_max, active_threshold=context.rewards.active_threshold)
    _worker.update(generator=make_generator(cfg, rows), context=context,
                   auditor=VideoAuditor(make_backend(extract), haar_cascade(), settings, context.scorer))


def compute_shard(index: int, pairs: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """Generate and audit every (pair, action, seed) of one shard, in a worker."""
    context: RewardContext = _worker["context"]
    generator, auditor = _worker["generator"], _worker["auditor"]
    steps_max = max(action[0] for action in ACTIONS)
    rows = []
    for pair in pairs.itertuples(index=False):
        image = read_identity_image(Path(context.image_dir) / pair.image_file)
        item = GenerationInput(image, context.landmarks[pair.identity_id], pair.prompt,
                               prompt_aus_from_line(pair.raw_final))
        for s in range(context.rewards.n_seeds):
            seed = context.base_seed + 1000 * int(pair.pair_number) + s
            for action_index, action in enumerate(ACTIONS):
                row = {"video_id": f"{pair.pair_id}/{action_label(action)}/s{s}", "pair_id": pair.pair_id,
                       "action": action_index, "T": action[0], "a": action[1], "b": action[2], "seed_index": s,
                       "seed": seed}
                start = time.perf_counter()
                try:
                    video, record = generator.generate(item, action, seed, context.rewards.frames)
                    audit = auditor.audit(video, item.prompt_aus, action[0], steps_max, pair.emotion)
                except (ValueError, RuntimeError, OSError) as err:
                    rows.append(row | {"status": f"failed: {type(err).__name__}: {err}"})
                    continue
                row.update({name: float(audit[name]) for name in COMPONENTS})
                row.update(steps_run=int(record.get("steps_run", 0)),
                           model_calls=int(record.get("denoiser_calls", record.get("unet_calls", 0))),
                           still=bool(record.get("still", False)), status="ok",
                           generate_seconds=float(record.get("seconds", 0.0)),
                           seconds=time.perf_counter() - start)
                rows.append(row)
                if context.rewards.keep_videos:
                    keep_video(video, REWARD_VIDEOS / (row["video_id"].replace("/", "__") + ".png"))
    return index, pd.DataFrame(rows)


def keep_video(video: np.ndarray, path: Path) -> None:
    """Write a short video as one PNG strip (frames side by side), for raters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(list(video), axis=1))


class ShardStore:
    """Finished shards on disk, each a Parquet file carrying the fingerprint it was made under."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    def path(self, index: int) -> Path:
        return self.folder / f"shard_{index:05d}.parquet"

    def finished(self, n_shards: int) -> set[int]:
        """Indices of the shards already done under this fingerprint; stale or foreign files are deleted."""
        done = set()
        if not self.folder.is_dir():
            return done
        for path in sorted(self.folder.glob("shard_*.parquet")):
            try:
                made_under = (pq.read_schema(path).metadata or {}).get(b"argen.fingerprint", b"").decode()
                index = int(path.stem.split("_")[1])
            except (OSError, ValueError, IndexError) as err:
                log.warning("discarding unreadable shard %s (%s)", path, err)
                path.unlink()
                continue
            if made_under != self.fingerprint or index >= n_shards:
                log.warning("discarding stale shard %s: made under settings %s, now %s", path.name, made_under,
                            self.fingerprint)
                path.unlink()
                continue
            done.add(index)
        return done

    def write(self, index: int, frame: pd.DataFrame) -> None:
        """Store one finished shard atomically."""
        with staged_outputs() as out:
            out.parquet(frame, self.path(index), metadata={"fingerprint": self.fingerprint})

    def merged(self, n_shards: int) -> pd.DataFrame:
        """All shards in index order."""
        return pd.concat([pd.read_parquet(self.path(k)) for k in range(n_shards)], ignore_index=True)


def shard_pairs(pairs: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """Consecutive groups of ``size`` pairs."""
    return [pairs.iloc[k:k + size] for k in range(0, len(pairs), size)]


def run_shards(todo: list[int], shards: list[pd.DataFrame], context: RewardContext,
               workers: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """Compute the ``todo`` shards, yielding each as soon as it is done (in-process for one worker)."""
    if workers <= 1 or len(todo) <= 1:
        _init_worker(context)
        for index in todo:
            yield compute_shard(index, shards[index])
        return
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker, initargs=(context,)) as pool:
        futures = [pool.submit(compute_shard, index, shards[index]) for index in todo]
        for future in as_completed(futures):
            yield future.result()


def identity_landmarks(identities: pd.DataFrame) -> dict[str, np.ndarray]:
    """Landmarks (68, 2) by identity id."""
    return dict(zip(identities.clip_id, landmarks_of(identities)))


def read_reward_inputs(identities_path: Path, prompts_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The identities (with landmarks) and prompts the pairs are made of."""
    identities = read_table(identities_path, ["clip_id", "image_file", *[f"x_{i}" for i in range(68)],
                                              *[f"y_{i}" for i in range(68)]], "identities")
    prompts = read_table(prompts_path, ["identity_id", "emotion", "prompt", "raw_final"], "prompts")
    return identities, prompts

"""Stage ``generate`` (Algorithm 1 stage 2): the augmentation set D3.

Reads ``seed``, ``generate`` (with ``generate.policy``: learned, random or fixed), ``generator``, the
identities and prompts, the trained policy (``models/policy``) and the generator's model. Writes
``data/generated/<clip_id>/00001.jpg``... (full-length clips, ``generator.n_frames`` frames at ``generator.size``),
``data/generated/index.parquet`` (one row per clip: the clip table's columns plus identity, prompt,
action, seed, generator, steps run, model calls, policy, status), ``reports/generate/metrics.json`` and
``reports/generate/contact_sheet.png``.

Each process generates into ``data/cache/generate/rank_<r>/``; the clips are then moved into place together.
On several GPUs: ``torchrun --nproc_per_node N stages/generate.py`` (rank r makes clips r, r + N, ...;
rank 0 assembles them in the single-process order).
"""

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from argen.policy.augment import choose_pairs, generate_set, policy_actions
from argen.generators.factory import make_generator
from argen.generators.preview import contact_sheet
from argen.rewards.table import distributed_rank
from argen.errors import InputError, UserError
from argen.extract import FRAME_COLUMNS, landmarks_of
from argen.io import read_table, staged_outputs, write_parquet
from argen.params import Params
from argen.stage import provenance, run_stage

IDENTITIES = Path("data/interim/identities.parquet")
IMAGES = Path("data/interim/identities")
PROMPTS = Path("data/interim/prompts.parquet")
FRAMES = Path("data/interim/aus.parquet")
POLICY = Path("models/policy")
OUT = Path("data/generated")
WORK = Path("data/cache/generate")
REPORTS = Path("reports/generate")

log = logging.getLogger("argen.stages.generate")


def main(params: Params) -> None:
    generator_cfg, cfg = params.generator, params.generate
    rank, world, local_rank = distributed_rank()
    if world > 1:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else ""
        generator_cfg = generator_cfg.model_copy(update={"device": device}) if device else generator_cfg
        torch.distributed.init_process_group("nccl" if device else "gloo")
    identities = read_table(IDENTITIES, ["clip_id", "image_file", *[f"x_{i}" for i in range(68)],
                                         *[f"y_{i}" for i in range(68)]], "identities").set_index("clip_id")
    prompts = read_table(PROMPTS, ["identity_id", "emotion", "prompt", "raw_final"], "prompts")
    prompts = prompts[prompts.identity_id.isin(identities.index)]
    not_scarce = sorted(set(cfg.per_class) - set(params.decompose.scarce_classes))
    if not_scarce:
        log.warning("generate.per_class names %s, not scarce classes (decompose.scarce_classes %s): no prompts, "
                    "nothing generated for them", not_scarce, params.decompose.scarce_classes)
    per_class = {e: n for e, n in cfg.per_class.items() if e not in not_scarce}
    pairs = choose_pairs(prompts, per_class, params.seed)
    if pairs.empty:
        raise InputError(f"{PROMPTS}: no prompt for the classes of generate.per_class {per_class}")
    images, landmarks = {}, {}
    for identity in sorted(set(pairs.identity_id)):
        path = IMAGES / identities.loc[identity, "image_file"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: identity image missing or unreadable (re-run the identities stage)")
        images[identity], landmarks[identity] = image, landmarks_of(identities.loc[[identity]])[0]
    actions = policy_actions(cfg, generator_cfg, pairs, images, landmarks, params.seed, POLICY)
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus") if generator_cfg.generator == "warp" else None
    generator = make_generator(generator_cfg, frames)
    mine = (np.arange(len(pairs)) % world) == rank
    work = WORK / f"rank_{rank}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tqdm(total=int(mine.sum()), desc="generate", unit="clip") as progress:
        part = generate_set(pairs[mine], actions[mine], generator, images, landmarks, work, OUT, generator_cfg.n_frames,
                            params.seed, cfg.jpeg_quality, cfg.policy, progress)
    write_parquet(part, work / "index.parquet")
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
        if rank != 0:
            return
    index = pd.concat([pd.read_parquet(WORK / f"rank_{r}" / "index.parquet") for r in range(world)])
    index = index.sort_values("number").reset_index(drop=True)
    if not index.status.str.startswith("ok").any():
        raise UserError(f"every one of the {len(index)} clips failed; the first: {index.status.iloc[0]}")
    with staged_outputs() as out:
        folder = out.path(OUT)
        folder.mkdir(parents=True)
        for row in index.itertuples(index=False):
            if row.n_frames:
                shutil.move(WORK / f"rank_{row.number % world}" / row.clip_id, folder / row.clip_id)
        meta = provenance("generate", params, "generate", "generator", generator=generator.name, policy=cfg.policy)
        write_parquet(index, folder / "index.parquet", metadata=meta)  # inside the staged folder
        ok = index[index.status.str.startswith("ok")]
        shown = [(f"{r.emotion} | {r.identity_id} | T{r.T} ({r.a:g},{r.b:g})",
                  np.stack([cv2.imread(str(folder / r.clip_id / f)) for f in r.frames]))
                 for r in ok.head(cfg.contact_sheet).itertuples(index=False)]
        if shown:
            shown_frames = sorted({int(round(f)) for f in np.linspace(1, generator_cfg.n_frames, 4)})
            contact_sheet(shown, shown_frames, out.path(REPORTS / "contact_sheet.png"))
        out.json(summary(index) | {"not_scarce_skipped": not_scarce}, REPORTS / "metrics.json")
    shutil.rmtree(WORK, ignore_errors=True)
    failed = index[~index.status.str.startswith("ok")]
    log.info("%d clips generated with %s (policy %s), %d failed; per class %s", len(ok), generator.name, cfg.policy,
             len(failed), ok.emotion.value_counts().to_dict())
    for reason, n in failed.status.value_counts().head(5).items():
        log.warning("  %d clips %s", n, reason)


def summary(index) -> dict:
    """Metrics: clips per class, failures, actions chosen, model calls."""
    ok = index[index.status.str.startswith("ok")]
    return {"clips": len(ok), "failed": int(len(index) - len(ok)), "still": int(ok.status.str.contains("still").sum()),
            "per_class": {e: int(n) for e, n in ok.emotion.value_counts().sort_index().items()},
            "actions": {f"{t} ({a:g},{b:g})": int(n) for (t, a, b), n in
                        ok.groupby(["T", "a", "b"]).size().items()},
            "mean_model_calls": round(float(ok.model_calls.mean()), 3) if len(ok) else 0.0}


if __name__ == "__main__":
    run_stage(main)

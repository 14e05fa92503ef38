"""The generate stage's work: the augmentation set D3 with the policy's actions, split over torchrun ranks.

``stages/generate.py`` runs it; its docstring says what the stage reads and writes.
"""

from __future__ import annotations

import json
import logging
import shutil

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.distributed import launched_ranks
from argen.errors import InputError, UserError
from argen.extract import FRAME_COLUMNS, landmarks_of
from argen.generators.factory import make_generator
from argen.generators.preview import contact_sheet
from argen.identities import read_identity_image
from argen.io import read_table, staged_outputs, write_parquet
from argen.params import Params
from argen.counts import generated_counts, resolve_per_class
from argen.policy.augment import choose_pairs, generate_set, policy_actions, policy_reward
from argen.paths import (
    CLIPS, FRAMES, GENERATED as OUT, GENERATE_WORK as WORK, IDENTITIES, IDENTITY_IMAGES as IMAGES, POLICY, PROMPTS, report_dir,
)
from argen.stage import provenance

REPORTS = report_dir("generate")

log = logging.getLogger("argen.stages.generate")


def run_generate_stage(params: Params) -> None:
    generator_cfg, cfg = params.generator, params.generate
    ranks = launched_ranks()
    if ranks.device:
        generator_cfg = generator_cfg.model_copy(update={"device": ranks.device})
    ranks.start()
    identities = read_table(IDENTITIES, ["clip_id", "image_file", *[f"x_{i}" for i in range(68)],
                                         *[f"y_{i}" for i in range(68)]], "identities").set_index("clip_id")
    prompts = read_table(PROMPTS, ["identity_id", "emotion", "prompt", "raw_final"], "prompts")
    prompts = prompts[prompts.identity_id.isin(identities.index)]
    counts = resolve_per_class(cfg.per_class, read_table(CLIPS, ["label", "split"], "decompose"), cfg.table7_factor)
    if cfg.per_class == "table7":
        log.info("generate.per_class: table7 (x %g) on this training split: %s", cfg.table7_factor, counts)
    not_scarce = sorted(set(counts) - set(params.decompose.scarce_classes))
    if not_scarce:
        log.warning("generate.per_class names %s, not scarce classes (decompose.scarce_classes %s): no prompts, "
                    "nothing generated for them", not_scarce, params.decompose.scarce_classes)
    per_class = {e: n for e, n in counts.items() if e not in not_scarce}
    pairs = choose_pairs(prompts, per_class, params.seed)
    if pairs.empty:
        raise InputError(f"{PROMPTS}: no prompt for the classes of generate.per_class {per_class}")
    images, landmarks = {}, {}
    for identity in sorted(set(pairs.identity_id)):
        images[identity] = read_identity_image(IMAGES / identities.loc[identity, "image_file"])
        landmarks[identity] = landmarks_of(identities.loc[[identity]])[0]
    actions = policy_actions(cfg, generator_cfg, pairs, images, landmarks, params.seed, POLICY)
    frames = read_table(FRAMES, FRAME_COLUMNS, "extract_aus") if generator_cfg.generator == "warp" else None
    generator = make_generator(generator_cfg, frames)
    mine = np.array([ranks.mine(k) for k in range(len(pairs))], dtype=bool)
    work = WORK / f"rank_{ranks.rank}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tqdm(total=int(mine.sum()), desc="generate", unit="clip") as progress:
        part = generate_set(pairs[mine], actions[mine], generator, images, landmarks, work, OUT, generator_cfg.n_frames,
                            params.seed, cfg.jpeg_quality, cfg.policy, progress)
    write_parquet(part, work / "index.parquet")
    if not ranks.finish():
        return
    index = pd.concat([pd.read_parquet(WORK / f"rank_{r}" / "index.parquet") for r in range(ranks.world)])
    index = index.sort_values("number").reset_index(drop=True)
    if not index.status.str.startswith("ok").any():
        raise UserError(f"every one of the {len(index)} clips failed; the first: {index.status.iloc[0]}")
    with staged_outputs() as out:
        folder = out.path(OUT)
        folder.mkdir(parents=True)
        for row in index.itertuples(index=False):
            if row.n_frames:
                shutil.move(WORK / f"rank_{row.number % ranks.world}" / row.clip_id, folder / row.clip_id)
        meta = provenance("generate", params, "generate", "generator", generator=generator.name, policy=cfg.policy)
        write_parquet(index, folder / "index.parquet", metadata=meta)  # inside the staged folder
        (folder / "counts.json").write_text(json.dumps(generated_counts(index)) + "\n")  # what the oracle reads
        ok = index[index.status.str.startswith("ok")]
        shown = [(f"{r.emotion} | {r.identity_id} | T{r.T} ({r.a:g},{r.b:g})",
                  np.stack([cv2.imread(str(folder / r.clip_id / f)) for f in r.frames]))
                 for r in ok.head(cfg.contact_sheet).itertuples(index=False)]
        if shown:
            shown_frames = sorted({int(round(f)) for f in np.linspace(1, generator_cfg.n_frames, 4)})
            contact_sheet(shown, shown_frames, out.path(REPORTS / "contact_sheet.jpg"))
        out.json(summary(index) | {"asked": per_class, "per_class_rule": cfg.per_class if cfg.per_class == "table7"
                                   else "explicit", "not_scarce_skipped": not_scarce,
                                   "reward": policy_reward(cfg, POLICY)}, REPORTS / "metrics.json")
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
            "per_class": generated_counts(index),
            "actions": {f"{t} ({a:g},{b:g})": int(n) for (t, a, b), n in
                        ok.groupby(["T", "a", "b"]).size().items()},
            "mean_model_calls": round(float(ok.model_calls.mean()), 3) if len(ok) else 0.0}

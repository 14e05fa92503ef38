"""How much of the real clips' motion the ``motion`` generator's samplers keep at few steps.

Run after ``make repro`` (it reads ``models/motion``, the extract_aus rows of the training split and the ASI
prompts):

    python -m benchmarks.motion_sampler [--samples 12] [--steps 5 10 20 50]

For each sampler of ``generator.motion_sampler`` and each T (denoiser calls), motions are sampled with the
action (T, 2, 2) from the fixed prompt of every emotion with training tracks and from the run's ASI prompts of
the scarce emotions (seeds 0 .. samples-1, prompts in turn). Printed per emotion: the amplitude of the
generated motions, the peak over frames of the mean landmark displacement from frame 1 (IOD), as a ratio of the
real training tracks' mean amplitude of that emotion, and its seconds per motion. A deterministic few-step
sampler returns something close to the mean of the motions the prompt allows, which moves less than any one
real clip; this measures how much less, per sampler.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from argen.asi.kb import prompt_aus_from_line
from argen.asi.prompts import FIXED_PROMPT
from argen.generators.motion import (MOTION_SAMPLERS, MotionGuidance, MotionModel, minilm_encoder, motion_condition,
                                     sample_motion, load_training_tracks)
from argen.io import read_table
from argen.params import load_params
from argen.paths import PROMPTS


def amplitude(motions: np.ndarray) -> np.ndarray:
    """Peak over frames of the mean landmark displacement from frame 1, per motion (n, M, 68, 2) -> (n,)."""
    return np.linalg.norm(motions, axis=-1).mean(axis=-1).max(axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50])
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params()
    tracks, _ = load_training_tracks(params.motion_model)
    labels = np.asarray(tracks.labels)
    real = amplitude(tracks.motions)
    model = MotionModel.load(params.generator.motion_path)
    prompts = read_table(PROMPTS, ["emotion", "prompt", "raw_final"], "prompts")
    conditions = {("fixed", e): [motion_condition(FIXED_PROMPT.format(emotion=e), {}, minilm_encoder)[0]]
                  for e in sorted(set(labels))}
    for emotion, rows in prompts.groupby("emotion"):
        conditions[("asi", emotion)] = [motion_condition(r.prompt, prompt_aus_from_line(r.raw_final), minilm_encoder)[0]
                                        for r in rows.head(args.samples).itertuples()]
    rows = []
    for sampler in MOTION_SAMPLERS:
        guidance = MotionGuidance(params.generator.motion_g_min, params.generator.motion_g_max,
                                  params.generator.guidance_form, sampler)
        for (prompts_kind, emotion), conds in conditions.items():
            for steps in args.steps:
                start = time.perf_counter()
                motions = np.stack([sample_motion(model, conds[k % len(conds)], steps, 2.0, 2.0, guidance, k)[0]
                                    for k in range(args.samples)])
                seconds = (time.perf_counter() - start) / args.samples
                rows.append({"sampler": sampler, "prompts": prompts_kind, "emotion": emotion, "T": steps,
                             "ratio": amplitude(motions).mean() / real[labels == emotion].mean(),
                             "s_per_motion": seconds})
    table = pd.DataFrame(rows)
    print(f"amplitude of generated motions / real training tracks' ({args.samples} motions per cell, "
          f"{len(real)} real tracks)")
    print(table.pivot_table(index=["prompts", "emotion"], columns=["sampler", "T"], values="ratio").round(2)
          .to_string())
    print("\nseconds per motion (one thread)")
    print(table.pivot_table(index="sampler", columns="T", values="s_per_motion").round(3).to_string())


if __name__ == "__main__":
    main()

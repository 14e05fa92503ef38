"""Cost of the TI2V-Zero sampler against the number of DDIM steps T, on tiny random components.

Uses the test suite's tiny seeded ``UNet3DConditionModel`` + ``AutoencoderKL`` (the real diffusers classes,
random weights: no download) and the ModelScope DDIM scheduler, then samples one video per T in {5, 10, 15, 20}
(the policy's action set S_T) for each queue mode (``reencode``, the reference's decode + encode of every
generated frame, and ``latent``) and prints, per mode and T, the DDIM steps actually run (ModelScope grid:
T = 15 runs 16), UNet calls per generated
frame (steps_run * (resample_iters + 1), one batched CFG call each), seconds per generated frame and
seconds per video. The absolute times say nothing about the real 1.7B model; the ratios between rows do:
the sampler's cost is linear in T.

Usage (from the project root):
python -m benchmarks.ti2v_tiny [--frames 16] [--queue 15] [--resample 0] [--size 32] [--threads 1] [--modes reencode latent]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch
from argen.generators.ti2v import SamplerConfig, sample
from tests.test_ti2v import CROSS_DIM, get_dummy_components

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="output frames per video, input included")
    parser.add_argument("--queue", type=int, default=15, help="queue length K")
    parser.add_argument("--resample", type=int, default=0, help="resample iterations r per step")
    parser.add_argument("--size", type=int, default=32, help="image height and width (a multiple of 4)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", nargs="+", choices=["reencode", "latent"], default=["reencode", "latent"])
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 15, 20])
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    components = get_dummy_components()
    gen = torch.Generator().manual_seed(1)
    embeds = {"prompt_embeds": torch.randn(1, 77, CROSS_DIM, generator=gen),
              "negative_embeds": torch.randn(1, 77, CROSS_DIM, generator=gen)}
    image = np.random.default_rng(0).integers(0, 256, size=(args.size, args.size, 3), dtype=np.uint8)
    base = SamplerConfig(n_frames=args.frames, queue_len=args.queue, resample_iters=args.resample,
                         height=args.size, width=args.size)
    sample(components, image, **embeds, config=replace(base, n_frames=2, steps=1))  # warm-up

    print(f"tiny TI2V-Zero on CPU ({args.threads} threads): {args.frames} frames, K={args.queue}, "
          f"r={args.resample}, {args.size}x{args.size}")
    print(f"{'queue':>8} {'T':>3} {'steps_run':>9} {'unet/frame':>10} {'s/frame':>8} {'s/video':>8}")
    for steps in args.steps:
        for mode in args.modes:
            _, record = sample(components, image, **embeds, config=replace(base, steps=steps, queue=mode))
            generated = args.frames - 1
            print(f"{mode:>8} {steps:>3} {record['steps_run']:>9} {record['unet_calls'] // generated:>10} "
                  f"{record['seconds'] / generated:>8.3f} {record['seconds']:>8.2f}")


if __name__ == "__main__":
    main()

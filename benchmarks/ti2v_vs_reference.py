"""The project's TI2V-Zero sampler against the reference's algorithm, timed in one run on the same weights.

The reference loop follows TI2V-Zero's published code (``merlresearch/TI2V-Zero``: ``modelscope_t2v.py``
and ``diffusion.py``, read, not copied) step for step: ModelScope's DDIM grid 1 + arange(0, 1000, 1000 // T)
reversed; the new frame starts from the queue's last latent noised to the first step with its own noise;
at each step the queue noised to t replaces the first K frames, the queue noised to t_next is drawn once,
and ``resample_iters`` times the window is stepped t -> t_next (DDIM through x0, eta 0), its queue frames
set to the queue at t_next and the whole window re-noised back to t, before the kept step; classifier-free
guidance as two UNet calls (conditional, then unconditional); after each frame the whole pixel queue is
re-encoded with the VAE (``latent_dist.mean``, no clamp). The project's sampler differs only in cost:
one batched CFG call, and one encode per frame (the encoder is deterministic, so caching the queue's
encodings changes nothing). Both draw their noise from one seeded generator in the same order, so they
must agree: the script prints the outputs' max difference beside the speed-up.

``--model real`` builds ModelScope T2V's UNet3DConditionModel (about 1.4B parameters) and SD's VAE with
random weights (timing needs no trained weights; nothing is downloaded) and is meant for a GPU (fp16 UNet,
fp32 VAE, as in the reference); ``--model tiny`` runs the same comparison with the test suite's tiny
components on CPU. ``--resample`` defaults to ``generator.resample_iters`` in params.yaml.

Usage (from the project root): python -m benchmarks.ti2v_vs_reference --model real --device cuda --steps 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet3DConditionModel

from argen.generators.guidance import guidance_curve
from argen.generators.ti2v import SamplerConfig, TI2VComponents, ddim_scheduler, image_to_tensor, sample, tensor_to_uint8
from argen.params import load_params


def real_size_components(device: str, dtype: torch.dtype) -> TI2VComponents:
    """ModelScope T2V's UNet3D and SD's VAE architectures with random weights."""
    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2, cross_attention_dim=1024, attention_head_dim=64, norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types=("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=256)
    return TI2VComponents(unet=unet.to(device, dtype).eval(), vae=vae.to(device, torch.float32).eval(),
                          scheduler=ddim_scheduler())


@torch.no_grad()
def reference_style(components: TI2VComponents, image: np.ndarray, cond: torch.Tensor, uncond: torch.Tensor,
                    cfg: SamplerConfig, seed: int, device: str) -> tuple[np.ndarray, list[torch.Tensor]]:
    """TI2V-Zero as its reference code runs it (module docstring); returns the frames and final latents."""
    unet, vae = components.unet, components.vae
    abar = components.scheduler.alphas_cumprod.to(device)
    n_train = len(abar)
    stride = n_train // cfg.steps
    steps = (1 + torch.arange(0, n_train, stride)).clamp(0, n_train - 1).flip(0).tolist()
    generator = torch.Generator(device).manual_seed(seed)
    randn = lambda shape: torch.randn(shape, generator=generator, device=device)  # noqa: E731
    scaling = vae.config.scaling_factor
    k = cfg.queue_len
    pixels = [image_to_tensor(image, cfg.height, cfg.width).to(device)] * k
    frames, latents = [tensor_to_uint8(pixels[0])], []

    def q_sample(x, t, noise):
        return abar[t].sqrt() * x + (1 - abar[t]).sqrt() * noise

    def ddim_sample(xt, t, g):
        y_out = unet(xt.to(unet.dtype), t, encoder_hidden_states=cond).sample.float()
        u_out = unet(xt.to(unet.dtype), t, encoder_hidden_states=uncond).sample.float()
        eps = u_out + g * (y_out - u_out)
        x0 = (1 / abar[t]).sqrt() * xt - (1 / abar[t] - 1).sqrt() * eps
        eps = ((1 / abar[t]).sqrt() * xt - x0) / (1 / abar[t] - 1).sqrt()
        a_prev = abar[max(t - stride, 0)]
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps

    for m in range(2, cfg.n_frames + 1):
        g = float(guidance_curve(m, cfg.n_frames, cfg.a, cfg.b, cfg.g_min, cfg.g_max, cfg.guidance_form))
        cond_vid = torch.stack([vae.encode(p.to(vae.dtype)).latent_dist.mean.float() * scaling for p in pixels], 2)
        last = cond_vid[:, :, -1:]
        xt = torch.cat([cond_vid, q_sample(last, steps[0], randn(last.shape))], dim=2)
        for idx, t in enumerate(steps):
            next_t = steps[idx + 1] if idx + 1 < len(steps) else 0
            xt[:, :, :k] = q_sample(cond_vid, t, randn(cond_vid.shape))
            if cfg.resample_iters:
                next_noisy = q_sample(cond_vid, next_t, randn(cond_vid.shape))
            for _ in range(cfg.resample_iters):
                xt = ddim_sample(xt, t, g)
                xt[:, :, :k] = next_noisy
                ratio = abar[t] / abar[next_t]
                xt = ratio.sqrt() * xt + (1 - ratio).sqrt() * randn(xt.shape)
            xt = ddim_sample(xt, t, g)
        latents.append(xt[:, :, -1:].clone())
        decoded = vae.decode((xt[:, :, -1] / scaling).to(vae.dtype)).sample.float()
        pixels = pixels[1:] + [decoded]  # no clamp: the reference re-encodes the raw decoder output
        frames.append(tensor_to_uint8(decoded))
    return np.stack(frames), latents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "real"], default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=4, help="output frames per video (timed), input included")
    parser.add_argument("--queue", type=int, default=15)
    parser.add_argument("--resample", type=int, default=None, help="resample iterations (default: params.yaml)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    if args.resample is None:
        args.resample = load_params(args.params).generator.resample_iters

    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    if args.model == "real":
        components, size, dim = real_size_components(args.device, dtype), 256, 1024
    else:
        from tests.test_ti2v import CROSS_DIM, get_dummy_components
        components, size, dim, dtype = get_dummy_components(), 32, CROSS_DIM, torch.float32
        components.unet.to(args.device)
        components.vae.to(args.device)
    gen = torch.Generator().manual_seed(1)
    cond, uncond = (torch.randn(1, 77, dim, generator=gen).to(args.device, dtype) for _ in range(2))
    image = np.random.default_rng(0).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    cfg = SamplerConfig(n_frames=args.frames, queue_len=args.queue, steps=args.steps, height=size, width=size,
                        resample_iters=args.resample, schedule="modelscope", queue="reencode")

    def timed(run) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    ours_latents: list[torch.Tensor] = []
    outputs = {}

    def ours() -> None:
        ours_latents.clear()
        outputs["ours"], outputs["record"] = sample(
            components, image, prompt_embeds=cond, negative_embeds=uncond, config=cfg, seed=0, device=args.device,
            on_frame=lambda m, latent, queue: ours_latents.append(latent.clone()))

    def reference() -> None:
        outputs["ref"], outputs["ref_latents"] = reference_style(components, image, cond, uncond, cfg, 0, args.device)

    timed(ours), timed(reference)  # warm-up
    t_ours, t_ref = timed(ours), timed(reference)
    generated = args.frames - 1
    latent_diff = max(float((a - b).abs().max()) for a, b in zip(ours_latents, outputs["ref_latents"]))
    pixel_diff = int(np.abs(outputs["ours"].astype(int) - outputs["ref"].astype(int)).max())
    record = outputs["record"]
    print(f"{args.model} model on {args.device} (UNet {str(dtype).removeprefix('torch.')}, VAE float32), "
          f"T={args.steps} ({record['steps_run']} steps run, modelscope grid), r={args.resample}, K={args.queue}, "
          f"{generated} generated frames")
    print(f"project sampler : {t_ours / generated:.3f} s/frame")
    print(f"reference       : {t_ref / generated:.3f} s/frame")
    print(f"speed-up        : {t_ref / t_ours:.2f}x")
    print(f"max difference  : latents {latent_diff:.2e}, frames {pixel_diff} (uint8 levels)")


if __name__ == "__main__":
    main()

"""The project's TI2V-Zero sampler against a reference-style loop, timed in one run on the same weights.

The reference-style loop does what TI2V-Zero's published code does per generated frame: it re-encodes the
whole pixel queue with the VAE, and runs classifier-free guidance as two UNet calls (unconditional, then
conditional). The project's sampler keeps each frame's latent in the queue (one VAE encode per video) and
batches the two CFG branches into one UNet call. Both use the same schedule, queue length and guidance,
so the printed ratio is the speed-up of those two choices.

``--model real`` builds ModelScope T2V's UNet3DConditionModel (about 1.4B parameters) and SD's VAE with
random weights (timing needs no trained weights; nothing is downloaded) and is meant for a GPU;
``--model tiny`` runs the same comparison with the test suite's tiny components on CPU.

Usage (from the project root): python -m benchmarks.ti2v_vs_reference --model real --device cuda --steps 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from diffusers import AutoencoderKL, UNet3DConditionModel

from argen.ard.guidance import guidance_curve
from argen.ard.ti2v import SamplerConfig, TI2VComponents, ddim_scheduler, image_to_tensor, replace_queue, sample, \
    tensor_to_uint8


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
    return TI2VComponents(unet=unet.to(device, dtype).eval(), vae=vae.to(device, dtype).eval(),
                          scheduler=ddim_scheduler())


@torch.no_grad()
def reference_style(components: TI2VComponents, image: np.ndarray, cond: torch.Tensor, uncond: torch.Tensor,
                    cfg: SamplerConfig, seed: int, device: str) -> np.ndarray:
    """TI2V-Zero as its reference code runs it: queue re-encoded per frame, unbatched CFG."""
    unet, vae, scheduler = components.unet, components.vae, components.scheduler
    generator = torch.Generator(device).manual_seed(seed)
    scaling = vae.config.scaling_factor
    pixels = [image_to_tensor(image, cfg.height, cfg.width).to(device)] * cfg.queue_len
    scheduler.set_timesteps(cfg.steps, device=device)
    frames = [tensor_to_uint8(pixels[0])]
    for m in range(2, cfg.n_frames + 1):
        g = float(guidance_curve(m, cfg.n_frames, cfg.a, cfg.b, cfg.g_min, cfg.g_max, cfg.guidance_form))
        queue = torch.stack([vae.encode(p.to(vae.dtype)).latent_dist.mean.float() * scaling for p in pixels], dim=2)
        noise = torch.randn(queue.shape, generator=generator, device=device)
        s_t = scheduler.add_noise(queue, noise, scheduler.timesteps[0])
        window = torch.cat([s_t, s_t[:, :, -1:]], dim=2)
        for t in scheduler.timesteps:
            window = replace_queue(window, queue, t, torch.randn(queue.shape, generator=generator, device=device),
                                   scheduler)
            eps_u = unet(window.to(unet.dtype), t, encoder_hidden_states=uncond).sample.float()
            eps_c = unet(window.to(unet.dtype), t, encoder_hidden_states=cond).sample.float()
            window = scheduler.step(eps_u + g * (eps_c - eps_u), t, window).prev_sample
        decoded = vae.decode((window[:, :, -1] / scaling).to(vae.dtype)).sample.float()
        pixels = pixels[1:] + [decoded.clamp(-1, 1)]
        frames.append(tensor_to_uint8(decoded))
    return np.stack(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "real"], default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--frames", type=int, default=4, help="output frames per video (timed), input included")
    parser.add_argument("--queue", type=int, default=15)
    args = parser.parse_args()

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
    cfg = SamplerConfig(n_frames=args.frames, queue_len=args.queue, steps=args.steps, height=size, width=size)

    def timed(run) -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    ours = lambda: sample(components, image, prompt_embeds=cond, negative_embeds=uncond, config=cfg, seed=0,  # noqa: E731
                          device=args.device)
    reference = lambda: reference_style(components, image, cond, uncond, cfg, 0, args.device)  # noqa: E731
    timed(ours), timed(reference)  # warm-up
    t_ours, t_ref = timed(ours), timed(reference)
    generated = args.frames - 1
    print(f"{args.model} model on {args.device} ({str(dtype).removeprefix('torch.')}), T={args.steps}, "
          f"K={args.queue}, {generated} generated frames")
    print(f"project sampler : {t_ours / generated:.3f} s/frame")
    print(f"reference-style : {t_ref / generated:.3f} s/frame")
    print(f"speed-up        : {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()

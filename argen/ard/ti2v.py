"""The TI2V-Zero sampler (paper sec. 3.1, eq. 5, 10-12), written on diffusers components.

ARGen turns a text-to-video latent diffusion model (ModelScope T2V: ``UNet3DConditionModel``,
``AutoencoderKL``, CLIP text encoder) into an image-to-video generator without training, by the
"repeat-slide" queue and "replacement" strategy of TI2V-Zero:

1. The input frame x0 is encoded once, z0 = E(x0) (``vae.encode(x).latent_dist.mean * scaling_factor``),
   and repeated K times to form the queue s0 = <z0, ..., z0>.
2. Each window holds F = K + 1 latent frames: the K queue frames and one new frame. Only the last frame
   is new, so the UNet's temporal attention must explain it from the history.
3. Initialisation ("DDPM inversion" in the paper): the queue is forward-noised to the first timestep t_T,
   s_T = sqrt(abar_T) s0 + sqrt(1 - abar_T) eps (``scheduler.add_noise``); this is a closed-form forward
   diffusion, not a DDIM inversion through the UNet. The new frame starts as s_T's last frame, s_T^{K-1}
   (the "proximity approximation"): at the first step the window is exactly s_T plus a copy of its last
   frame, so the new frame starts from the same noise as its neighbour; every later replacement draws
   fresh noise.
4. At each reverse step t, the first K window frames are replaced by the queue noised to t (eq. 5), the
   UNet predicts the noise for the conditional and unconditional prompts in one batched call, the two are
   combined with the frame's guidance g = f(m; a, b) (eq. 11-12), and a DDIM step (eta 0) moves the
   window to the previous timestep.
5. Resampling (``resample_iters`` r > 0, the reference uses 4): after a step t -> t_prev the window is
   re-noised back to t with the DDPM transition z_t = sqrt(abar_t / abar_prev) z_prev
   + sqrt(1 - abar_t / abar_prev) eps, and the step is redone; after r re-noisings the last result is
   kept. A frame therefore costs steps_run * (r + 1) UNet calls.
6. After the last step the new frame's latent (the window's last frame, the final DDIM sample) is
   decoded for output and pushed onto the queue, popping the front: the window slides by one frame.
   Generated frames are never re-encoded; the queue keeps their latents.

Indexing: m is the 1-based output frame index. Output frame 1 is the input image itself (resized to the
sampling resolution when needed, never passed through the VAE), so frames m = 2..n_frames are generated
and each window uses the guidance of the frame it generates.

Step count: ``steps`` is passed to ``DDIMScheduler.set_timesteps``. ModelScope's own sampler runs 16
steps for T = 15 where diffusers runs 15, so the record stores both the requested T and the number of
timesteps actually run.

All noise comes from one ``torch.Generator`` seeded with ``seed`` on the sampling device, so a seed
reproduces a video bit for bit on the same device and dtype. Latents are kept in float32; the UNet and
VAE run in the components' dtype (float16 on CUDA is fine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel

from argen.ard.guidance import guidance_curve

#: DDIM settings of ModelScope T2V (DESIGN.md); a loaded scheduler config that differs is overridden.
DDIM_SETTINGS: dict = {
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "clip_sample": False,
}

#: Subfolders of a diffusers-format ModelScope T2V directory (e.g. damo-vilab/text-to-video-ms-1.7b).
SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def ddim_scheduler(config: dict | None = None) -> DDIMScheduler:
    """A ``DDIMScheduler`` with the ModelScope settings of ``DDIM_SETTINGS``.

    Args:
        config: a scheduler config to start from (e.g. the one loaded with the model); None builds the
            diffusers defaults. Keys of ``DDIM_SETTINGS`` are overridden.

    Returns:
        The scheduler.
    """
    return DDIMScheduler.from_config(dict(config or {}), **DDIM_SETTINGS)


@dataclass
class TI2VComponents:
    """The diffusers components the sampler runs on.

    Attributes:
        unet: the video UNet; called as ``unet(sample[B, C, F, h, w], t, encoder_hidden_states=...)``.
        vae: the image autoencoder (frames are encoded and decoded one at a time).
        scheduler: the DDIM scheduler (settings of ``DDIM_SETTINGS``).
        text_encoder: CLIP text model; None when prompt embeddings are passed to ``sample``.
        tokenizer: CLIP tokenizer; None when prompt embeddings are passed to ``sample``.
    """

    unet: UNet3DConditionModel
    vae: AutoencoderKL
    scheduler: DDIMScheduler
    text_encoder: torch.nn.Module | None = None
    tokenizer: object | None = None

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> TI2VComponents:
        """Load a local diffusers-format ModelScope T2V directory; nothing is downloaded.

        Args:
            path: the model directory (``ard.t2v_path`` in params.yaml), holding the subfolders unet/,
                vae/, text_encoder/, tokenizer/ and scheduler/.
            device: where to put the models.
            dtype: the models' dtype (float16 on CUDA, float32 on CPU).

        Returns:
            The components, in eval mode on ``device``.

        Raises:
            FileNotFoundError: the directory or one of its subfolders is missing.
        """
        from transformers import CLIPTextModel, CLIPTokenizer

        path = Path(path)
        for sub in ("", *SUBFOLDERS):
            if not (path / sub).is_dir():
                raise FileNotFoundError(
                    f"ModelScope T2V folder {path / sub} not found: set ard.t2v_path in params.yaml to a local "
                    f"diffusers-format text-to-video model (subfolders {', '.join(SUBFOLDERS)}, e.g. "
                    "damo-vilab/text-to-video-ms-1.7b); nothing is downloaded")
        kwargs = {"local_files_only": True}
        unet = UNet3DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype, **kwargs)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=dtype, **kwargs)
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", torch_dtype=dtype, **kwargs)
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", **kwargs)
        scheduler = DDIMScheduler.from_pretrained(path, subfolder="scheduler", **kwargs)
        if any(scheduler.config.get(key) != value for key, value in DDIM_SETTINGS.items()):
            scheduler = ddim_scheduler(scheduler.config)
        for model in (unet, vae, text_encoder):
            model.to(device).eval()
        return cls(unet=unet, vae=vae, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)


@dataclass
class SamplerConfig:
    """Settings of one TI2V-Zero run.

    Attributes:
        n_frames: M, output frames including the input frame (16 in the paper).
        queue_len: K, latent frames of history in each window (15 in the paper); windows hold K + 1 frames.
        steps: T, the DDIM steps requested (the policy picks T in {5, 10, 15, 20}).
        a, b: shape of the guidance curve f(m; a, b) (``argen.ard.guidance``).
        g_min, g_max: guidance bounds.
        guidance_form: ``paper`` (eq. 12 as written) or ``peak`` (normalised to reach g_max).
        resample_iters: r, re-noise-and-redo iterations per step (the reference code uses 4).
        height, width: sampling resolution in pixels.
        eta: DDIM eta (0: deterministic steps; the randomness is in the queue noise and resampling).
    """

    n_frames: int = 16
    queue_len: int = 15
    steps: int = 15
    a: float = 2.0
    b: float = 2.0
    g_min: float = 7.0
    g_max: float = 11.0
    guidance_form: str = "paper"
    resample_iters: int = 0
    height: int = 256
    width: int = 256
    eta: float = 0.0


@dataclass
class PromptEmbeds:
    """Text conditioning for classifier-free guidance: ``cond`` for the prompt, ``uncond`` for ""."""

    cond: torch.Tensor
    uncond: torch.Tensor


def encode_prompt(components: TI2VComponents, prompt: str | None = None, *,
                  prompt_embeds: torch.Tensor | None = None,
                  negative_embeds: torch.Tensor | None = None) -> PromptEmbeds:
    """CLIP embeddings of the prompt and of the empty prompt (the unconditional branch).

    Args:
        components: the sampler components; the text encoder and tokenizer are needed for any
            embedding not passed in.
        prompt: the text prompt; ignored when ``prompt_embeds`` is given.
        prompt_embeds: precomputed prompt embeddings [1, L, D].
        negative_embeds: precomputed embeddings of the empty prompt [1, L, D].

    Returns:
        The conditional and unconditional embeddings.

    Raises:
        ValueError: an embedding is neither passed nor computable (no text encoder/tokenizer, or no prompt).
    """
    def embed(text: str) -> torch.Tensor:
        if components.text_encoder is None or components.tokenizer is None:
            raise ValueError("no text encoder/tokenizer: pass prompt_embeds and negative_embeds")
        tok = components.tokenizer
        ids = tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        device = components.text_encoder.device
        with torch.no_grad():
            return components.text_encoder(ids.to(device))[0]

    if prompt_embeds is None:
        if prompt is None:
            raise ValueError("pass a prompt or prompt_embeds")
        prompt_embeds = embed(prompt)
    if negative_embeds is None:
        negative_embeds = embed("")
    return PromptEmbeds(cond=prompt_embeds, uncond=negative_embeds)


def cfg_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance (eq. 4, 11): eps_uncond + g (eps_cond - eps_uncond).

    Args:
        eps_uncond: noise predicted for the empty prompt.
        eps_cond: noise predicted for the prompt.
        guidance: g, here f(m; a, b) of the frame being generated.

    Returns:
        The guided noise prediction.
    """
    return eps_uncond + guidance * (eps_cond - eps_uncond)


def replace_queue(window: torch.Tensor, queue: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                  scheduler: DDIMScheduler) -> torch.Tensor:
    """The window with its first K frames replaced by the queue noised to t (eq. 5).

    Args:
        window: latents [B, C, K + 1, h, w] at timestep t.
        queue: clean queue latents s0 [B, C, K, h, w].
        t: the current timestep.
        noise: standard normal noise shaped like ``queue``.
        scheduler: supplies abar_t (``add_noise``).

    Returns:
        A new window: ``add_noise(queue, noise, t)`` followed by the window's last frame.
    """
    k = queue.shape[2]
    return torch.cat([scheduler.add_noise(queue, noise, t), window[:, :, k:]], dim=2)


def prev_alpha_cumprod(scheduler: DDIMScheduler, t: int) -> torch.Tensor:
    """abar at the timestep ``scheduler.step`` moves t to (the same rule as ``DDIMScheduler.step``)."""
    prev_t = int(t) - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    return scheduler.alphas_cumprod[prev_t] if prev_t >= 0 else scheduler.final_alpha_cumprod


def renoise(sample_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
            scheduler: DDIMScheduler) -> torch.Tensor:
    """Forward-noise a sample from the previous timestep back to t (the DDPM transition q(z_t | z_prev)).

    z_t = sqrt(abar_t / abar_prev) z_prev + sqrt(1 - abar_t / abar_prev) noise.

    Args:
        sample_prev: the window after the step t -> t_prev.
        t: the timestep to return to.
        noise: standard normal noise shaped like ``sample_prev``.
        scheduler: the DDIM scheduler whose step produced ``sample_prev``.

    Returns:
        The re-noised window at t.
    """
    ratio = scheduler.alphas_cumprod[int(t)] / prev_alpha_cumprod(scheduler, t)
    ratio = ratio.to(sample_prev.device, sample_prev.dtype)
    return ratio.sqrt() * sample_prev + (1 - ratio).sqrt() * noise


def image_to_tensor(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """A uint8 HxWx3 RGB image as a float [1, 3, height, width] tensor in [-1, 1] (resized if needed)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    if x.shape[2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(-1.0, 1.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [-1, 1] to a uint8 HxWx3 array."""
    x = ((x[0].float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()


def sample(components: TI2VComponents, image: np.ndarray, prompt: str | None = None, *,
           prompt_embeds: torch.Tensor | None = None, negative_embeds: torch.Tensor | None = None,
           config: SamplerConfig | None = None, seed: int = 0, device: str | torch.device | None = None,
           on_step: Callable[..., None] | None = None,
           on_frame: Callable[..., None] | None = None) -> tuple[np.ndarray, dict]:
    """Generate a video from one image and a prompt with the TI2V-Zero sampler.

    Args:
        components: UNet, VAE, DDIM scheduler (and text encoder/tokenizer unless embeddings are passed).
        image: the input frame, uint8 HxWx3 RGB.
        prompt: the text prompt (see ``encode_prompt``).
        prompt_embeds, negative_embeds: precomputed conditional/unconditional embeddings [1, L, D].
        config: sampler settings; None uses ``SamplerConfig()``.
        seed: seeds the generator of every noise draw.
        device: where sampling runs; None uses the VAE's device.
        on_step: optional observer ``on_step(m, t, window, queue, noise)`` called before every UNet call,
            after the queue replacement: ``window`` [1, C, K + 1, h, w] is the UNet input, ``queue`` the
            clean queue and ``noise`` the noise used to noise it to ``t``.
        on_frame: optional observer ``on_frame(m, latent, queue)`` called after frame m is generated:
            ``latent`` [1, C, 1, h, w] is its final latent and ``queue`` the queue after pushing it.

    Returns:
        frames: uint8 [n_frames, height, width, 3]; frames[0] (m = 1) is the input image (resized if needed).
        record: ``steps_requested``, ``steps_run`` (timesteps actually run per frame), ``unet_calls``
            (one per batched CFG forward), ``guidance`` (one value per generated frame, m = 2..n_frames),
            ``seconds``, ``device`` and ``dtype``.
    """
    cfg = config or SamplerConfig()
    if cfg.n_frames < 2 or cfg.queue_len < 1 or cfg.resample_iters < 0:
        raise ValueError(f"need n_frames >= 2, queue_len >= 1, resample_iters >= 0: {cfg}")
    start = time.perf_counter()
    unet, vae, scheduler = components.unet, components.vae, components.scheduler
    device = torch.device(device) if device is not None else vae.device
    model_dtype = unet.dtype
    generator = torch.Generator(device).manual_seed(seed)

    def randn(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)

    embeds = encode_prompt(components, prompt, prompt_embeds=prompt_embeds, negative_embeds=negative_embeds)
    context = torch.cat([embeds.uncond, embeds.cond]).to(device=device, dtype=model_dtype)
    scaling = vae.config.scaling_factor

    with torch.no_grad():
        x = image_to_tensor(image, cfg.height, cfg.width)
        z0 = vae.encode(x.to(device=device, dtype=vae.dtype)).latent_dist.mean.float() * scaling
        queue = z0[:, :, None].repeat(1, 1, cfg.queue_len, 1, 1)  # [1, C, K, h, w]

        scheduler.set_timesteps(cfg.steps, device=device)
        timesteps = scheduler.timesteps
        frames = [tensor_to_uint8(x)]
        guidance = []
        unet_calls = 0

        for m in range(2, cfg.n_frames + 1):
            g = float(guidance_curve(m, cfg.n_frames, cfg.a, cfg.b, cfg.g_min, cfg.g_max, cfg.guidance_form))
            guidance.append(g)
            init_noise = randn(queue.shape)
            s_T = scheduler.add_noise(queue, init_noise, timesteps[0])
            window = torch.cat([s_T, s_T[:, :, -1:]], dim=2)
            for i, t in enumerate(timesteps):
                for r in range(cfg.resample_iters + 1):
                    noise = init_noise if i == 0 and r == 0 else randn(queue.shape)
                    window = replace_queue(window, queue, t, noise, scheduler)
                    if on_step is not None:
                        on_step(m, t, window, queue, noise)
                    eps = unet(torch.cat([window, window]).to(model_dtype), t,
                               encoder_hidden_states=context, return_dict=False)[0].float()
                    unet_calls += 1
                    eps_uncond, eps_cond = eps.chunk(2)
                    stepped = scheduler.step(cfg_combine(eps_uncond, eps_cond, g), t, window, eta=cfg.eta,
                                             generator=generator, return_dict=False)[0]
                    if r < cfg.resample_iters:
                        window = renoise(stepped, t, randn(stepped.shape), scheduler)
                    else:
                        window = stepped
            latent = window[:, :, -1:]
            decoded = vae.decode((latent[:, :, 0] / scaling).to(vae.dtype)).sample
            frames.append(tensor_to_uint8(decoded))
            queue = torch.cat([queue[:, :, 1:], latent], dim=2)
            if on_frame is not None:
                on_frame(m, latent, queue)

    record = {
        "steps_requested": cfg.steps,
        "steps_run": len(timesteps),
        "unet_calls": unet_calls,
        "guidance": guidance,
        "seconds": time.perf_counter() - start,
        "device": str(device),
        "dtype": str(model_dtype).removeprefix("torch."),
    }
    return np.stack(frames), record

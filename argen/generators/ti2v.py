"""The TI2V-Zero sampler (paper sec. 3.1, eq. 5, 10-12), written on diffusers components.

ARGen turns a text-to-video latent diffusion model (ModelScope T2V: ``UNet3DConditionModel``,
``AutoencoderKL``, CLIP text encoder) into an image-to-video generator without training, by the
"repeat-slide" queue and "replacement" strategy of TI2V-Zero:

1. The input frame x0 is encoded once, z0 = E(x0) (``vae.encode(x).latent_dist.mean * scaling_factor``),
   and repeated K times to form the queue s0 = <z0, ..., z0>.
2. Each window holds F = K + 1 latent frames: the K queue frames and one new frame. Only the last frame
   is new, so the UNet's temporal attention must explain it from the history.
3. Initialisation ("DDPM inversion" in the paper): the new frame starts as the queue's last latent
   forward-noised to the first timestep t_0, sqrt(abar) z + sqrt(1 - abar) n, with its own noise n (a
   closed-form forward diffusion, not a DDIM inversion through the UNet). As in the reference code, this
   noise is drawn independently of the queue's step-0 noise, so frames K-1 and K never start identical.
4. At each reverse step t, the first K window frames are replaced by the queue noised to t (eq. 5), the
   UNet predicts the noise for the unconditional and conditional prompts in one batched call, the two are
   combined with the frame's guidance g = f(m; a, b) (eq. 11-12), and a DDIM step (eta 0) moves the
   window to t_prev.
5. Resampling (``resample_iters`` r > 0, the reference uses 4), as in the reference's loop: the queue
   noised to t_prev is drawn once per step; after each of r DDIM steps t -> t_prev the window's first K
   frames are set to it and the whole window is re-noised back to t with the DDPM transition
   z_t = sqrt(abar_t / abar_prev) z_prev + sqrt(1 - abar_t / abar_prev) eps, and the step is redone; the
   (r + 1)-th step is kept. A frame costs steps_run * (r + 1) batched UNet calls.
6. After the last step the new frame's latent is decoded (fp32 VAE) for output. ``queue="reencode"``
   (the reference) pushes ``encode(decode(latent))`` (no clamp, ``latent_dist.mean``) onto the queue;
   ``queue="latent"`` pushes the latent itself (one VAE encode less per frame). The front is popped: the
   window slides by one frame.

Indexing: m is the 1-based output frame index. Output frame 1 is the input image itself (centre-cropped
to the sampling aspect and resized, never passed through the VAE), so frames m = 2..n_frames are
generated and each window uses the guidance of the frame it generates.

Schedules (``schedule``): ``modelscope`` is the reference's own DDIM grid, 1 + arange(0, 1000, 1000 // T)
reversed (T = 15 runs 16 steps, 991, 925, ..., 1); ``diffusers`` is ``DDIMScheduler.set_timesteps`` with
``timestep_spacing="leading"`` pinned (T = 15 runs 15 steps, 925, ..., 1). Both step from t to
t - 1000 // T; the last step lands on abar_0 (``set_alpha_to_one`` False). The record stores the requested
T, the count run and the timesteps.

Noise order (one ``torch.Generator``; a test re-implements it): per generated frame, the new frame's
initial noise [1, C, 1, h, w]; then per step the queue noise at t [1, C, K, h, w], when r > 0 the queue
noise at t_prev, and per resampling iteration the re-noise [1, C, K + 1, h, w].

All noise comes from one ``torch.Generator`` seeded with ``seed`` on the sampling device, so a seed
reproduces a video bit for bit on the same device and dtype. Latents are kept in float32; the UNet runs in
its dtype (float16 on CUDA) and the VAE in float32, as in the reference.
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

from argen.generators.guidance import guidance_curve

#: DDIM settings of ModelScope T2V (DESIGN.md); a loaded scheduler config that differs is overridden.
DDIM_SETTINGS: dict = {
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "clip_sample": False,
    "timestep_spacing": "leading",
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
            path: the model directory (``generator.t2v_path`` in params.yaml), holding the subfolders unet/,
                vae/, text_encoder/, tokenizer/ and scheduler/.
            device: where to put the models.
            dtype: the UNet's and text encoder's dtype (float16 on CUDA, float32 on CPU); the VAE is float32.

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
                    f"ModelScope T2V folder {path / sub} not found: set generator.t2v_path in params.yaml to a local "
                    f"diffusers-format text-to-video model (subfolders {', '.join(SUBFOLDERS)}, e.g. "
                    "damo-vilab/text-to-video-ms-1.7b); nothing is downloaded")
        kwargs = {"local_files_only": True}
        unet = UNet3DConditionModel.from_pretrained(path, subfolder="unet", torch_dtype=dtype, **kwargs)
        # The VAE runs in fp32 under an fp16 UNet, as in the reference code.
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=torch.float32, **kwargs)
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
        a, b: shape of the guidance curve f(m; a, b) (``argen.generators.guidance``).
        g_min, g_max: guidance bounds.
        guidance_form: ``paper`` (eq. 12 as written), ``peak`` (normalised to reach g_max) or ``constant``
            (the midpoint on every frame: no curve).
        resample_iters: r, re-noise-and-redo iterations per step (the reference code uses 4).
        height, width: sampling resolution in pixels.
        eta: DDIM eta (0: deterministic steps; the randomness is in the queue noise and resampling).
        schedule: ``modelscope`` (the reference's DDIM grid; T = 15 runs 16 steps) or ``diffusers``.
        queue: ``reencode`` (each generated frame is decoded and re-encoded into the queue, as the
            reference does) or ``latent`` (the queue keeps the DDIM latent; one VAE encode less per frame).
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
    schedule: str = "modelscope"
    queue: str = "reencode"


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


def noise_to(x: torch.Tensor, abar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Closed-form forward diffusion q(z_t | z_0): sqrt(abar) x + sqrt(1 - abar) noise."""
    abar = abar.to(x)
    return abar.sqrt() * x + (1 - abar).sqrt() * noise


def replace_queue(window: torch.Tensor, noisy_queue: torch.Tensor) -> torch.Tensor:
    """The window with its first K frames replaced by the noised queue (eq. 5).

    Args:
        window: latents [B, C, K + 1, h, w].
        noisy_queue: the queue noised to the window's timestep [B, C, K, h, w] (``noise_to``).

    Returns:
        A new window: ``noisy_queue`` followed by the window's last frame.
    """
    return torch.cat([noisy_queue, window[:, :, noisy_queue.shape[2]:]], dim=2)


def schedule_timesteps(scheduler: DDIMScheduler, steps: int, schedule: str = "modelscope") -> list[int]:
    """The timesteps a T-step run visits, first (noisiest) to last.

    Args:
        scheduler: the DDIM scheduler (``num_train_timesteps``; ``set_timesteps`` for ``diffusers``).
        steps: T, the steps requested.
        schedule: ``modelscope``: 1 + arange(0, N, N // T), clamped to N - 1, reversed (the reference's
            sampler; T = 15 gives 16 steps from 991); ``diffusers``: ``set_timesteps(T)`` with leading
            spacing (T = 15 gives 15 steps from 925).

    Returns:
        The timesteps as ints.
    """
    n_train = scheduler.config.num_train_timesteps
    if steps < 1 or steps > n_train:
        raise ValueError(f"steps must be in 1..{n_train}, got {steps}")
    if schedule == "modelscope":
        return [min(1 + t, n_train - 1) for t in range(0, n_train, n_train // steps)][::-1]
    if schedule == "diffusers":
        scheduler.set_timesteps(steps)
        return [int(t) for t in scheduler.timesteps]
    raise ValueError(f"schedule must be modelscope or diffusers, got {schedule!r}")


def alpha_bar(scheduler: DDIMScheduler, t: int) -> torch.Tensor:
    """abar_t; a negative t (the step after the last) gives ``final_alpha_cumprod`` (abar_0 here)."""
    return scheduler.alphas_cumprod[int(t)] if int(t) >= 0 else scheduler.final_alpha_cumprod


def prev_timestep(scheduler: DDIMScheduler, t: int, steps: int) -> int:
    """The timestep a DDIM step from t lands on: t - N // T (the same stride on both schedules)."""
    return int(t) - scheduler.config.num_train_timesteps // steps


def ddim_step(eps: torch.Tensor, x: torch.Tensor, abar_t: torch.Tensor, abar_prev: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DDIM step (eq. 12 of DDIM) from abar_t to abar_prev.

    Args:
        eps: the (guided) noise prediction.
        x: the sample at t.
        abar_t, abar_prev: cumulative alphas at t and at the step's target.
        eta: DDIM eta; > 0 adds ``noise`` scaled by sigma.
        noise: standard normal noise shaped like ``x`` (needed when eta > 0).

    Returns:
        The sample at the target timestep.
    """
    abar_t, abar_prev = abar_t.to(x), abar_prev.to(x)
    x0 = (x - (1 - abar_t).sqrt() * eps) / abar_t.sqrt()
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
    out = abar_prev.sqrt() * x0 + (1 - abar_prev - sigma ** 2).sqrt() * eps
    return out + sigma * noise if eta > 0 else out


def renoise(sample_prev: torch.Tensor, abar_t: torch.Tensor, abar_prev: torch.Tensor,
            noise: torch.Tensor) -> torch.Tensor:
    """Forward-noise a sample from t_prev back to t (the DDPM transition q(z_t | z_prev)).

    z_t = sqrt(abar_t / abar_prev) z_prev + sqrt(1 - abar_t / abar_prev) noise.

    Args:
        sample_prev: the window after the step t -> t_prev.
        abar_t, abar_prev: cumulative alphas at t and t_prev.
        noise: standard normal noise shaped like ``sample_prev``.

    Returns:
        The re-noised window at t.
    """
    ratio = (abar_t / abar_prev).to(sample_prev)
    return ratio.sqrt() * sample_prev + (1 - ratio).sqrt() * noise


def image_to_tensor(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """A uint8 HxWx3 RGB image as a float [1, 3, height, width] tensor in [-1, 1].

    As in the reference, the image is centre-cropped to the target aspect ratio, then resized (bilinear,
    antialiased) when its size differs; a non-square frame is never stretched.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if h * width > w * height:  # too tall: crop rows
        crop = round(w * height / width)
        image = image[(h - crop) // 2:(h - crop) // 2 + crop]
    elif h * width < w * height:  # too wide: crop columns
        crop = round(h * width / height)
        image = image[:, (w - crop) // 2:(w - crop) // 2 + crop]
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
        on_step: optional observer ``on_step(m, t, window, queue, noise)`` called before every UNet call:
            ``window`` [1, C, K + 1, h, w] is the UNet input, ``queue`` the clean queue and ``noise`` the
            step's noise of the queue at ``t`` (the first call of a step sees exactly
            ``noise_to(queue, abar_t, noise)`` in its first K frames; resampled calls see the re-noised ones).
        on_frame: optional observer ``on_frame(m, latent, queue)`` called after frame m is generated:
            ``latent`` [1, C, 1, h, w] is its final DDIM latent and ``queue`` the queue after pushing it
            (re-encoded or the latent itself, per ``config.queue``).

    Returns:
        frames: uint8 [n_frames, height, width, 3]; frames[0] (m = 1) is the input image (resized if needed).
        record: ``steps_requested``, ``steps_run`` (timesteps actually run per frame), ``timesteps``,
            ``schedule``, ``queue``, ``resample_iters``, ``unet_calls`` (one per batched CFG forward),
            ``guidance`` (one value per generated frame, m = 2..n_frames), ``seconds``, ``device``,
            ``dtype`` (the UNet's) and ``vae_dtype``.
    """
    cfg = config or SamplerConfig()
    if cfg.n_frames < 2 or cfg.queue_len < 1 or cfg.resample_iters < 0:
        raise ValueError(f"need n_frames >= 2, queue_len >= 1, resample_iters >= 0: {cfg}")
    if cfg.queue not in ("reencode", "latent"):
        raise ValueError(f"queue must be reencode or latent, got {cfg.queue!r}")
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

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        return vae.encode(pixels.to(device=device, dtype=vae.dtype)).latent_dist.mean.float() * scaling

    timesteps = schedule_timesteps(scheduler, cfg.steps, cfg.schedule)
    abars = [(alpha_bar(scheduler, t).to(device), alpha_bar(scheduler, prev_timestep(scheduler, t, cfg.steps)).to(device))
             for t in timesteps]
    k, r_iters = cfg.queue_len, cfg.resample_iters

    with torch.no_grad():
        x = image_to_tensor(image, cfg.height, cfg.width)
        z0 = encode(x)
        queue = z0[:, :, None].repeat(1, 1, k, 1, 1)  # [1, C, K, h, w]
        frames = [tensor_to_uint8(x)]
        guidance = []
        unet_calls = 0

        def guided_step(window: torch.Tensor, t: int, g: float, abar_t, abar_prev) -> torch.Tensor:
            nonlocal unet_calls
            eps = unet(torch.cat([window, window]).to(model_dtype), torch.tensor(t, device=device),
                       encoder_hidden_states=context, return_dict=False)[0].float()
            unet_calls += 1
            eps_uncond, eps_cond = eps.chunk(2)
            noise = randn(window.shape) if cfg.eta > 0 else None
            return ddim_step(cfg_combine(eps_uncond, eps_cond, g), window, abar_t, abar_prev, cfg.eta, noise)

        for m in range(2, cfg.n_frames + 1):
            g = float(guidance_curve(m, cfg.n_frames, cfg.a, cfg.b, cfg.g_min, cfg.g_max, cfg.guidance_form))
            guidance.append(g)
            new = noise_to(queue[:, :, -1:], abars[0][0], randn(queue[:, :, -1:].shape))
            window = torch.cat([queue, new], dim=2)
            for t, (abar_t, abar_prev) in zip(timesteps, abars):
                noise = randn(queue.shape)
                window = replace_queue(window, noise_to(queue, abar_t, noise))
                queue_prev = noise_to(queue, abar_prev, randn(queue.shape)) if r_iters else None
                for _ in range(r_iters):
                    if on_step is not None:
                        on_step(m, t, window, queue, noise)
                    window = replace_queue(guided_step(window, t, g, abar_t, abar_prev), queue_prev)
                    window = renoise(window, abar_t, abar_prev, randn(window.shape))
                if on_step is not None:
                    on_step(m, t, window, queue, noise)
                window = guided_step(window, t, g, abar_t, abar_prev)
            latent = window[:, :, -1:]
            decoded = vae.decode((latent[:, :, 0] / scaling).to(vae.dtype)).sample.float()
            frames.append(tensor_to_uint8(decoded))
            pushed = encode(decoded)[:, :, None] if cfg.queue == "reencode" else latent
            queue = torch.cat([queue[:, :, 1:], pushed], dim=2)
            if on_frame is not None:
                on_frame(m, latent, queue)

    record = {
        "steps_requested": cfg.steps,
        "steps_run": len(timesteps),
        "timesteps": timesteps,
        "schedule": cfg.schedule,
        "queue": cfg.queue,
        "resample_iters": r_iters,
        "unet_calls": unet_calls,
        "guidance": guidance,
        "seconds": time.perf_counter() - start,
        "device": str(device),
        "dtype": str(model_dtype).removeprefix("torch."),
        "vae_dtype": str(vae.dtype).removeprefix("torch."),
    }
    return np.stack(frames), record

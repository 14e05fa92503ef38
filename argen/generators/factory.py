"""One interface for every generator: generate(identity, prompt, action (T, a, b), seed, frames).

``generator.generator`` picks ``motion`` (CPU default: landmark-motion diffusion, :mod:`argen.generators.motion`, rendered
by :mod:`argen.generators.render`), ``warp`` (AU-driven landmark warp, :mod:`argen.generators.warp`; T has no effect) or
``ti2v`` (the TI2V-Zero sampler on a local ModelScope T2V, :mod:`argen.generators.ti2v`). All take BGR uint8
identity frames (OpenCV's order, as every stage reads them) and return BGR uint8 videos of ``generator.size``
pixels square with a record of what ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import pandas as pd
import torch

from argen.generators.motion import (MotionGuidance, MotionModel, TextEncoder, minilm_encoder, motion_condition,
                                     motion_to_pixels, sample_motion)
from argen.generators.render import fit_to_size, render_frames
from argen.generators.warp import WarpGenerator, fit_au_landmark_model
from argen.params import GeneratorParams

if TYPE_CHECKING:  # imported where used: the diffusers models it loads cost every stage a second at start-up
    from argen.generators.ti2v import SamplerConfig, TI2VComponents

@dataclass(frozen=True)
class GenerationInput:
    """What a generator needs of one identity x prompt."""

    image: np.ndarray            # identity frame, BGR uint8
    landmarks: np.ndarray        # its 68 landmarks, pixels
    prompt: str                  # X_T, the prompt without AU codes (TI2V's text condition)
    prompt_aus: dict[int, float]  # the prompt's AUs with r in [0, 1] (with X_T, the motion generator's condition)


class VideoGenerator(Protocol):
    """The common interface."""

    name: str

    def generate(self, item: GenerationInput, action: tuple[int, float, float], seed: int,
                 n_frames: int) -> tuple[np.ndarray, dict]:
        """A video (n_frames, H, W, 3) BGR uint8, identity frame first, and a record of what ran."""


class MotionVideoGenerator:
    """The motion generator: a landmark motion sampled by the diffusion model, rendered on the identity frame.

    The condition is the prompt's text X_T (its expression part, embedded by ``encoder``) plus the AU
    intensities the prompt cites (:func:`argen.generators.motion.motion_condition`): a prompt without AU codes
    (the fixed prompts) still gets its emotion's motion from the text. The model makes M frames (its
    ``n_frames``); a request for fewer output frames takes M's frames at evenly spaced positions (the first
    and last included), for more it is an error.
    """

    name = "motion"

    def __init__(self, model: MotionModel, guidance: MotionGuidance, size: int,
                 encoder: TextEncoder = minilm_encoder) -> None:
        self.model = model
        self.guidance = guidance
        self.size = size
        self.encoder = encoder

    def generate(self, item: GenerationInput, action: tuple[int, float, float], seed: int,
                 n_frames: int) -> tuple[np.ndarray, dict]:
        start = time.perf_counter()
        steps, a, b = action
        model_frames = self.model.config.n_frames
        if n_frames > model_frames:
            raise ValueError(f"the motion model makes {model_frames} frames; {n_frames} were asked for "
                             f"(train it with motion_model.n_frames >= {n_frames})")
        image, landmarks = fit_to_size(item.image, item.landmarks, self.size)
        condition, text_only = motion_condition(item.prompt, item.prompt_aus, self.encoder)
        record = {"generator": self.name, "steps_requested": int(steps), "a": float(a), "b": float(b),
                  "seed": int(seed), "size": self.size, "text_only_aus": text_only}
        motion, sampled = sample_motion(self.model, condition, steps, a, b, self.guidance, seed)
        keep = np.round(np.linspace(0, model_frames - 1, n_frames)).astype(int)
        frames, stats = render_frames(image, landmarks, motion_to_pixels(motion[keep], landmarks))
        record.update(sampled, still=False, frames_kept=keep.tolist(), render=stats,
                      seconds=round(time.perf_counter() - start, 4))
        return frames, record


class WarpVideoGenerator:
    """The warp generator behind the common interface."""

    name = "warp"

    def __init__(self, warp: WarpGenerator, size: int) -> None:
        self.warp = warp
        self.size = size

    def generate(self, item: GenerationInput, action: tuple[int, float, float], seed: int,
                 n_frames: int) -> tuple[np.ndarray, dict]:
        return self.warp.generate(item.image, item.landmarks, item.prompt_aus, action, seed, n_frames,
                                  size=self.size)


class TI2VVideoGenerator:
    """The TI2V-Zero sampler behind the common interface."""

    name = "ti2v"

    def __init__(self, components: TI2VComponents, config: SamplerConfig, device: str) -> None:
        self.components = components
        self.config = config
        self.device = device

    def generate(self, item: GenerationInput, action: tuple[int, float, float], seed: int,
                 n_frames: int) -> tuple[np.ndarray, dict]:
        from argen.generators.ti2v import sample

        steps, a, b = action
        config = replace(self.config, steps=int(steps), a=float(a), b=float(b), n_frames=n_frames)
        rgb = cv2.cvtColor(item.image, cv2.COLOR_BGR2RGB)
        frames, record = sample(self.components, rgb, item.prompt, config=config, seed=seed, device=self.device)
        record.update(generator=self.name, a=float(a), b=float(b), seed=int(seed))
        return frames[..., ::-1].copy(), record


def motion_guidance(cfg: GeneratorParams) -> MotionGuidance:
    """The motion generator's guidance and sampler from the ``generator`` section (floor ``motion_g_min`` >= 1:
    conditional)."""
    return MotionGuidance(cfg.motion_g_min, cfg.motion_g_max, cfg.guidance_form, cfg.motion_sampler)


def make_generator(cfg: GeneratorParams, au_frames: pd.DataFrame | None = None) -> VideoGenerator:
    """The generator ``generator.generator`` names.

    Args:
        cfg: the ``generator`` section.
        au_frames: extract_aus rows, to fit the warp's AU-to-landmark model (warp only).

    Raises:
        MotionModelError: ``motion`` without a trained model at ``generator.motion_path``.
        FileNotFoundError: ``ti2v`` without the T2V weights at ``generator.t2v_path``.
        ValueError: ``warp`` without AU rows to fit its model on.
    """
    if cfg.generator == "motion":
        return MotionVideoGenerator(MotionModel.load(cfg.motion_path), motion_guidance(cfg), cfg.size)
    if cfg.generator == "warp":
        if au_frames is None:
            raise ValueError("the warp generator needs extract_aus rows to fit its AU-to-landmark model")
        return WarpVideoGenerator(WarpGenerator(fit_au_landmark_model(au_frames, cfg.warp_ridge)), cfg.size)
    from argen.generators.ti2v import SamplerConfig, TI2VComponents

    device = "cuda" if cfg.device == "auto" and torch.cuda.is_available() else ("cpu" if cfg.device == "auto"
                                                                                  else cfg.device)
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    components = TI2VComponents.load(cfg.t2v_path, device=device, dtype=dtype)
    config = SamplerConfig(queue_len=cfg.queue_len, g_min=cfg.g_min, g_max=cfg.g_max,
                           guidance_form=cfg.guidance_form, resample_iters=cfg.resample_iters,
                           height=cfg.size, width=cfg.size, schedule=cfg.schedule, queue=cfg.queue)
    return TI2VVideoGenerator(components, config, device)

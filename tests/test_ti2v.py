"""TI2V-Zero sampler on tiny seeded diffusers components (the real classes, random weights, CPU)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from argen.ard.guidance import guidance_curve
from argen.ard.ti2v import (
    DDIM_SETTINGS,
    SamplerConfig,
    TI2VComponents,
    cfg_combine,
    ddim_scheduler,
    prev_alpha_cumprod,
    renoise,
    replace_queue,
    sample,
)

CROSS_DIM = 16
#: 32x32 images -> 8x8 latents (the tiny VAE downsamples by 4); 4 output frames, K = 3, T = 2.
CONFIG = SamplerConfig(n_frames=4, queue_len=3, steps=2, height=32, width=32)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def get_dummy_components(seed: int = 0) -> TI2VComponents:
    """Tiny UNet3DConditionModel + AutoencoderKL + ModelScope DDIM, no text encoder."""
    torch.manual_seed(seed)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=CROSS_DIM, attention_head_dim=4, norm_num_groups=4).eval()
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16), in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3, latent_channels=4, sample_size=32, norm_num_groups=4).eval()
    return TI2VComponents(unet=unet, vae=vae, scheduler=ddim_scheduler())


@pytest.fixture(scope="module")
def components() -> TI2VComponents:
    return get_dummy_components()


@pytest.fixture(scope="module")
def embeds() -> dict:
    gen = torch.Generator().manual_seed(1)
    return {"prompt_embeds": torch.randn(1, 7, CROSS_DIM, generator=gen),
            "negative_embeds": torch.randn(1, 7, CROSS_DIM, generator=gen)}


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)


class CountingUNet(torch.nn.Module):
    """Wraps a UNet and counts its forward calls."""

    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet
        self.calls = 0

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.unet(*args, **kwargs)


class ZeroNoiseUNet(torch.nn.Module):
    """Analytic stand-in: predicts zero noise, so each DDIM step scales the window by sqrt(abar_prev/abar_t)."""

    dtype = torch.float32

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor, return_dict: bool = True):
        assert sample.shape[0] == encoder_hidden_states.shape[0] == 2  # uncond + cond in one batch
        return (torch.zeros_like(sample),)


def test_shape_dtype_and_first_frame(components, embeds, image):
    frames, record = sample(components, image, **embeds, config=CONFIG, seed=0)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], image)  # frame 1 is the input itself, not a VAE round trip
    assert record["steps_requested"] == 2 and record["steps_run"] == len(components.scheduler.timesteps) == 2
    assert record["device"] == "cpu" and record["dtype"] == "float32" and record["seconds"] > 0


def test_resized_input_frame(components, embeds, image):
    frames, _ = sample(components, image[:, :24], **embeds, config=replace(CONFIG, n_frames=2), seed=0)
    assert frames.shape == (2, 32, 32, 3)


@pytest.mark.parametrize("resample_iters", [0, 1])
def test_unet_calls(components, embeds, image, resample_iters):
    counting = CountingUNet(components.unet)
    cfg = replace(CONFIG, resample_iters=resample_iters)
    _, record = sample(replace(components, unet=counting), image, **embeds, config=cfg, seed=0)
    expected = (cfg.n_frames - 1) * record["steps_run"] * (resample_iters + 1)
    assert record["unet_calls"] == counting.calls == expected


def test_seed_reproducible(components, embeds, image):
    cfg = replace(CONFIG, resample_iters=1)
    first, _ = sample(components, image, **embeds, config=cfg, seed=3)
    again, _ = sample(components, image, **embeds, config=cfg, seed=3)
    other, _ = sample(components, image, **embeds, config=cfg, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[1:], other[1:])


def test_replacement_and_sliding_queue(components, embeds, image):
    comps = replace(components, unet=ZeroNoiseUNet())
    sched = comps.scheduler
    steps, frames_done = [], []
    sample(comps, image, **embeds, config=CONFIG, seed=0,
           on_step=lambda m, t, window, queue, noise: steps.append((m, int(t), window.clone(), queue.clone(),
                                                                    noise.clone())),
           on_frame=lambda m, latent, queue: frames_done.append((m, latent.clone(), queue.clone())))
    k = CONFIG.queue_len
    timesteps = [int(t) for t in sched.timesteps]
    assert [(m, t) for m, t, *_ in steps] == [(m, t) for m in range(2, 5) for t in timesteps]
    for m, t, window, queue, noise in steps:
        assert window.shape == (1, 4, k + 1, 8, 8)
        torch.testing.assert_close(window[:, :, :k], sched.add_noise(queue, noise, torch.tensor(t)), rtol=0, atol=0)
    # Frame 2's queue is K copies of the input latent; the new frame starts as the noised queue's last frame.
    first_queue = steps[0][3]
    assert torch.equal(first_queue, first_queue[:, :, :1].expand_as(first_queue))
    assert torch.equal(steps[0][2][:, :, -1], steps[0][2][:, :, k - 1])
    # With zero predicted noise, DDIM scales the new frame by sqrt(abar_final / abar_T) overall.
    abar_t = sched.alphas_cumprod[timesteps[0]]
    abar_final = sched.final_alpha_cumprod
    torch.testing.assert_close(frames_done[0][1][:, :, 0], (abar_final / abar_t).sqrt() * steps[0][2][:, :, -1])
    # The queue slides by one frame per generated frame and ends with that frame's latent.
    queues = [first_queue] + [queue for _, _, queue in frames_done]
    for (m, latent, queue), before in zip(frames_done, queues):
        assert torch.equal(queue[:, :, -1:], latent)
        assert torch.equal(queue[:, :, :-1], before[:, :, 1:])
    for m, _, window, queue, _ in steps:
        assert torch.equal(queue, queues[m - 2])


def test_replace_queue_and_renoise_known_values():
    sched = ddim_scheduler()
    sched.set_timesteps(4)
    t = sched.timesteps[1]
    queue, noise, window = torch.ones(1, 2, 3, 2, 2), torch.full((1, 2, 3, 2, 2), 2.0), torch.zeros(1, 2, 4, 2, 2)
    out = replace_queue(window, queue, t, noise, sched)
    abar = sched.alphas_cumprod[int(t)]
    torch.testing.assert_close(out[:, :, :3], (abar.sqrt() + 2 * (1 - abar).sqrt()).expand(1, 2, 3, 2, 2))
    assert torch.equal(out[:, :, 3], window[:, :, 3])
    ratio = abar / prev_alpha_cumprod(sched, t)
    assert prev_alpha_cumprod(sched, t) == sched.alphas_cumprod[int(t) - 1000 // 4]
    renoised = renoise(torch.ones(1, 2, 4, 2, 2), t, torch.zeros(1, 2, 4, 2, 2), sched)
    torch.testing.assert_close(renoised, ratio.sqrt().expand(1, 2, 4, 2, 2))
    # The last step's "previous" abar is final_alpha_cumprod (set_alpha_to_one False -> alphas_cumprod[0]).
    assert prev_alpha_cumprod(sched, sched.timesteps[-1]) == sched.alphas_cumprod[0]


def test_cfg_combine_and_recorded_guidance(components, embeds, image):
    uncond, cond = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.0])
    torch.testing.assert_close(cfg_combine(uncond, cond, 9.0), torch.tensor([19.0, 16.0]))
    cfg = replace(CONFIG, a=3.0, b=2.0, guidance_form="peak")
    _, record = sample(replace(components, unet=ZeroNoiseUNet()), image, **embeds, config=cfg, seed=0)
    expected = guidance_curve(np.arange(2, 5), 4, 3.0, 2.0, 7.0, 11.0, "peak")
    np.testing.assert_allclose(record["guidance"], expected)


def test_ddim_settings():
    sched = ddim_scheduler({"beta_schedule": "linear", "steps_offset": 0, "clip_sample": True})
    assert sched.config.beta_schedule == "scaled_linear" and sched.config.steps_offset == 1
    assert not sched.config.clip_sample and not sched.config.set_alpha_to_one
    assert (sched.config.beta_start, sched.config.beta_end) == (0.00085, 0.012)


def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ard\.t2v_path") as err:
        TI2VComponents.load(tmp_path / "no-model")
    assert str(tmp_path / "no-model") in str(err.value)
    (tmp_path / "partial" / "unet").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="vae"):
        TI2VComponents.load(tmp_path / "partial")


def save_tiny_model(root, components: TI2VComponents) -> None:
    """Write the tiny components plus a tiny CLIP text encoder/tokenizer in the ModelScope T2V layout."""
    (root / "tok").mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "h": 3, "a": 4, "p": 5, "y</w>": 6, "ha": 7}
    (root / "tok" / "vocab.json").write_text(json.dumps(vocab))
    (root / "tok" / "merges.txt").write_text("#version: 0.2\nh a\n")
    tokenizer = CLIPTokenizer(str(root / "tok" / "vocab.json"), str(root / "tok" / "merges.txt"), model_max_length=8)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=8, hidden_size=CROSS_DIM, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    components.unet.save_pretrained(root / "unet")
    components.vae.save_pretrained(root / "vae")
    text_encoder.save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(root / "tokenizer")
    DDIMScheduler(beta_schedule="linear", clip_sample=True).save_pretrained(root / "scheduler")


def test_load_round_trip_and_prompt(tmp_path, components, image):
    save_tiny_model(tmp_path / "t2v", components)
    loaded = TI2VComponents.load(tmp_path / "t2v")
    assert isinstance(loaded.unet, UNet3DConditionModel) and isinstance(loaded.text_encoder, CLIPTextModel)
    for key, value in DDIM_SETTINGS.items():  # the saved scheduler differs: rebuilt with the overrides
        assert loaded.scheduler.config[key] == value
    frames, record = sample(loaded, image, "a happy", config=replace(CONFIG, n_frames=2, steps=1), seed=0)
    assert frames.shape == (2, 32, 32, 3) and record["unet_calls"] == record["steps_run"] == 1

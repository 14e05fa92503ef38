"""TI2V-Zero sampler on tiny seeded diffusers components (the real classes, random weights, CPU)."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from argen.generators.guidance import guidance_curve
from argen.generators.ti2v import (
    DDIM_SETTINGS,
    SamplerConfig,
    TI2VComponents,
    cfg_combine,
    ddim_scheduler,
    alpha_bar,
    ddim_step,
    image_to_tensor,
    noise_to,
    prev_timestep,
    renoise,
    replace_queue,
    sample,
    schedule_timesteps,
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
    assert record["steps_requested"] == 2 and record["steps_run"] == 2 and record["timesteps"] == [501, 1]
    assert record["schedule"] == "modelscope" and record["queue"] == "reencode"
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
    cfg = replace(CONFIG, queue="latent")
    sample(comps, image, **embeds, config=cfg, seed=0,
           on_step=lambda m, t, window, queue, noise: steps.append((m, int(t), window.clone(), queue.clone(),
                                                                    noise.clone())),
           on_frame=lambda m, latent, queue: frames_done.append((m, latent.clone(), queue.clone())))
    k = CONFIG.queue_len
    timesteps = schedule_timesteps(sched, CONFIG.steps, "modelscope")
    assert timesteps == [501, 1]
    assert [(m, t) for m, t, *_ in steps] == [(m, t) for m in range(2, 5) for t in timesteps]
    for m, t, window, queue, noise in steps:
        assert window.shape == (1, 4, k + 1, 8, 8)
        abar = sched.alphas_cumprod[t]
        torch.testing.assert_close(window[:, :, :k], abar.sqrt() * queue + (1 - abar).sqrt() * noise)
    # Frame 2's queue is K copies of the input latent; the new frame's starting noise is its own.
    first_queue = steps[0][3]
    assert torch.equal(first_queue, first_queue[:, :, :1].expand_as(first_queue))
    assert not torch.allclose(steps[0][2][:, :, -1], steps[0][2][:, :, k - 1])
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


def test_helpers_known_values():
    sched = ddim_scheduler()
    t = 251
    abar = sched.alphas_cumprod[t]
    queue, noise, window = torch.ones(1, 2, 3, 2, 2), torch.full((1, 2, 3, 2, 2), 2.0), torch.zeros(1, 2, 4, 2, 2)
    out = replace_queue(window, noise_to(queue, abar, noise))
    torch.testing.assert_close(out[:, :, :3], (abar.sqrt() + 2 * (1 - abar).sqrt()).expand(1, 2, 3, 2, 2))
    assert torch.equal(out[:, :, 3], window[:, :, 3])
    assert prev_timestep(sched, t, 4) == 1 and alpha_bar(sched, -249) == sched.alphas_cumprod[0]
    abar_prev = sched.alphas_cumprod[1]
    renoised = renoise(torch.ones(1, 2, 4, 2, 2), abar, abar_prev, torch.zeros(1, 2, 4, 2, 2))
    torch.testing.assert_close(renoised, (abar / abar_prev).sqrt().expand(1, 2, 4, 2, 2))
    x, eps = torch.full((1, 3), 2.0), torch.full((1, 3), 0.5)
    x0 = (2.0 - (1 - abar).sqrt() * 0.5) / abar.sqrt()
    torch.testing.assert_close(ddim_step(eps, x, abar, abar_prev), abar_prev.sqrt() * x0 + (1 - abar_prev).sqrt() * eps)


def test_schedules():
    sched = ddim_scheduler()
    assert sched.config.timestep_spacing == "leading"
    ms = schedule_timesteps(sched, 15, "modelscope")
    assert len(ms) == 16 and ms[0] == 991 and ms[-1] == 1 and all(a - b == 66 for a, b in zip(ms, ms[1:]))
    df = schedule_timesteps(sched, 15, "diffusers")
    assert len(df) == 15 and df[0] == 925 and df[-1] == 1
    assert [len(schedule_timesteps(sched, t, "modelscope")) for t in (5, 10, 15, 20)] == [5, 10, 16, 20]
    with pytest.raises(ValueError, match="schedule"):
        schedule_timesteps(sched, 15, "karras")


def test_centre_crop_not_stretch():
    wide = np.random.default_rng(1).integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    expected = torch.from_numpy(wide[:, 8:40].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    torch.testing.assert_close(image_to_tensor(wide, 32, 32), expected)
    tall = wide.transpose(1, 0, 2)
    expected = torch.from_numpy(tall[8:40].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    torch.testing.assert_close(image_to_tensor(tall, 32, 32), expected)


# --- Known answers: analytic stand-ins and an independent implementation of the reference algorithm ---

class AnalyticUNet(torch.nn.Module):
    """UNet3DConditionModel's call signature; the prediction depends on x, all frames, the text and t."""

    dtype = torch.float32

    def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = True):
        b, _, f, _, _ = sample.shape
        text = encoder_hidden_states.mean(dim=(1, 2)).view(b, 1, 1, 1, 1).to(sample)
        frame = torch.arange(f, dtype=sample.dtype).view(1, 1, f, 1, 1)
        t = float(timestep) / 1000
        eps = (0.3 * sample + 0.2 * sample.mean(dim=2, keepdim=True)
               + (t * (1 + 0.2 * frame) + 0.5 * (1 - t) ** 2) * text)
        return SimpleNamespace(sample=eps) if return_dict else (eps,)


class AnalyticVAE(torch.nn.Module):
    """AutoencoderKL's interface: encode = 4x4 average pool + 3->4 channel mix; sample() != mean; linear decode."""

    dtype = torch.float32
    device = torch.device("cpu")
    config = SimpleNamespace(scaling_factor=0.6)
    MIX = torch.tensor([[1.0, 0.2, -0.1], [0.0, 0.9, 0.3], [-0.2, 0.1, 1.1], [0.4, 0.4, 0.4]])
    UNMIX = torch.tensor([[0.8, 0.1, 0.0, 0.3], [0.1, 0.7, 0.1, 0.2], [0.0, -0.1, 0.9, 0.3]])

    def encode(self, x):
        pooled = torch.nn.functional.avg_pool2d(x, 4)
        mean = torch.einsum("ij,bjhw->bihw", self.MIX.to(x), pooled) + 0.05
        dist = SimpleNamespace(mean=mean, sample=lambda generator=None: mean + 0.25, mode=lambda: mean)
        return SimpleNamespace(latent_dist=dist)

    def decode(self, z):
        pixels = torch.einsum("ij,bjhw->bihw", self.UNMIX.to(z), z).repeat_interleave(4, 2).repeat_interleave(4, 3)
        return SimpleNamespace(sample=1.3 * pixels - 0.02)  # may leave [-1, 1]: re-encoding must not clamp


def reference_sampler(image: np.ndarray, cond: torch.Tensor, uncond: torch.Tensor, n_frames: int, k: int,
                      steps: int, r: int, guidance: list[float], queue_mode: str, seed: int,
                      schedule: str = "modelscope") -> tuple[list[torch.Tensor], list[np.ndarray]]:
    """TI2V-Zero written out from DESIGN.md and the reference code, float64, with the analytic stand-ins."""
    unet, vae = AnalyticUNet(), AnalyticVAE()
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0)
    stride = 1000 // steps
    # ModelScope: 1 + arange(0, 1000, stride) (one step more when stride * T < 1000); diffusers: T steps.
    count = -(-1000 // stride) if schedule == "modelscope" else steps
    ts = [1 + stride * i for i in range(count)][::-1]
    gen = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(shape, generator=gen).double()  # noqa: E731
    scale = vae.config.scaling_factor
    x = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 127.5 - 1
    z = vae.encode(x).latent_dist.mean * scale
    c, h, w = z.shape[1:]
    queue = [z] * k
    latents, frames = [], []
    for m in range(2, n_frames + 1):
        g = guidance[m - 2]
        q = torch.stack(queue, 2)
        a0 = abar[ts[0]]
        win = torch.cat([q, a0.sqrt() * q[:, :, -1:] + (1 - a0).sqrt() * randn(1, c, 1, h, w)], 2)

        def ddim(win, t, a_t, a_p):
            e_u = unet(win, t, encoder_hidden_states=uncond.double()).sample
            e_c = unet(win, t, encoder_hidden_states=cond.double()).sample
            e = e_u + g * (e_c - e_u)
            x0 = (win - (1 - a_t).sqrt() * e) / a_t.sqrt()
            return a_p.sqrt() * x0 + (1 - a_p).sqrt() * e

        for t in ts:
            a_t = abar[t]
            a_p = abar[max(t - stride, 0)]
            win = win.clone()
            win[:, :, :k] = a_t.sqrt() * q + (1 - a_t).sqrt() * randn(1, c, k, h, w)
            if r:
                q_next = a_p.sqrt() * q + (1 - a_p).sqrt() * randn(1, c, k, h, w)
            for _ in range(r):
                win = ddim(win, t, a_t, a_p)
                win[:, :, :k] = q_next
                win = (a_t / a_p).sqrt() * win + (1 - a_t / a_p).sqrt() * randn(1, c, k + 1, h, w)
            win = ddim(win, t, a_t, a_p)
        latent = win[:, :, -1]
        decoded = vae.decode(latent / scale).sample
        latents.append(latent)
        frames.append(((decoded[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.uint8))
        queue = queue[1:] + [vae.encode(decoded).latent_dist.mean * scale if queue_mode == "reencode" else latent]
    return latents, frames


@pytest.mark.parametrize("steps, r, queue, schedule", [
    (4, 2, "reencode", "modelscope"),
    (5, 2, "latent", "modelscope"),
    (15, 1, "reencode", "modelscope"),
    (4, 1, "reencode", "diffusers"),
])
def test_known_answer(steps, r, queue, schedule):
    gen = torch.Generator().manual_seed(5)
    cond = 0.1 + 0.05 * torch.randn(1, 5, CROSS_DIM, generator=gen)
    uncond = -0.1 + 0.05 * torch.randn(1, 5, CROSS_DIM, generator=gen)
    image = np.random.default_rng(2).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    cfg = SamplerConfig(n_frames=5, queue_len=3, steps=steps, a=3.0, b=2.0, guidance_form="peak",
                        resample_iters=r, height=16, width=16, schedule=schedule, queue=queue)
    comps = TI2VComponents(unet=AnalyticUNet(), vae=AnalyticVAE(), scheduler=ddim_scheduler())
    got = []
    frames, record = sample(comps, image, prompt_embeds=cond, negative_embeds=uncond, config=cfg, seed=7,
                            on_frame=lambda m, latent, q: got.append(latent[:, :, 0].clone()))
    guidance = list(guidance_curve(np.arange(2, 6), 5, 3.0, 2.0, 7.0, 11.0, "peak"))
    assert len(set(np.round(guidance, 6))) == 4  # each frame has its own guidance
    want, want_frames = reference_sampler(image, cond, uncond, 5, 3, steps, r, guidance, queue, seed=7,
                                          schedule=schedule)
    expected_steps = {(15, "modelscope"): 16}.get((steps, schedule), steps)
    assert record["steps_run"] == expected_steps and record["unet_calls"] == 4 * expected_steps * (r + 1)
    if (steps, schedule) == (15, "modelscope"):
        assert record["timesteps"][0] == 991 and record["timesteps"][-1] == 1
    for m, (a, b) in enumerate(zip(got, want), start=2):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4, msg=f"frame {m}")
    for a, b in zip(frames[1:], want_frames):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    np.testing.assert_array_equal(frames[0], image)


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
    with pytest.raises(FileNotFoundError, match=r"generator\.t2v_path") as err:
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
    half = TI2VComponents.load(tmp_path / "t2v", dtype=torch.float16)  # fp16 UNet, fp32 VAE (the reference)
    assert half.unet.dtype == torch.float16 and half.vae.dtype == torch.float32

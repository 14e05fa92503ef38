"""The motion generator's model: training tracks, the text condition, the DDIM sampler with per-frame guidance
and frame-1 replacement (known answers with an analytic oracle denoiser), the guidance floor, training,
saving, and the generator."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from argen.generators.factory import GenerationInput, MotionVideoGenerator, make_generator
from argen.generators.guidance import guidance_curve
from argen.generators.motion import (
    CONDITION_AUS, CONDITION_DIM, MIRROR, MOTION_SAMPLERS, TEXT_DIM, MotionDenoiser, MotionGuidance, MotionModel,
    MotionModelConfig, MotionModelError, TrainingSettings, condition_from_aus, condition_from_prompt, expression_text,
    motion_condition, motion_to_pixels, sample_motion, track_draw_probabilities, train_motion_model, training_texts,
    training_tracks,
)
from argen.aus import INTENSITY_AUS
from argen.demo.face import FaceShape, neutral_landmarks
from argen.params import GeneratorParams

AU26 = CONDITION_AUS.index(26)
TINY = MotionModelConfig(n_frames=6, d_model=16, n_layers=1, n_heads=2)


def hashed_encoder(texts: list[str]) -> np.ndarray:
    """A stand-in sentence encoder for tiny models: a fixed unit vector per distinct text."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).normal(size=TEXT_DIM)
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32)


def au_condition(aus: dict[int, float], prompt: str = "Expression: surprise; jaw dropped clearly.") -> np.ndarray:
    return motion_condition(prompt, aus, hashed_encoder)[0]


def base_face() -> np.ndarray:
    """A canonical 68-point face in pixels, inter-ocular distance about 40 px."""
    return neutral_landmarks(FaceShape())[:, :2] * 40 + 64


def clip_rows(clip_id: str, jaw: list[float], au26: list[float], success: list[bool] | None = None) -> pd.DataFrame:
    """extract_aus-like rows of one clip whose chin and lower lip drop by ``jaw`` pixels per frame."""
    rows = []
    for frame, (drop, level) in enumerate(zip(jaw, au26)):
        points = base_face()
        points[[5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67], 1] += drop
        ok = True if success is None else success[frame]
        row = {"clip_id": clip_id, "frame": frame, "success": ok}
        row.update({f"x_{i}": points[i, 0] if ok else np.nan for i in range(68)})
        row.update({f"y_{i}": points[i, 1] if ok else np.nan for i in range(68)})
        row.update({f"AU{au:02d}_r": (level if au == 26 else 0.0) if ok else np.nan for au in INTENSITY_AUS})
        rows.append(row)
    return pd.DataFrame(rows)


def test_mirror_is_an_involution_that_swaps_sides() -> None:
    assert sorted(MIRROR) == list(range(68)) and np.array_equal(MIRROR[MIRROR], np.arange(68))
    assert MIRROR[36] == 45 and MIRROR[48] == 54 and MIRROR[8] == 8 and MIRROR[62] == 62


def test_tracks_start_at_the_least_expressive_frame_and_carry_its_au_change() -> None:
    onset = clip_rows("onset", [0, 0, 2, 4, 6, 8], [0, 0, 1, 2, 3, 4])
    offset = clip_rows("offset", [8, 6, 4, 2, 0, 0], [4, 3, 2, 1, 0, 0])  # expression first, then neutral
    tracks = training_tracks(pd.concat([onset, offset]), {"onset": "surprise", "offset": "fear"}, n_frames=6,
                             min_frames=4, cond_min=0.2, mirror=False)
    assert tracks.clip_ids == ["offset", "onset"] and tracks.reversed.tolist() == [True, False]
    assert tracks.labels == ["fear", "surprise"]
    assert np.all(tracks.motions[:, 0] == 0)  # frame 1 is the reference itself
    iod = np.linalg.norm(base_face()[[42, 45]].mean(0) - base_face()[[36, 39]].mean(0))
    np.testing.assert_allclose(tracks.motions[1, :, 8, 1], np.array([0, 0, 2, 4, 6, 8]) / iod, atol=1e-9)
    np.testing.assert_allclose(tracks.motions[0], tracks.motions[1], atol=1e-9)  # reversed offset == onset
    expected = np.zeros(len(CONDITION_AUS))
    expected[AU26] = 4 / 5
    np.testing.assert_allclose(tracks.conditions, [expected, expected])


def test_faceless_rows_are_counted_and_bridged_and_short_clips_skipped() -> None:
    gappy = clip_rows("gappy", [0, 2, 4, 6, 8, 10], [0, 1, 2, 3, 4, 5], [True, True, False, True, True, True])
    short = clip_rows("short", [0, 1, 2, 3, 4, 5], [0] * 6, [True, True, False, False, False, True])
    unlabelled = clip_rows("unlabelled", [0, 1, 2, 3, 4, 5], [0] * 6)
    tracks = training_tracks(pd.concat([gappy, short, unlabelled]), {"gappy": "fear", "short": "fear"}, n_frames=6,
                             min_frames=4, mirror=False)
    assert tracks.clip_ids == ["gappy"] and tracks.rows_without_face == 4
    assert tracks.skipped.to_dict("records") == [
        {"clip_id": "short", "reason": "3 frames with a face, fewer than min_frames=4"},
        {"clip_id": "unlabelled", "reason": "no emotion label for the clip"}]
    chin = tracks.motions[0, :, 8, 1]
    np.testing.assert_allclose(chin[2], (chin[1] + chin[3]) / 2)  # the faceless frame is interpolated


def test_conditions_look_like_prompts() -> None:
    delta = np.zeros(len(CONDITION_AUS))
    delta[:7] = [4.0, 3.0, 0.5, 2.5, 2.0, 1.5, 1.2]
    r = condition_from_aus(delta, cond_min=0.2, cond_max_aus=3)
    assert np.count_nonzero(r) == 3 and r[0] == pytest.approx(0.8) and r[2] == 0.0
    vector, unusable = condition_from_prompt({26: 0.6, 45: 0.9, 43: 0.5, 1: 0.0})
    assert vector[AU26] == 0.6 and np.count_nonzero(vector) == 1 and unusable == [1, 43, 45]


def test_training_texts_take_the_prompts_form() -> None:
    r = np.zeros(len(CONDITION_AUS))
    r[CONDITION_AUS.index(1)], r[CONDITION_AUS.index(20)] = 0.7, 0.4
    full, emotion_only, fixed = training_texts("fear", r)
    assert full == "Expression: fear; inner brows raised clearly, lips stretched sideways moderately."
    assert emotion_only == "Expression: fear." and fixed == "A person with the expression of slight fear"
    assert training_texts("fear", np.zeros(len(CONDITION_AUS)))[0] == emotion_only


def test_the_condition_reads_the_expression_part_of_the_prompt() -> None:
    prompt = "Identity: fair-skinned, brown hair; Expression: disgust; nose wrinkled clearly, lower lip pulled down."
    assert expression_text(prompt) == "Expression: disgust; nose wrinkled clearly, lower lip pulled down."
    assert expression_text("A person with the expression of slight fear") == \
        "A person with the expression of slight fear"
    seen = []
    condition, text_only = motion_condition(prompt, {9: 0.6, 16: 0.5},
                                            lambda texts: seen.extend(texts) or hashed_encoder(texts))
    assert seen == [expression_text(prompt)] and condition.shape == (CONDITION_DIM,)
    np.testing.assert_allclose(condition[:TEXT_DIM], hashed_encoder(seen)[0])
    assert condition[TEXT_DIM + CONDITION_AUS.index(9)] == pytest.approx(0.6) and condition[-1] == 1.0
    assert text_only == [16]  # AU16 has no AU-vector entry: its words carry it
    no_aus, _ = motion_condition("A person with the expression of slight fear", {}, hashed_encoder)
    assert not no_aus[TEXT_DIM:].any() and no_aus[:TEXT_DIM].any()
    with pytest.raises(ValueError, match="empty prompt"):
        motion_condition("  ", {}, hashed_encoder)


class OracleDenoiser(torch.nn.Module):
    """The exact v-prediction for point masses: x0 = ``target`` times the condition's sum with the condition,
    ``unconditional`` without."""

    def __init__(self, config: MotionModelConfig, target: torch.Tensor, unconditional: torch.Tensor) -> None:
        super().__init__()
        self.alphas = config.ddim().alphas_cumprod
        self.target, self.unconditional = target, unconditional
        self.calls: list[tuple[int, list[bool]]] = []

    def forward(self, sample, timesteps, condition, use_condition):
        self.calls.append((sample.shape[0], use_condition.tolist()))
        alpha = self.alphas[timesteps].reshape(-1, 1, 1, 1)
        conditional = self.target * condition.sum(dim=1).reshape(-1, 1, 1, 1)
        x0 = torch.where(use_condition.reshape(-1, 1, 1, 1), conditional, self.unconditional)
        eps = (sample - alpha.sqrt() * x0) / (1 - alpha).sqrt()
        return alpha.sqrt() * eps - (1 - alpha).sqrt() * x0


def oracle_model(target: np.ndarray, unconditional: np.ndarray, scale: float = 0.5) -> MotionModel:
    config = MotionModelConfig(n_frames=len(target), d_model=16, n_layers=1, n_heads=2, data_scale=scale)
    oracle = OracleDenoiser(config, torch.tensor(target[None], dtype=torch.float32),
                            torch.tensor(unconditional[None], dtype=torch.float32))
    return MotionModel(oracle, config)


@pytest.mark.parametrize("sampler", MOTION_SAMPLERS)
@pytest.mark.parametrize("a, b", [(2.0, 2.0), (3.0, 2.0), (2.0, 3.0)])
def test_sampler_known_answer_per_frame_guidance_and_replacement(a: float, b: float, sampler: str) -> None:
    """With the exact denoiser of a point mass every sampler must land on it, guided per frame."""
    rng = np.random.default_rng(0)
    target, unconditional = rng.normal(size=(2, 8, 68, 2))
    model = oracle_model(target, unconditional, scale=0.5)
    guidance = MotionGuidance(g_min=1.5, g_max=6.0, form="paper", sampler=sampler)
    motion, record = sample_motion(model, 0.7 * np.eye(CONDITION_DIM)[0], 7, a, b, guidance, seed=3)
    g = guidance_curve(np.arange(1, 9), 8, a, b, 1.5, 6.0, "paper")[:, None, None]
    expected = 0.5 * (unconditional + g * (0.7 * target - unconditional))
    expected[0] = 0.0  # frame 1 is the identity: zero motion, whatever the model says
    np.testing.assert_allclose(motion, expected, atol=2e-4)
    assert record["steps_run"] == record["denoiser_calls"] == 7 and record["sampler"] == sampler
    assert model.denoiser.calls == [(2, [True, False])] * 7  # one batched call per step: cond + uncond


def test_an_unknown_sampler_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown motion sampler 'euler'"):
        MotionGuidance(sampler="euler")


def test_replacement_pins_frame_one_at_every_step() -> None:
    """The known first frame noised to t enters every step: with a model whose answer for frame 1 is far
    off, frame 1's influence on the other frames still comes only from the known (zero) frame."""
    rng = np.random.default_rng(1)
    target = rng.normal(size=(5, 68, 2))
    seen: list[torch.Tensor] = []
    model = oracle_model(target, target)
    forward = model.denoiser.forward

    def spy(sample, timesteps, condition, use_condition):
        alpha = model.denoiser.alphas[timesteps[0]]
        seen.append(sample[0, 0] / (1 - alpha).sqrt())  # frame 1 = sqrt(1-alpha) noise: unit-variance noise
        return forward(sample, timesteps, condition, use_condition)

    model.denoiser.forward = spy
    motion, _ = sample_motion(model, np.ones(CONDITION_DIM), 10, 2.0, 2.0, MotionGuidance(1.0, 1.0), seed=0)
    assert np.all(motion[0] == 0.0)
    stds = [float(s.std()) for s in seen]
    assert all(0.8 < s < 1.2 for s in stds), stds  # pure re-drawn noise, not the model's frame-1 estimate
    assert len({round(float(s[0, 0]), 6) for s in seen}) == len(seen)  # fresh noise every step


def tiny_model(seed: int = 0) -> MotionModel:
    torch.manual_seed(seed)
    return MotionModel(MotionDenoiser(TINY), TINY)


def random_model(seed: int = 0) -> MotionModel:
    """A tiny untrained model whose output layer is random too (a fresh one predicts zero velocity)."""
    model = tiny_model(seed)
    torch.nn.init.normal_(model.denoiser.output.weight, std=0.2)
    return model


def test_seeds_reproduce_bit_for_bit_and_differ_across_seeds() -> None:
    model = tiny_model()
    condition = au_condition({26: 1.0})
    first, _ = sample_motion(model, condition, 5, 2.0, 2.0, MotionGuidance(), seed=11)
    again, _ = sample_motion(model, condition, 5, 2.0, 2.0, MotionGuidance(), seed=11)
    other, _ = sample_motion(model, condition, 5, 2.0, 2.0, MotionGuidance(), seed=12)
    assert first.tobytes() == again.tobytes() and not np.allclose(first[1:], other[1:])


def synthetic_tracks(n: int = 24):
    rows = [clip_rows(f"c{k:02d}", list(np.linspace(0, k % 7, 6)), list(np.linspace(0, (k % 7) / 1.5, 6)))
            for k in range(n)]
    return training_tracks(pd.concat(rows), {f"c{k:02d}": ("surprise", "fear")[k % 2] for k in range(n)},
                           n_frames=6, min_frames=4)


def test_training_is_seeded_and_saved_models_load(tmp_path) -> None:
    tracks = synthetic_tracks()
    settings = TrainingSettings(steps=15, batch_size=8, seed=4)
    model, losses = train_motion_model(tracks, TINY, settings, hashed_encoder)
    twin, _ = train_motion_model(tracks, TINY, settings, hashed_encoder)
    assert len(losses) == 15 and all(np.isfinite(losses))
    model.save(tmp_path / "a")
    twin.save(tmp_path / "b")
    for name in ("denoiser.safetensors", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    loaded = MotionModel.load(tmp_path / "a")
    assert loaded.config == model.config and loaded.config.data_scale == pytest.approx(tracks.motions[:, 1:].std())
    condition = au_condition({26: 1.0})
    assert sample_motion(loaded, condition, 3, 2, 2, MotionGuidance(), 0)[0].tobytes() == \
        sample_motion(model, condition, 3, 2, 2, MotionGuidance(), 0)[0].tobytes()


def test_class_balance_draws_each_emotion_equally_often_and_reaches_training() -> None:
    labels = ["happy"] * 6 + ["fear"] * 2 + ["disgust"]
    equal = track_draw_probabilities(labels, 1.0)
    assert equal[:6] == pytest.approx([1 / 18] * 6) and equal[6:8] == pytest.approx([1 / 6] * 2)
    assert equal[8] == pytest.approx(1 / 3)
    assert track_draw_probabilities(labels, 0.0) == pytest.approx([1 / 9] * 9)
    with pytest.raises(ValueError, match="class_balance"):
        track_draw_probabilities(labels, float("nan"))
    rows = [clip_rows(f"c{k:02d}", list(np.linspace(0, k % 7, 6)), list(np.linspace(0, (k % 7) / 1.5, 6)))
            for k in range(16)]
    tracks = training_tracks(pd.concat(rows), {f"c{k:02d}": "fear" if k < 3 else "happy" for k in range(16)},
                             n_frames=6, min_frames=4)
    weights = {balance: train_motion_model(tracks, TINY, TrainingSettings(steps=3, batch_size=4, seed=1,
                                                                          class_balance=balance),
                                           hashed_encoder)[0].denoiser.output.weight.detach()
               for balance in (0.0, 1.0)}
    assert not torch.equal(weights[0.0], weights[1.0])  # the draw reaches the batches


def test_missing_or_broken_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(MotionModelError, match="no motion model .*dvc repro motion_model"):
        MotionModel.load(tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    (tmp_path / "bad" / "denoiser.safetensors").write_bytes(b"junk")
    with pytest.raises(MotionModelError, match="not a readable motion model"):
        MotionModel.load(tmp_path / "bad")
    with pytest.raises(MotionModelError, match="generator.motion_path|no motion model"):
        make_generator(GeneratorParams(generator="motion", motion_path=str(tmp_path / "none")))


def face_item(aus: dict[int, float], prompt: str = "Expression: surprise; jaw dropped clearly.") -> GenerationInput:
    from argen.demo.dataset import render_face
    from argen.demo.render import Appearance
    image, landmarks = render_face(FaceShape(), Appearance.sample(np.random.default_rng(1)), {}, 96)[:2]
    return GenerationInput(np.clip(image, 0, 255).astype(np.uint8), landmarks[:, :2], prompt, aus)


def test_generator_records_what_ran() -> None:
    generator = MotionVideoGenerator(random_model(), MotionGuidance(), size=96, encoder=hashed_encoder)
    item = face_item({26: 0.9, 1: 0.6, 27: 0.5})
    video, record = generator.generate(item, (5, 3.0, 2.0), seed=2, n_frames=6)
    assert video.shape == (6, 96, 96, 3) and video.dtype == np.uint8
    assert record["steps_run"] == record["denoiser_calls"] == 5 and not record["still"]
    assert record["text_only_aus"] == [27]
    assert np.array_equal(video[0], item.image)  # frame 1 is the identity frame
    with pytest.raises(ValueError, match="makes 6 frames"):
        generator.generate(item, (5, 2.0, 2.0), seed=2, n_frames=7)


def test_motion_to_pixels_undoes_the_face_frame() -> None:
    from argen.extract.landmarks import face_frame
    landmarks = base_face() @ np.array([[0.96, -0.28], [0.28, 0.96]]).T * 1.3 + 5
    motion = np.random.default_rng(2).normal(scale=0.02, size=(3, 68, 2))
    motion[:, [36, 39, 42, 45]] = 0.0  # the eye corners anchor the face frame
    moved = motion_to_pixels(motion, landmarks)
    back = face_frame(moved, anchor="canthi") - face_frame(landmarks[None], anchor="canthi")
    np.testing.assert_allclose(back, motion, atol=1e-9)

"""The common generator interface: warp and TI2V behind make_generator(ard params)."""

from __future__ import annotations

import numpy as np
import pytest

from argen.generators.factory import GenerationInput, make_generator
from argen.asi.kb import prompt_aus_from_line
from argen.params import GeneratorParams
from tests.test_ti2v import get_dummy_components, save_tiny_model
from tests.test_warp import synthetic_rows


def test_prompt_aus_from_a_verified_line() -> None:
    line = ("Identity: fair-skinned, dark hair; Expression: fear; inner brows raised strongly (AU01), "
            "jaw dropped slightly (AU26), lips parted (AU25).")
    assert prompt_aus_from_line(line) == {1: 0.875, 26: 0.125, 25: 0.5}
    assert prompt_aus_from_line("A person with the expression of slight fear") == {}


def face_input(size: int = 64) -> GenerationInput:
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    rows = synthetic_rows(n_clips=1, n_frames=1)
    landmarks = np.stack([rows.filter(regex=r"^x_").to_numpy()[0], rows.filter(regex=r"^y_").to_numpy()[0]], -1)
    landmarks = (landmarks - 64) / 2 + size / 2
    return GenerationInput(image, landmarks, "Identity: x; Expression: fear; jaw dropped", {26: 0.9})


def test_warp_through_the_interface() -> None:
    generator = make_generator(GeneratorParams(generator="warp", size=64), synthetic_rows())
    video, record = generator.generate(face_input(), (15, 3, 2), seed=1, n_frames=6)
    assert video.shape == (6, 64, 64, 3) and record["generator"] == "warp" and record["steps_requested"] == 15
    with pytest.raises(ValueError, match="needs extract_aus rows"):
        make_generator(GeneratorParams(generator="warp"))


def test_ti2v_through_the_interface(tmp_path) -> None:
    save_tiny_model(tmp_path / "t2v", get_dummy_components())
    cfg = GeneratorParams(generator="ti2v", t2v_path=str(tmp_path / "t2v"), device="cpu", size=32, queue_len=2,
                    resample_iters=1)
    generator = make_generator(cfg)
    item = face_input(32)
    video, record = generator.generate(item, (2, 2, 3), seed=0, n_frames=3)
    assert video.shape == (3, 32, 32, 3) and video.dtype == np.uint8
    assert np.array_equal(video[0], item.image), "frame 1 is the identity frame, colour order kept"
    assert record["unet_calls"] == 2 * record["steps_run"] * 2 and record["a"] == 2.0 and record["b"] == 3.0
    again, _ = generator.generate(item, (2, 2, 3), seed=0, n_frames=3)
    assert np.array_equal(video, again)


def test_ti2v_without_weights_names_the_param(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="generator.t2v_path"):
        make_generator(GeneratorParams(generator="ti2v", t2v_path=str(tmp_path / "none"), device="cpu"))


def test_policy_states_use_the_generator_encoders(tmp_path) -> None:
    """ti2v: the VAE latent pooled 4 x 4 and the mean CLIP token embedding; CPU: dlib descriptor + MiniLM."""
    from argen.policy.state import encode_states

    save_tiny_model(tmp_path / "t2v", get_dummy_components())
    cfg = GeneratorParams(generator="ti2v", t2v_path=str(tmp_path / "t2v"), device="cpu", size=32)
    items = [face_input(32), face_input(32)]
    images = [items[0].image, np.ascontiguousarray(items[1].image[:, ::-1])]
    landmarks = np.stack([i.landmarks for i in items])
    image_emb, text_emb, encoder = encode_states(cfg, images, landmarks, ["a happy", "ha"])
    assert image_emb.shape == (2, 4 * 16) and "VAE latent" in encoder
    assert not np.allclose(image_emb[0], image_emb[1]) and not np.allclose(text_emb[0], text_emb[1])
    again, _, _ = encode_states(cfg, images, landmarks, ["a happy", "ha"])
    np.testing.assert_array_equal(again, image_emb)

"""Bad input by class (issue 21, item 4): params, params files, frame folders, model files, the OpenFace benchmark.

Each test covers a class, not one example: every float of the schema refuses infinity and NaN, every
number refuses a YAML boolean, every model file the project reads refuses a truncated or overwritten copy.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any, Iterator, get_args

import cv2
import numpy as np
import pytest
import torch
from pydantic import BaseModel

from argen.generators.motion import MotionDenoiser, MotionModel, MotionModelConfig, MotionModelError
from argen.policy.reinforce import PolicyNetwork, load_policy, save_policy
from argen.datasets.base import ClipSource, collect_frames
from argen.errors import InputError
from argen.params import Params, ParamsError, load_params, validate_params
from argen.weights import load_checked


def leaf_fields(model: type[BaseModel] = Params, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key as in params.yaml, annotation) of every non-section field of the schema."""
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from leaf_fields(field.annotation, key + ".")
        else:
            yield key, field.annotation


def nested(key: str, value: Any) -> dict:
    """{"a": {"b": value}} for "a.b"."""
    section, _, name = key.partition(".")
    return {section: {name: value}} if name else {section: value}


def takes(annotation: Any, kind: type) -> bool:
    return annotation is kind or kind in get_args(annotation)


FLOAT_KEYS = [key for key, annotation in leaf_fields() if takes(annotation, float)]
INT_KEYS = [key for key, annotation in leaf_fields() if takes(annotation, int)]


def test_the_schema_walk_finds_the_numbers() -> None:
    assert "ard.policy_lr" in FLOAT_KEYS and "rewards.a_max" in FLOAT_KEYS and "ard.lambda" in FLOAT_KEYS
    assert "data.fold" in INT_KEYS and "seed" in INT_KEYS and len(FLOAT_KEYS) > 30 and len(INT_KEYS) > 40


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_every_float_param_refuses_non_finite_values(value: float) -> None:
    for key in FLOAT_KEYS:
        with pytest.raises(ParamsError, match=key.split(".")[-1]):
            validate_params(nested(key, value))


def test_every_number_refuses_a_boolean() -> None:
    for key in INT_KEYS + FLOAT_KEYS:
        with pytest.raises(ParamsError, match=rf"'{key}': .*boolean"):
            validate_params(nested(key, True))
    for key, value in (("recognize.seeds", [0, True]), ("generate.fixed_action", [True, 2.0, 2.0]),
                       ("demo.class_fractions", {"happy": True})):
        with pytest.raises(ParamsError, match=rf"'{key}': .*boolean"):
            validate_params(nested(key, value))
    assert validate_params({"data": {"verify_frames": False}}).data.verify_frames is False  # a real bool still is


@pytest.mark.parametrize("key, value, words", [
    ("recognize.seeds", [-1], "recognize.seeds.0"),
    ("recognize.clip_lrs", [1e-5, 0.0, 1e-3], "recognize.clip_lrs.1"),
    ("preview.frames", [0, 6], "preview.frames.0"),
    ("preview.action", [7, 2, 2], "not in the action space"),
    ("preview.action", [20, 3, 3], "not in the action space"),
    ("generate.fixed_action", [7, 2, 2], "not in the action space"),
    ("ard.policy_lr", 0.0, "ard.policy_lr"),
])
def test_numbers_outside_what_the_stage_can_use_are_refused(key: str, value: Any, words: str) -> None:
    with pytest.raises(ParamsError, match=words.replace(".", r"\.")):
        validate_params(nested(key, value))


def test_the_params_action_space_is_the_samplers() -> None:
    from argen.actions import ACTIONS
    from argen.params import ACTION_SPACE

    assert ACTION_SPACE == ACTIONS


def test_preview_frames_are_checked_against_the_clip_length() -> None:
    with pytest.raises(ParamsError, match=r"preview.frames \[40\] lie beyond the 16 frames"):
        validate_params({"preview": {"frames": [1, 40]}})
    assert validate_params({"preview": {"frames": [1, 8]}, "generator": {"n_frames": 8}}).preview.frames == [1, 8]
    with pytest.raises(ParamsError, match="beyond the 8 frames"):
        validate_params({"generator": {"n_frames": 8}})  # the default frames 1, 6, 11, 16 no longer fit


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_params_files_that_would_silently_mean_something_else_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"(?s)duplicate key 'fold' \(first on line 2.*line 3"):
        load_params(write(tmp_path, "data:\n  fold: 2\n  fold: 3\n"))
    with pytest.raises(ParamsError, match="duplicate key 'data'"):
        load_params(write(tmp_path, "data:\n  fold: 2\nseed: 1\ndata:\n  fold: 3\n"))
    for empty in ("", "\n# only a comment\n", "---\n"):
        with pytest.raises(ParamsError, match="empty"):
            load_params(write(tmp_path, empty))
    with pytest.raises(ParamsError, match=r"'data.fold': .*boolean"):
        load_params(write(tmp_path, "data:\n  fold: true\n"))
    with pytest.raises(ParamsError, match="mapping"):
        load_params(write(tmp_path, "- 1\n- 2\n"))
    assert load_params(write(tmp_path, "data:\n  fold: 2\n")).data.fold == 2


def test_a_symlink_loop_never_drops_the_readable_frames_beside_it(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for k in range(1, 9):
        cv2.imwrite(str(folder / f"{k}.jpg"), np.full((24, 24, 3), 20 * k, np.uint8))
    os.symlink(folder / "b.jpg", folder / "a.jpg")
    os.symlink(folder / "a.jpg", folder / "b.jpg")
    index = collect_frames([ClipSource("c1", folder, "happy", "train", "S1", "1")], verify=True, min_frames=8)
    assert [c.clip_id for c in index.clips] == ["c1"] and len(index.clips[0].frames) == 8
    reasons = {s.item: s.reason for s in index.skips}
    assert set(reasons) == {"c1/a.jpg", "c1/b.jpg"} and all("unreadable entry" in r for r in reasons.values())


# --- model files ---------------------------------------------------------------------------------------------

def damage(path: Path, how: str) -> None:
    """Truncate the file, overwrite it with random bytes, or fill its tensor data (after the header) with them."""
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "random file":
        path.write_bytes(rng.integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif how == "random values":
        header = 8 + int.from_bytes(data[:8], "little")
        path.write_bytes(data[:header] + rng.integers(0, 256, len(data) - header, dtype=np.uint8).tobytes())
    elif how == "missing":
        path.unlink()


DAMAGES = ["truncated", "random file", "random values", "missing"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_motion_model_names_the_file_and_its_stage(tmp_path: Path, how: str) -> None:
    """preview, generate and rewards read the motion model through MotionModel.load."""
    config = MotionModelConfig(n_frames=6, d_model=16, n_layers=1, n_heads=2)
    torch.manual_seed(0)
    MotionModel(MotionDenoiser(config), config).save(tmp_path / "motion")
    damage(tmp_path / "motion" / "denoiser.safetensors", how)
    with pytest.raises(MotionModelError, match=r"denoiser\.safetensors.*motion_model|motion_model.*denoiser"):
        MotionModel.load(tmp_path / "motion")


def test_a_motion_model_of_another_shape_is_refused(tmp_path: Path) -> None:
    small = MotionModelConfig(n_frames=6, d_model=16, n_layers=1, n_heads=2)
    MotionModel(MotionDenoiser(small), small).save(tmp_path / "motion")
    config_file = tmp_path / "motion" / "config.json"
    config_file.write_text(config_file.read_text().replace('"d_model": 16', '"d_model": 32'))
    with pytest.raises(MotionModelError, match="wrong shape"):
        MotionModel.load(tmp_path / "motion")


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_policy_names_the_file_and_its_stage(tmp_path: Path, how: str) -> None:
    torch.manual_seed(0)
    save_policy(PolicyNetwork(4, 6, d_model=8), tmp_path / "policy", {})
    damage(tmp_path / "policy" / "policy.safetensors", how)
    with pytest.raises(InputError, match=r"policy\.safetensors.*policy"):
        load_policy(tmp_path / "policy")


def test_load_checked_accepts_a_sound_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2, 3)}, str(tmp_path / "m.safetensors"))
    assert load_checked(tmp_path / "m.safetensors", "s", {"w": torch.zeros(2, 3)})["w"].sum() == 6
    with pytest.raises(InputError, match="missing: \\['v'\\]"):
        load_checked(tmp_path / "m.safetensors", "s", {"w": torch.zeros(2, 3), "v": torch.zeros(1)})


# --- the OpenFace benchmark ----------------------------------------------------------------------------------

def fake_openface(tmp_path: Path, body: str) -> Path:
    binary = tmp_path / "FeatureExtraction"
    binary.write_text("#!/bin/sh\n" + body)
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    return binary


def one_clip(tmp_path: Path) -> Path:
    clip = tmp_path / "frames" / "clip1"
    clip.mkdir(parents=True)
    for k in (1, 2):
        cv2.imwrite(str(clip / f"{k}.png"), np.full((64, 64, 3), 120, np.uint8))
    return tmp_path / "frames"


def test_the_openface_benchmark_passes_the_backend_settings_and_fails_when_openface_always_fails(
        tmp_path: Path, monkeypatch, capsys) -> None:
    from benchmarks import au_openface

    calls = tmp_path / "calls.txt"
    binary = fake_openface(tmp_path, f'echo "$@" >> {calls}\necho "could not find the CEN patch experts"\nexit 3\n')
    params = tmp_path / "params.yaml"
    params.write_text("extract_aus:\n  openface_model: model/main_clnf_general.txt\n  openface_args: ['-wild']\n")
    with pytest.raises(SystemExit) as exit_info:
        au_openface.main(["--frames", str(one_clip(tmp_path)), "--openface-bin", str(binary), "--params", str(params)])
    assert exit_info.value.code not in (0, None)
    assert "OpenFace failed on every one of the 1 clips" in str(exit_info.value.code)
    assert "CEN patch experts" in str(exit_info.value.code)
    called = calls.read_text()
    assert "-mloc model/main_clnf_general.txt" in called and called.strip().endswith("-wild")
    calls.unlink()
    with pytest.raises(SystemExit):
        au_openface.main(["--frames", str(tmp_path / "frames"), "--openface-bin", str(binary),
                          "--openface-model", "other.txt", "--openface-arg=-x", "--openface-arg=-y"])
    assert "-mloc other.txt" in calls.read_text() and calls.read_text().strip().endswith("-x -y")
    assert sys.modules["benchmarks.au_openface"] is au_openface

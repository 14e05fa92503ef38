"""params.yaml validation: every error names the key and what is allowed."""

from __future__ import annotations

import pytest
import yaml

from argen.params import ParamsError, load_params, validate_params
from tests.conftest import ROOT


def test_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.data.source == "demo"
    assert params.ard.lambda_ == 3.0 and params.ard.model_dump()["lambda"] == 3.0  # the key is ard.lambda
    assert params.decompose.scarce_classes == ["surprise", "disgust", "fear"]


@pytest.mark.parametrize(("raw", "expected"), [
    ({"data": {"fold": 7}}, "'data.fold': Input should be less than or equal to 5 (got 7)"),
    ({"data": {"fold": "two"}}, "'data.fold': Input should be a valid integer"),
    ({"data": {"source": "dfw"}}, "'data.source': Input should be 'demo', 'dfew', 'ferv39k', 'ckplus' or 'folder'"),
    ({"data": {"foldd": 1}}, "unknown key 'data.foldd' (allowed: source, root, fold,"),
    ({"trainer": {}}, "unknown key 'trainer' (allowed: seed, data, demo, decompose"),
    ({"seed": -1}, "'seed': Input should be greater than or equal to 0"),
    ({"decompose": {"scarce_classes": ["suprise"]}}, "'decompose.scarce_classes.0': Input should be 'happy'"),
    ({"decompose": {"scarce_classes": ["neutral"]}}, "neutral cannot be scarce"),
    ({"decompose": {"scarce_classes": []}}, "'decompose.scarce_classes': List should have at least 1 item"),
    ({"demo": {"class_fractions": {"happy": 1.0}}}, "needs a fraction for every emotion; missing sad"),
    ({"demo": {"image_size": 32}}, "'demo.image_size': Input should be greater than or equal to 96"),
    ({"recognize": {"models": ["Res50_LSTM"]}},
     "'recognize.models.0': Input should be 'Res18_LSTM', 'Res18_Transformer', 'VGG13_LSTM', 'VGG13_Transformer', "
     "'DFER_CLIP' or 'Landmark_Transformer'"),
    ({"recognize": {"variants": ["original", "original"]}}, "'recognize.variants': Value error, entries must be unique"),
    ({"recognize": {"overrides": {"Res18_LSTM": {"epoch": 3}}}}, "unknown key 'recognize.overrides.Res18_LSTM.epoch'"),
    ({"ard": {"lambda": -1}}, "'ard.lambda': Input should be greater than or equal to 0"),
    ({"ard": {"top_k": 5}}, "top_k (5) must not exceed candidates (4)"),
    ({"generate": {"fixed_action": [20, 3, 3]}}, "fixed_action [20, 3.0, 3.0] is not in the action space"),
    ({"ard": {"weight_human": 1.0}}, "weight_human > 0 needs ard.ratings_csv"),
    ({"generate": {"policy": "greedy"}}, "'generate.policy': Input should be 'learned', 'random' or 'fixed'"),
    ({"rewards": {"a_max": 0}}, "'rewards.a_max"),
    ({"motion_model": {"d_model": 30, "n_heads": 4}}, "d_model (30) must be a multiple of n_heads (4)"),
    ({"generator": {"motion_g_min": 3, "motion_g_max": 2}}, "motion_g_min must not exceed motion_g_max"),
])
def test_bad_values_are_named(raw: dict, expected: str) -> None:
    with pytest.raises(ParamsError) as info:
        validate_params(raw)
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ParamsError) as info:
        validate_params({"data": {"fold": 0, "min_frames": 0}})
    message = str(info.value)
    assert "'data.fold'" in message and "'data.min_frames'" in message


def test_missing_and_malformed_files(tmp_path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ParamsError, match="top level must be a mapping"):
        load_params(bad)


def test_recognition_model_names_match_the_registry() -> None:
    from typing import get_args

    from argen.params import RecognitionModel
    from argen.recognize.models import MODEL_NAMES

    assert get_args(RecognitionModel) == MODEL_NAMES

"""A recognition run's save/load pair: what the recognize stage writes is what the judge loads back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from argen.emotions import EMOTIONS
from argen.errors import InputError
from argen.params import RecognizeParams
from argen.recognize.clips import GEOMETRY_DIM
from argen.recognize.models import build_model
from argen.recognize.run import load_run, run_config, save_run, save_seed


def test_a_saved_run_loads_back_with_the_same_weights_and_statistics(tmp_path) -> None:
    cfg = RecognizeParams(seeds=[0, 3], geometry_hidden=16)
    config = run_config("Landmark_Transformer", "argen", "geometry", cfg)
    assert config["hidden"] == 16 and config["seeds"] == [0, 3] and config["classes"] == list(EMOTIONS)
    trained = {}
    for seed in cfg.seeds:
        torch.manual_seed(seed)
        trained[seed] = build_model("Landmark_Transformer", len(EMOTIONS), width=cfg.width, hidden=16,
                                    geometry_dim=GEOMETRY_DIM, clip_path=cfg.clip_path, class_names=list(EMOTIONS),
                                    max_frames=config["max_frames"])
        save_seed(trained[seed], tmp_path, seed)
    stats = (np.arange(GEOMETRY_DIM, dtype=np.float32), np.ones(GEOMETRY_DIM, np.float32))
    save_run(tmp_path, config, stats)

    loaded_config, models, loaded_stats = load_run(tmp_path)
    assert loaded_config == config and len(models) == 2 and not any(m.training for m in models)
    for seed, model in zip(cfg.seeds, models):
        for (name, value), (_, original) in zip(model.state_dict().items(), trained[seed].state_dict().items()):
            assert torch.equal(value, original), name
    np.testing.assert_array_equal(loaded_stats[0], stats[0])
    np.testing.assert_array_equal(loaded_stats[1], stats[1])


def test_a_video_run_has_no_statistics_and_a_missing_run_is_named(tmp_path) -> None:
    config = run_config("Res18_LSTM", "original", "video", RecognizeParams())
    save_run(tmp_path, config, None)
    assert not (tmp_path / "input_stats.safetensors").exists()
    assert json.loads((tmp_path / "config.json").read_text()) == config
    with pytest.raises(InputError, match="nothing/config.json: missing"):
        load_run(tmp_path / "nothing")

"""The ablation experiments' commands and the comparison tables, on hand-made experiment files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from argen.ablations import comparison_tables, cost_table, lookup, queue_command, read_config, stages_rerun, \
    wanted_experiments
from argen.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def config() -> dict:
    return {
        "name": "abl", "set": {"recognize.models": ["Landmark_Transformer"]},
        "experiments": {"full": {}, "wo_asi": {"asi.mode": "fixed"}, "wo_ard": {"ard.policy": "fixed"}},
        "tables": [{"paper": 3, "title": "T3", "file": "m.json", "percent": True,
                    "metrics": {"UAR": "LT.{variant}.UAR", "AR-DI": "LT.{variant}.AR-DI"},
                    "rows": [{"label": "Original", "experiment": "full", "variant": "original"},
                             {"label": "w/o ASI", "experiment": "wo_asi"},
                             {"label": "w/o ARD", "experiment": "wo_ard"},
                             {"label": "ARGen", "experiment": "full"}]},
                   {"paper": 4, "title": "T4", "file": "e.json",
                    "metrics": {"FD": "ground_truth.argen.au_trajectory.fd", "F1": "au_f1.augmentation/disgust.mean"},
                    "rows": [{"label": "ARGen", "experiment": "full"}, {"label": "w/o ASI", "experiment": "wo_asi"}]}],
    }


def test_the_shipped_configuration_is_valid_and_names_each_experiment_once() -> None:
    shipped = read_config(ROOT / "configs/ablations.yaml")
    every = wanted_experiments(shipped)
    assert every[0] == "full" and len(every) == len(set(every)) == len(shipped["experiments"])
    assert wanted_experiments(shipped, [3]) == ["full", "wo_asi", "wo_ard"]


def test_queue_commands_carry_the_shared_set_then_the_experiments_overrides() -> None:
    command = queue_command(config(), "wo_asi")
    assert command[:6] == ["dvc", "exp", "run", "--queue", "-n", "abl-wo_asi"]
    assert command[6:] == ["-S", "recognize.models=[Landmark_Transformer]", "-S", "asi.mode=fixed"]
    assert wanted_experiments(config(), [4]) == ["full", "wo_asi"]


def test_a_row_naming_an_unknown_experiment_is_refused(tmp_path: Path) -> None:
    bad = config()
    bad["tables"][0]["rows"].append({"label": "x", "experiment": "nope"})
    (tmp_path / "c.yaml").write_text(json.dumps(bad))
    with pytest.raises(UserError, match="'nope'"):
        read_config(tmp_path / "c.yaml")


def test_lookup_follows_keys_that_contain_dots_and_slashes() -> None:
    data = {"au_f1": {"augmentation/disgust": {"mean": 0.25}}, "a.b": {"c": 1}, "a": {"b": {"c": 2}}}
    assert lookup(data, "au_f1.augmentation/disgust.mean") == 0.25
    assert lookup(data, "a.b.c") == 1  # the longest key first
    with pytest.raises(KeyError):
        lookup(data, "au_f1.nothing")


def test_comparison_tables_from_hand_made_experiments() -> None:
    files = {
        ("c_full", "m.json"): {"LT": {"original": {"UAR": 0.50, "AR-DI": 0.0}, "argen": {"UAR": 0.55, "AR-DI": 0.5}}},
        ("c_asi", "m.json"): {"LT": {"argen": {"UAR": 0.45}}},  # no AR-DI key
        ("c_full", "e.json"): {"ground_truth": {"argen": {"au_trajectory": {"fd": 16.0, "fd_interval": [12.0, 20.0]}}},
                               "au_f1": {"augmentation/disgust": {"mean": 0.1}}},
        ("c_asi", "e.json"): {"ground_truth": {"argen": {"au_trajectory": {"fd": 19.5}}},
                              "au_f1": {"augmentation/disgust": {"mean": 0.3}}},
    }

    def read(commit: str, path: str) -> str | None:
        found = files.get((commit, path))
        return None if found is None else json.dumps(found)

    text, values = comparison_tables(config(), {"full": "c_full", "wo_asi": "c_asi"}, read)
    assert "| Original | 50.0 | 0.0 |" in text
    assert "| w/o ASI | 45.0 (-5.0) | n/a |" in text  # the difference against the first row
    assert "| ARGen | 55.0 (+5.0) | 50.0 (+50.0) |" in text
    assert "w/o ASI: m.json of abl-wo_asi has no key LT.argen.AR-DI" in text
    assert "| w/o ARD | not run | not run |" in text and "abl-wo_ard has not run" in text
    assert "dvc exp run --queue -n abl-wo_ard" in text
    assert "| ARGen | 16.00 [12.00, 20.00] | 0.10 |" in text
    assert "| w/o ASI | 19.50 (+3.50) | 0.30 (+0.20) |" in text
    row = values[(values.table == "T4") & (values.experiment == "abl-full") & (values.metric == "FD")].iloc[0]
    assert (row.value, row.low, row.high) == (16.0, 12.0, 20.0)


def lock(**stages: str) -> str:
    return json.dumps({"schema": "2.0", "stages": {name: {"cmd": "x", "outs": [{"md5": md5}]}
                                                   for name, md5 in stages.items()}})


def test_the_stages_an_ablation_re_ran_are_those_whose_lock_entry_changed() -> None:
    full = lock(demo="a", prompts="b", rewards="c", policy="d")
    assert stages_rerun(full, lock(demo="a", prompts="b", rewards="c", policy="e")) == ["policy"]
    assert stages_rerun(full, lock(demo="a", prompts="x", rewards="y", policy="d", evaluate="z")) == \
        ["prompts", "rewards", "evaluate"]
    files = {("c_full", "dvc.lock"): full, ("c_asi", "dvc.lock"): lock(demo="a", prompts="x", rewards="c", policy="d")}
    cost = cost_table(config(), {"full": "c_full", "wo_asi": "c_asi"}, lambda c, p: files.get((c, p)),
                      lambda name: 60.0)
    assert cost.set_index("experiment").loc["abl-wo_asi"].tolist() == ["prompts", 1, 60.0]
    assert cost.set_index("experiment").loc["abl-wo_ard", "stages_rerun"] == "not run"
    assert isinstance(cost, pd.DataFrame)

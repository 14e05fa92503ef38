"""The ablation experiments' commands and the comparison tables, on hand-made experiment files (no DVC run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from argen.experiments.ablations import ablation_report, canonical, comparison_tables, cost_table, log_wall_time, lookup, \
    parse_file, parse_queue_status, queue_command, read_config, stages_rerun, wanted_experiments
from argen.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def config() -> dict:
    return {
        "name": "abl", "set": {"recognize.models": ["Landmark_Transformer"]},
        "experiments": {"full": {}, "wo_asi": {"asi.mode": "fixed"}, "wo_ard": {"generate.policy": "fixed"},
                        "again": {"asi.mode": "fixed"},  # the same overrides as wo_asi: one run
                        "broken": {"ard.lambda": 9}},
        "tables": [{"paper": 3, "title": "T3", "file": "m.json", "percent": True,
                    "metrics": {"UAR": "LT.{variant}.UAR", "AR-DI": ["t.csv:LT.{variant}.AR-DI", "LT.{variant}.AR-DI"]},
                    "rows": [{"label": "Original", "experiment": "full", "variant": "original"},
                             {"label": "w/o ASI", "experiment": "wo_asi"},
                             {"label": "w/o ARD", "experiment": "wo_ard"},
                             {"label": "ARGen", "experiment": "full"}]},
                   {"paper": 4, "title": "T4", "file": "e.json",
                    "metrics": {"FVD": "fvd.fd", "FD": ["ground_truth.au_trajectory.fd",
                                                       "ground_truth.argen.au_trajectory.fd"],
                                "tFD": "ground_truth.au_trajectory.tfd"},
                    "rows": [{"label": "same", "experiment": "again"}, {"label": "bad", "experiment": "broken"},
                             {"label": "ARGen", "experiment": "full"}]}],
    }


def test_the_shipped_configuration_is_valid_and_names_each_experiment_once() -> None:
    shipped = read_config(ROOT / "configs/ablations.yaml")
    every = wanted_experiments(shipped)
    assert every[0] == "full" and len(every) == len(set(every)) == len(shipped["experiments"])
    assert wanted_experiments(shipped, [3]) == ["full", "wo_asi", "wo_ard"]
    assert set(wanted_experiments(shipped, [4])) == {"full", "r_none", "r_quality", "r_face_expr"}
    assert queue_command(shipped, "r_none")[-6:] == ["-S", "ard.weight_quality=0", "-S", "ard.weight_face=0",
                                                     "-S", "ard.weight_expression=0"]
    # table 5's reinforce-only: no guidance curve, and rewards for step count and quality only
    assert queue_command(shipped, "reinforce_only_no_asi")[-8:] == [
        "-S", "asi.mode=fixed", "-S", "generator.guidance_form=constant", "-S", "ard.weight_face=0",
        "-S", "ard.weight_expression=0"]


def test_queue_commands_carry_the_shared_set_then_the_experiments_overrides_each_once() -> None:
    command = queue_command(config(), "wo_asi")
    assert command[:6] == ["dvc", "exp", "run", "--queue", "-n", "abl-wo_asi"]
    assert command[6:] == ["-S", "recognize.models=[Landmark_Transformer]", "-S", "asi.mode=fixed"]
    assert queue_command(config(), "full")[6:] == ["-S", "recognize.models=[Landmark_Transformer]"]
    assert canonical(config())["again"] == "wo_asi"
    assert queue_command(config(), "again") == command  # identical overrides: the same experiment
    assert wanted_experiments(config()) == ["full", "wo_asi", "wo_ard", "broken"]
    assert wanted_experiments(config(), [4]) == ["full", "wo_asi", "broken"]


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


def test_a_csv_is_keyed_by_its_leading_text_columns() -> None:
    data = parse_file("t.csv", "model,variant,test_clips,WAR,WAR_low,WAR_high\nLT,original,10,0.5,0.25,0.75\n")
    assert data == {"LT": {"original": {"test_clips": 10, "WAR": 0.5, "WAR_low": 0.25, "WAR_high": 0.75}}}
    assert parse_file("m.json", "{not json") is None and parse_file("m.json", None) is None


FILES = {
    ("c_full", "m.json"): {"LT": {"original": {"UAR": 0.50, "AR-DI": 0.0}, "argen": {"UAR": 0.55, "AR-DI": 0.5}}},
    ("c_full", "t.csv"): "model,variant,AR-DI,AR-DI_low,AR-DI_high,AR-DI_support\nLT,argen,0.5,0.1,0.9,4\n",
    ("c_asi", "m.json"): {"LT": {"argen": {"UAR": 0.45}}},  # no AR-DI key
    ("c_full", "e.json"): {"fvd": {"computed": False, "reason": "no I3D weights"},
                           "ground_truth": {"argen": {"au_trajectory": {"fd": 16.0, "fd_interval": [12.0, 20.0],
                                                                        "n_generated": 22}},
                                            "au_trajectory": {"tfd": 20.0, "tfd_sd": 5.0, "n": 22}}},
    ("c_asi", "e.json"): {"fvd": {"computed": False, "reason": "no I3D weights"},
                          "ground_truth": {"au_trajectory": {"fd": 19.5, "fd_interval": [15.0, 24.0], "n": 20,
                                                             "tfd": None}}},
}


def read(commit: str, path: str) -> str | None:
    found = FILES.get((commit, path))
    return found if found is None or isinstance(found, str) else json.dumps(found)


def test_comparison_tables_from_hand_made_experiments() -> None:
    text, values = comparison_tables(config(), {"full": "c_full", "wo_asi": "c_asi"}, read,
                                     statuses={"abl-broken": "Failed"})
    # table 3: values in %, Δ against the full experiment's ARGen row (not the first row)
    assert "| Original | 50.0 (Δ -5.0) | 0.0 (Δ -50.0) |" in text
    assert "| w/o ASI | 45.0 (Δ -10.0) | n/a |" in text
    assert "| ARGen | 55.0 | 50.0 [10.0, 90.0] N=4 |" in text  # AR-DI from the CSV, with its interval and support
    assert "n/a AR-DI: no t.csv (absent or unreadable) or no key `LT.argen.AR-DI` in m.json (abl-wo_asi)" in text
    assert "| w/o ARD | not run | not run |" in text
    assert "w/o ARD: experiment abl-wo_ard has not run; to run it: `dvc exp run --queue -n abl-wo_ard " \
           "-S 'recognize.models=[Landmark_Transformer]' -S generate.policy=fixed`" in text
    # table 4: the alias row reads wo_asi's run; the flat and the nested layouts both found; FVD not computed
    assert "| same | n/a | 19.50 [15.00, 24.00] N=20 (Δ +3.50) | n/a |" in text
    assert "| ARGen | n/a | 16.00 [12.00, 20.00] N=22 | 20.00 ± 5.00 N=22 |" in text
    assert "n/a FVD: not computed (no I3D weights) (abl-wo_asi, abl-full)" in text
    assert "n/a tFD: `ground_truth.au_trajectory.tfd` in e.json is null, not a number (abl-wo_asi)" in text
    assert "| bad | failed | failed | failed |" in text and "abl-broken failed" in text
    row = values[(values.table == "T4") & (values.experiment == "abl-full") & (values.metric == "FD")].iloc[0]
    assert (row.value, row.low, row.high, row.n) == (16.0, 12.0, 20.0, 22)
    same = values[(values.table == "T4") & (values.ablation == "same") & (values.metric == "FD")].iloc[0]
    assert same.delta_vs_full == pytest.approx(3.5)
    assert values[values.ablation == "bad"].status.unique().tolist() == ["failed"]


def test_the_report_is_written_and_survives_missing_files(tmp_path: Path) -> None:
    text = ablation_report(config(), {"full": "c_full", "wo_ard": "c_none"}, read, lambda name: None, {},
                           tmp_path)
    assert "| w/o ARD | n/a | n/a |" in text and "n/a UAR: no m.json (absent or unreadable) (abl-wo_ard)" in text
    assert {p.name for p in tmp_path.iterdir()} == {"comparison.md", "comparison.csv", "cost.csv"}


def lock(**stages: str) -> str:
    return yaml.safe_dump({"schema": "2.0", "stages": {
        name: {"cmd": f"python stages/{name.split('@')[0]}.py", "deps": [{"path": "in", "md5": md5[0]}],
               "outs": [{"path": f"out/{name}", "md5": md5[-1]}]} for name, md5 in stages.items()}})


def test_the_stages_an_ablation_re_ran_are_those_whose_lock_entry_changed_in_pipeline_order() -> None:
    order = ["demo", "prompts", "rewards", "policy", "recognize", "evaluate"]
    full = lock(demo="aa", prompts="bb", rewards="cc", policy="dd")
    assert stages_rerun(full, full, order) == ([], [])
    assert stages_rerun(full, lock(demo="aa", prompts="bb", rewards="cc", policy="de"), order) == (["policy"], ["policy"])
    # dependencies changed, outputs the same: it re-ran without other outputs; a stage full lacks re-ran too
    mine = lock(evaluate="zz", policy="xd", prompts="bx", demo="aa", **{"recognize@LT-argen": "qq"})
    assert stages_rerun(full, mine, order) == (["prompts", "policy", "recognize@LT-argen", "evaluate"],
                                               ["prompts", "recognize@LT-argen", "evaluate"])
    files = {("c_full", "dvc.lock"): full, ("c_asi", "dvc.lock"): lock(demo="aa", prompts="xx", rewards="cc", policy="dd"),
             ("c_full", "dvc.yaml"): yaml.safe_dump({"stages": {name: {} for name in order}})}
    cost = cost_table(config(), {"full": "c_full", "wo_asi": "c_asi"}, lambda c, p: files.get((c, p)),
                      lambda name: 60.0, {"abl-broken": "Failed"}).set_index("experiment")
    assert cost.loc["abl-wo_asi", ["status", "stages_rerun", "outputs_changed", "n_stages", "wall_s"]].tolist() == \
        ["done", "prompts", "prompts", 1, 60.0]
    assert cost.loc["abl-full", "stages_rerun"] == "(reference)"
    assert cost.loc["abl-wo_ard", "status"] == "not run" and cost.loc["abl-broken", "status"] == "failed"
    assert "abl-again" not in cost.index  # an alias is not a run of its own


def test_wall_time_and_queue_status_from_dvc_output() -> None:
    log = ("Reproducing experiment 'abl-x'\nStage 'demo' didn't change, skipping\n"
           "23:59:50 INFO argen.stages.policy: start\nRunning stage 'generate':\n"
           "00:01:10 INFO argen.stages.generate: done\n")
    assert log_wall_time(log) == 80.0  # across midnight
    assert log_wall_time("no stamps\n") is None
    status = ("Task     Name                      Created    Status\n"
              "241c584  abl-random_policy_no_asi  01:30 PM   Running\n"
              "eaae770  abl-no_curve_no_asi       01:30 PM   Failed\n\nWorker status: 1 active, 0 idle\n")
    assert parse_queue_status(status) == {"abl-random_policy_no_asi": "Running", "abl-no_curve_no_asi": "Failed"}

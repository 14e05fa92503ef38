"""The evidence runner's plan: which stages run once per fold and which per variant (no pipeline run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from argen.experiments.evidence import estimate_seconds, expand_stages, plan, read_config, stages_to_run

ROOT = Path(__file__).resolve().parents[1]
LT = "recognize@Landmark_Transformer"


def shipped_plan() -> list[dict]:
    config = read_config(ROOT / "configs/evidence.yaml")
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return plan(config, pipeline, params)


def test_matrix_and_foreach_are_expanded_as_dvc_names_them() -> None:
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["recognize"]["variants"] = ["original", "oversample"]
    stages = expand_stages(pipeline, params)
    assert {"tracks@original", "tracks@oversample", f"{LT}-oversample", "recognize@Res18_LSTM-original"} <= set(stages)
    assert f"{LT}-argen" not in stages
    assert "data/interim/tracks/oversample.parquet" in stages[f"{LT}-oversample"]["deps"]
    assert "ard" in stages["policy"]["params"] and "generate" in stages["generate"]["params"]


def test_shared_stages_run_once_per_fold_and_variants_rerun_only_what_they_change() -> None:
    planned = shipped_plan()
    assert len(planned) == 20
    by_name = {p["name"]: set(p["stages"]) for p in planned}
    base, later_base = by_name["evidence-fold1"], by_name["evidence-fold2"]
    shared = {"decompose", "extract_aus", "identities", "au_kb", "prompts", "motion_model", "rewards", "policy",
              "generate", "oracle", "tracks@original", "tracks@argen", "tracks@oracle", "tracks@oversample",
              f"{LT}-original", f"{LT}-argen", f"{LT}-oracle", f"{LT}-oversample", "recognition"}
    assert shared <= base and "demo" in base
    assert "demo" not in later_base and shared <= later_base  # the 3000-clip demo is rendered once in all
    assert not {"evaluate", "report", "preview"} & base        # the target is the recognition table
    paper = by_name["evidence-fold1-argen_paper"]
    assert {"policy", "generate", "tracks@argen", f"{LT}-argen", "recognition"} <= paper
    assert not {"demo", "decompose", "extract_aus", "motion_model", "rewards", "prompts", "tracks@original",
                "tracks@oversample", f"{LT}-original", f"{LT}-oversample"} & paper
    wo_ard = by_name["evidence-fold1-wo_ard"]  # right after the base: only the generated set changes
    assert {"generate", "tracks@argen", f"{LT}-argen"} <= wo_ard
    assert not {"policy", "rewards", "prompts", f"{LT}-original", f"{LT}-oversample"} & wo_ard
    assert not {"oracle", "tracks@oracle", f"{LT}-oracle"} & wo_ard  # same counts: the oracle does not re-run
    wo_asi = by_name["evidence-fold1-wo_asi"]
    assert {"prompts", "rewards", "policy", "generate"} <= wo_asi
    assert not {"extract_aus", "motion_model", "identities", f"{LT}-original", f"{LT}-oversample"} & wo_asi


def test_a_changed_key_reruns_its_readers_and_everything_downstream() -> None:
    stages = {"a": {"params": ["x"], "deps": [], "outs": ["o/a"]},
              "b": {"params": ["y.z"], "deps": ["o/a"], "outs": ["o/b"]},
              "c": {"params": ["y"], "deps": [], "outs": ["o/c"]},
              "t": {"params": [], "deps": ["o/b", "o/c"], "outs": ["o/t"]},
              "other": {"params": ["x"], "deps": [], "outs": ["o/other"]}}
    assert stages_to_run(stages, stages, {"x"}, "t") == ["a", "b", "t"]        # not 'other': not the target's
    assert stages_to_run(stages, stages, {"y.z"}, "t") == ["b", "c", "t"]      # 'y' is a section of y.z
    assert stages_to_run(stages, stages, {"y.w"}, "t") == ["c", "t"]
    assert stages_to_run(stages, stages, set(), "t") == []
    assert stages_to_run(stages, stages, {"x"}, "t", stable=("o/b",)) == ["a", "b"]  # b re-runs, same bytes: t skips
    assert stages_to_run(stages, stages, {"x"}, "t", stable=("o/b/counts",)) == ["a", "b", "t"]  # t reads all of o/b
    assert stages_to_run(stages, stages, {"y"}, "t", stable=("o/b",)) == ["b", "c", "t"]  # t reads the changed o/c
    assert stages_to_run({k: v for k, v in stages.items() if k != "c"}, stages, set(), "t") == ["c", "t"]  # new


def test_the_estimate_sums_measured_seconds_over_the_plan() -> None:
    planned = [{"name": "e1", "stages": ["generate", f"{LT}-argen"]}, {"name": "e2", "stages": ["generate"]}]
    total, by_family = estimate_seconds(planned, {"generate": 60.0, "recognize": 30.0})
    assert total == 150.0
    assert by_family.set_index("family").seconds.to_dict() == {"generate": 120.0, "recognize": 30.0}


def test_each_experiment_contributes_its_rows_under_the_table_3_names() -> None:
    from argen.experiments.evidence import runs_of, variant_of, versus_oversampling

    config = read_config(ROOT / "configs/evidence.yaml")
    variants = ["original", "argen", "oracle", "oversample"]
    assert variant_of(config, "evidence-fold3") is None
    assert variant_of(config, "evidence-fold3-argen_paper") == "argen_paper"
    assert runs_of(config, "evidence-fold3", variants) == {v: v for v in variants}
    assert runs_of(config, "evidence-fold3-wo_asi", variants) == {"argen": "wo_asi"}  # its own original: not again
    rows = []
    for fold in (1, 2):
        for variant, right in (("original", 2), ("oversample", 2), ("argen", 3), ("oracle", 4)):
            for k in range(4):
                rows.append({"model": "LT", "variant": variant, "fold": fold, "seed": 0, "clip_id": f"{fold}-{k}",
                             "label": 5, "predicted": 5 if k < right else 0})
    against = versus_oversampling(pd.DataFrame(rows), resamples=200)
    assert against.variant.tolist() == ["argen"] and (against.versus == "oversample").all()
    assert against.iloc[0]["d_WAR"] == 0.25  # 3 of 4 clips right against 2 of 4, in both folds
    from argen.recognize.summary import markdown, recognition_tables

    table, deltas, shares, shown = recognition_tables(pd.DataFrame(rows), ["fear"], 200, 0)
    text = markdown(table, pd.concat([deltas, against], ignore_index=True), shares, shown, "")
    assert "| LT | argen | original | 2 |" in text and "| LT | argen | oversample | 2 |" in text


def test_the_policy_is_pooled_once_per_trained_policy_with_a_known_interval(monkeypatch) -> None:
    import json

    from argen.experiments import evidence

    def metrics(delta: float, half_width: float) -> str:
        heldout = {name: {"reward": 10.0 + k} for k, name in
                   enumerate(("learned", "best_fixed", "random", "fixed_T20", "oracle"))}
        return json.dumps({"heldout": heldout, "best_fixed_action": [5, 2.0, 2.0], "reward": {"mode": "argen"},
                           "learned_minus_best_fixed": {"mean": delta, "low": delta - half_width,
                                                        "high": delta + half_width, "pairs": 12},
                           "gap_closed": {"oracle": delta}})

    files = {"c1": metrics(0.2, 0.1), "c1-ard": metrics(0.2, 0.1), "c1-paper": metrics(-0.5, 0.1),
             "c2": metrics(0.0, 0.3)}  # w/o ARD does not re-run the policy: its file is its base's
    monkeypatch.setattr(evidence, "git_show", lambda commit, path: files[commit])
    config = read_config(ROOT / "configs/evidence.yaml")
    rows = evidence.policy_rows(config, {"evidence-fold1": "c1", "evidence-fold1-wo_ard": "c1-ard",
                                         "evidence-fold1-argen_paper": "c1-paper", "evidence-fold2": "c2"})
    assert sorted(zip(rows.set, rows.fold)) == [("argen", 1), ("argen", 2), ("argen_paper", 1)]
    pooled = evidence.pooled_policy(rows).set_index("set")
    assert pooled.loc["argen", "learned_minus_best_fixed"] == 0.1
    # se per fold = half width / 1.96: pooled half width = 1.96 sqrt(se1^2 + se2^2) / 2 = sqrt(0.01 + 0.09) / 2
    assert abs(pooled.loc["argen", "high"] - (0.1 + 0.1 ** 0.5 / 2)) < 1e-9
    assert (pooled.loc["argen", "folds_above"], pooled.loc["argen", "folds_below"]) == (1, 0)
    assert pooled.loc["argen_paper", "folds_below"] == 1 and pooled.loc["argen", "pairs"] == 24
    assert "| argen_paper | 1 |" in evidence.policy_markdown(rows, evidence.pooled_policy(rows))

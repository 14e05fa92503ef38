"""The ARD stages as a user runs them: dvc repro, an ablation with dvc exp run, dvc metrics diff, a killed
rewards run that resumes, and the rewards stage sharded over two processes under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BIN, dvc, run, stale_stages, tiny_params

@pytest.fixture
def project(reproduced: tuple[Path, subprocess.CompletedProcess]) -> Path:
    """This worker's copy of the session's reproduced tiny project (shared with test_report.py's browser check)."""
    return reproduced[0]


@pytest.fixture
def own_project(fresh_reproduced: tuple[Path, subprocess.CompletedProcess]) -> Path:
    """A copy of the reproduced project of the test's own (the test runs on either worker)."""
    return fresh_reproduced[0]


def test_extract_aus_and_tracks_share_one_extraction(reproduced: tuple[Path, subprocess.CompletedProcess]) -> None:
    """Stage wiring: whichever of extract_aus and tracks@original runs second finds every clip the other
    extracted in the shared cache (the evidence run's later folds then extract nothing twice)."""
    project, result = reproduced
    extracted = json.loads((project / "reports/extract_aus/metrics.json").read_text())["clips"]["all"]
    found = [int(m.group(1)) for m in re.finditer(r"(\d+) of \d+ clips found in the extraction cache",
                                                    result.stdout + result.stderr)]
    assert found and max(found) >= extracted, (found, extracted)


def test_the_motion_model_trains_on_the_kb_conditions_of_the_scarce_tracks(project: Path) -> None:
    """Stage wiring: every (mirrored) track of a knowledge-base emotion got one KB-condition copy, and the
    emotion check measured the KB-form prompts of each of those emotions."""
    metrics = json.loads((project / "reports/motion_model/metrics.json").read_text())
    kb_emotions = set(pd.read_parquet(project / "data/interim/au_kb.parquet").emotion)
    own = metrics["tracks_per_emotion"]
    assert metrics["kb_condition_copies"] == sum(2 * own.get(e, 0) for e in kb_emotions) > 0
    assert set(metrics["emotion_check"]["kb"]) == kb_emotions & set(own)
    assert "## knowledge-base prompts" in (project / "reports/motion_model/emotions.md").read_text()


def test_repro_writes_the_table_the_policy_and_the_generated_set(project: Path) -> None:
    table = pd.read_parquet(project / "data/interim/rewards.parquet")
    pairs = pd.read_parquet(project / "data/interim/reward_pairs.parquet")
    assert len(table) == len(pairs) * 12 and (table.status == "ok").all()
    assert set(pairs.split) == {"train", "val"} and (pairs.groupby("identity_id").split.nunique() == 1).all()
    assert table[["R_S", "R_Q", "R_F", "R_E", "R_A"]].apply(lambda c: c.between(0, 1).all()).all()
    assert (table.model_calls == table["T"]).all()  # the motion generator: one denoiser call per step
    metrics = json.loads((project / "reports/policy/metrics.json").read_text())
    assert set(metrics["heldout"]) == {"learned", "random", "fixed_T20", "best_fixed", "oracle"}
    held = metrics["heldout"]
    assert held["oracle"]["reward"] >= max(v["reward"] for k, v in held.items() if k != "oracle") - 1e-9
    assert (project / "reports/policy/live/plots/metrics/train/loss.tsv").is_file()
    index = pd.read_parquet(project / "data/generated/index.parquet")
    assert index.emotion.value_counts().to_dict() == {"disgust": 3, "surprise": 2, "fear": 2}
    assert index.status.str.startswith("ok").all() and index.clip_id.is_unique
    first = index.iloc[0]
    assert len(list((project / first.frames_dir).glob("*.jpg"))) == first.n_frames == 8


RUNS = [f"{m}-{v}" for m in ("Landmark_Transformer", "Res18_LSTM") for v in ("original", "argen", "oracle")]


def test_repro_trains_the_recognisers_on_each_training_split_and_tables_them(project: Path) -> None:
    clips = pd.read_parquet(project / "data/interim/clips.parquet")
    n_train, n_test = int((clips.split == "train").sum()), int((clips.split == "test").sum())
    added = {"disgust": 3, "fear": 2, "surprise": 2}
    oracle = pd.read_parquet(project / "data/oracle/index.parquet")
    assert oracle.emotion.value_counts().to_dict() == added and oracle.subject.str.startswith("O").all()
    assert not set(oracle.subject) & set(clips.subject)  # new subjects
    for run_name in RUNS:
        metrics = json.loads((project / f"reports/recognize/{run_name}/metrics.json").read_text())
        variant = run_name.split("-")[1]
        assert metrics["test_clips"] == n_test and sum(metrics["support"].values()) == n_test
        assert metrics["added_clips"] == ({} if variant == "original" else added)
        assert metrics["train_clips"] == n_train + (0 if variant == "original" else 7)
        assert 0 <= metrics["WAR"] <= 1 and 0 <= metrics["UAR"] <= 1
        for name in ("AR-SU", "AR-DI", "AR-FE"):
            if metrics["support"][name]:
                low, high = metrics["per_seed"][0][name]["ci"]
                assert low <= metrics[name] <= high
            else:
                assert metrics[name] is None  # no support: not a silent 0
        predictions = pd.read_csv(project / f"reports/recognize/{run_name}/predictions.csv", dtype={"clip_id": str})
        assert len(predictions) == n_test and set(predictions.clip_id) == set(clips.clip_id[clips.split == "test"])
        assert (project / f"reports/recognize/{run_name}/confusion.png").stat().st_size > 0
        assert (project / f"models/recognize/{run_name}/seed_0.safetensors").is_file()
    table = (project / "reports/recognition/table.md").read_text()
    for run_name in RUNS:
        model, variant = run_name.split("-")
        assert f"| {model} | {variant} |" in table
    deltas = pd.read_csv(project / "reports/recognition/deltas.csv")
    assert sorted(zip(deltas.model, deltas.variant)) == sorted(
        (m, v) for m in ("Landmark_Transformer", "Res18_LSTM") for v in ("argen", "oracle"))
    judge = pd.read_csv(project / "reports/recognition/judge.csv")
    assert set(judge.set) == {"argen", "oracle"} and set(judge.emotion) == set(added)
    assert (judge.groupby(["model", "set"]).clips.sum() == 7).all() and judge.share.between(0, 1).all()
    summary = json.loads((project / "reports/recognition/metrics.json").read_text())
    assert set(summary["Landmark_Transformer"]) >= {"original", "argen", "delta_argen", "judge_argen"}


def test_repro_evaluates_generated_clips_against_real_ones_and_writes_the_report(project: Path) -> None:
    metrics = json.loads((project / "reports/evaluate/metrics.json").read_text())
    assert metrics["fvd"]["computed"] is False and "evaluate.i3d_path" in metrics["fvd"]["reason"]
    for who in ("argen", "floor"):  # ARGen's clips and the demo renderer's floor, same clips, same N
        for space in ("au_trajectory", "face_descriptor"):
            block = metrics["ground_truth"][who][space]
            assert block["n_real"] == block["n_generated"] >= 2 and block["fd"] >= 0, block
            assert "rank-deficient" in block["warning"]  # a handful of clips in 68 or 128 dimensions
    assert set(metrics["augmentation"]) == {"argen", "oracle"}
    clips = pd.read_parquet(project / "data/evaluate/clips.parquet")
    assert len(clips) == metrics["ground_truth"]["argen"]["au_trajectory"]["n_real"]
    assert clips.frames_dir.str.startswith("data/evaluate/generated/").all()
    # clips generated for evaluation never enter a training set: no other stage reads data/evaluate
    import yaml

    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    readers = {name for name, stage in stages.items() if any(str(d).startswith("data/evaluate") for d in
                                                            stage.get("deps", []))}
    assert readers == set(), readers
    report = (project / "reports/report.md").read_text()
    assert "## Generation metrics (tables 1, 4, 5, 8)" in report
    assert "FVD, sFVD and tFVD were not computed" in report and "evaluate.i3d_path" in report
    notes = [line for line in report.splitlines() if "Missing input" in line or "Unreadable input" in line]
    assert notes == [], notes
    assert (project / "reports/evaluate/grid.jpg").stat().st_size > 0


def test_the_evidence_table_pools_named_experiments(own_project: Path) -> None:
    project = own_project
    dvc(project, "exp", "run", "-n", "ev-fold1")  # params as committed: nothing re-runs
    (project / "ev.yaml").write_text("name: ev\nfolds: [1]\nset: {}\n")
    run(project, sys.executable, "-m", "argen.experiments.evidence", "table", "--config", "ev.yaml",
        "--fresh")  # the committed table pooled other experiments: --fresh, or the command refuses to drop them
    table = pd.read_csv(project / "reports/evidence/table.csv")
    assert sorted(zip(table.model, table.variant)) == sorted(tuple(r.split("-")) for r in RUNS)
    assert (table.folds == 1).all() and (table.seeds == 1).all()
    one = json.loads((project / "reports/recognize/Res18_LSTM-argen/metrics.json").read_text())
    row = table[(table.model == "Res18_LSTM") & (table.variant == "argen")].iloc[0]
    assert row["UAR"] == pytest.approx(one["UAR"], abs=1e-4)  # pooling one run gives that run
    judged = pd.read_csv(project / "reports/evidence/judge.csv")
    assert set(judged.set) == {"argen", "oracle"}
    (project / "ev.yaml").unlink()
    shutil.rmtree(project / "reports/evidence")
    run(project, "git", "checkout", "-q", "--", "reports/evidence")  # the committed copy the report includes


def test_lambda_ablation_reuses_the_reward_table(fresh_reproduced: tuple[Path, subprocess.CompletedProcess]) -> None:
    project = fresh_reproduced[0]  # a copy of its own: the ablation runs on the other worker meanwhile
    result = dvc(project, "exp", "run", "-S", "ard.lambda=1", "policy")  # what runs after it: dvc status below
    assert "Running stage 'policy'" in result.stdout
    assert "Running stage 'rewards'" not in result.stdout, result.stdout
    diff = dvc(project, "metrics", "diff", "--all")
    assert "reports/policy/metrics.json" in diff.stdout and "heldout.learned.reward" in diff.stdout
    stale = stale_stages(project)
    assert stale == {"generate", "evaluate", "report"}, stale  # the new policy feeds them, nothing else
    # A generated set that changed with the same counts (one frame's bytes here) reaches tracks@argen, evaluate
    # and the report, not the oracle: it reads data/generated/counts.json only
    frame = min((project / "data/generated").glob("*/*.jpg"))
    frame.write_bytes(frame.read_bytes() + b"\0")
    stale = stale_stages(project)
    assert stale == {"generate", "tracks@argen", "evaluate", "report"}, stale


def reward_run(project: Path, *launcher: str) -> subprocess.Popen:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen([*launcher, "stages/rewards.py"], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def reward_shard_count(project: Path) -> int:
    """Shards of the tiny project's reward table: its pairs in groups of ``rewards.shard_pairs``."""
    return -(-len(pd.read_parquet(project / "data/interim/reward_pairs.parquet")) // tiny_params()["rewards"]["shard_pairs"])


def test_a_killed_rewards_run_resumes_from_its_finished_shards(own_project: Path) -> None:
    project = own_project
    expected = pd.read_parquet(project / "data/interim/rewards.parquet")
    n_shards = reward_shard_count(project)
    assert n_shards >= 3, n_shards
    shards = project / "data/cache/reward_shards"
    shutil.rmtree(shards)
    process = reward_run(project, sys.executable)
    deadline = time.time() + 120
    while not list(shards.glob("shard_*.parquet")) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard_*.parquet")}
    assert 1 <= len(kept) < n_shards, kept  # killed part-way: some shards done, not all
    rerun = run(project, sys.executable, "stages/rewards.py")
    assert f"{len(kept)} finished before, {n_shards - len(kept)} to do" in rerun.stderr, rerun.stderr
    assert {p.name: p.stat().st_mtime_ns for p in shards.glob("shard_*.parquet") if p.name in kept} == kept
    pd.testing.assert_frame_equal(pd.read_parquet(project / "data/interim/rewards.parquet"), expected)


def test_rewards_sharded_over_two_processes_equal_one_process(own_project: Path) -> None:
    project = own_project
    expected = pd.read_parquet(project / "data/interim/rewards.parquet")
    shutil.rmtree(project / "data/cache/reward_shards")
    result = run(project, sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "stages/rewards.py")
    todo = {int(rank): int(n) for n, rank in re.findall(r"(\d+) to do on rank (\d)/2", result.stderr)}
    n_shards = reward_shard_count(project)
    assert todo == {0: (n_shards + 1) // 2, 1: n_shards // 2}, result.stderr  # every other shard per rank
    pd.testing.assert_frame_equal(pd.read_parquet(project / "data/interim/rewards.parquet"), expected)


def test_generate_sharded_over_two_processes_equals_one_process(own_project: Path) -> None:
    project = own_project
    expected = pd.read_parquet(project / "data/generated/index.parquet")
    first = expected.iloc[0]
    frame = (project / first.frames_dir / first.frames[0]).read_bytes()
    result = run(project, sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "stages/generate.py")
    assert "clips generated" in result.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(project / "data/generated/index.parquet"), expected)
    assert (project / first.frames_dir / first.frames[0]).read_bytes() == frame
    assert "up to date" in dvc(project, "status", "generate").stdout  # the same bytes as one process made
    assert not (project / "data/cache/generate").exists()


def test_a_dvc_remote_carries_every_output_to_another_clone(own_project: Path, tmp_path: Path) -> None:
    """The scale-out recipe's shared cache: push from one machine, pull on another, nothing to re-run."""
    project = own_project
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "--local", "-d", "shared", str(remote))
    dvc(project, "push", "-q")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(project), str(clone))
    assert not (clone / "data/generated").exists()  # DVC-tracked: not in git
    dvc(clone, "remote", "add", "--local", "-d", "shared", str(remote))
    dvc(clone, "pull", "-q")
    assert (clone / "data/generated/index.parquet").read_bytes() == (project / "data/generated/index.parquet").read_bytes()
    status = dvc(clone, "status")
    assert "up to date" in status.stdout, status.stdout
    (project / ".dvc/config.local").unlink()

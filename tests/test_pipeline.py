"""The DVC pipeline end to end on a tiny demo config, in a temporary copy of the project.

The tests here change the reproduced project: the first runs last on the worker's ``reproduced`` copy, right after
the worker built the session's ``pristine`` project, the second on a copy of its own (``fresh_reproduced``) on
either worker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from tests.conftest import TINY, dvc, make_project, stale_stages

def test_repro_then_nothing_to_do_then_only_what_the_prompts_feed(
        reproduced: tuple[Path, subprocess.CompletedProcess]) -> None:
    """On the worker's ``reproduced`` copy, as the last test to use it (``tests/conftest.py``): it changes the
    project and does not restore it."""
    project, _ = reproduced
    clips = pd.read_parquet(project / "data/interim/clips.parquet")
    assert len(clips) == TINY["n_clips"]
    metrics = json.loads((project / "reports/decompose/metrics.json").read_text())
    assert metrics["n_clips"] == TINY["n_clips"] and metrics["n_skipped"] == 0 and metrics["warning"] == ""
    assert (project / "reports/decompose/class_distribution.png").stat().st_size > 0
    frames = pd.read_parquet(project / "data/interim/aus.parquet")
    assert frames.success.mean() > 0.95
    identities = pd.read_parquet(project / "data/interim/identities.parquet")
    rejected = pd.read_parquet(project / "data/interim/identities_rejected.parquet")
    assert len(identities) + len(rejected) == clips.identity_source.sum() and len(identities) > 0
    assert all((project / "data/interim/identities" / f).is_file() for f in identities.image_file)
    assert (project / "reports/identities/grid.jpg").stat().st_size > 0
    kb = pd.read_parquet(project / "data/interim/au_kb.parquet")
    assert set(kb.emotion) == {"surprise", "disgust", "fear"}
    assert pd.read_parquet(project / "data/interim/au_kb_skipped.parquet").columns.tolist() == ["item", "reason"]
    prompts = pd.read_parquet(project / "data/interim/prompts.parquet")
    assert len(prompts) == 3 * len(identities) and not prompts.prompt.str.contains(r"\(AU").any()
    prompt_metrics = json.loads((project / "reports/prompts/metrics.json").read_text())
    assert {"vlm_rag", "vlm_only"} <= set(prompt_metrics)
    assert (project / "models/motion/denoiser.safetensors").is_file()
    motion = json.loads((project / "reports/motion_model/metrics.json").read_text())
    assert motion["tracks"] >= 5 and motion["steps"] == 20
    assert (project / "reports/motion_model/live/plots/metrics/train/loss.tsv").is_file()
    preview = json.loads((project / "reports/generator/metrics.json").read_text())
    assert preview["generator"] == "motion" and preview["folded_triangles_max"] == 0
    assert {c["source"] for c in preview["clips"]} >= {"astronaut"}
    assert (project / "reports/generator/contact_sheet.jpg").stat().st_size > 0

    # Bytecode Python writes beside the code the stages depend on (on most machines; not where
    # PYTHONDONTWRITEBYTECODE is set) changes nothing DVC hashes (.dvcignore)
    pycache = project / "argen/extract/__pycache__"
    pycache.mkdir(exist_ok=True)
    (pycache / "cache.cpython-311.pyc").write_bytes(b"\x00")
    again = dvc(project, "repro")
    assert "Running stage" not in again.stdout, again.stdout

    params = yaml.safe_load((project / "params.yaml").read_text())
    # The table 5 ablation (w/o ASI) re-runs the prompts and what uses them only. The target stops it at the
    # policy: fixed prompts (no AU named, R_A undefined) run through the reward table and the policy's training;
    # `dvc status` then names the stages that read the new prompts, table or policy, and only those. What runs
    # after a changed policy (generate, tracks@argen, its recognisers) is the lambda ablation's test
    # (test_ard_pipeline.py), which runs it.
    params["asi"]["mode"] = "fixed"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ablation = dvc(project, "repro", "policy")
    ran = {line.split("'")[1] for line in ablation.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"prompts", "rewards", "policy"}, ablation.stdout
    fixed = pd.read_parquet(project / "data/interim/prompts.parquet")
    assert fixed.prompt.str.startswith("A person with the expression of slight").all()
    table = pd.read_parquet(project / "data/interim/rewards.parquet")
    assert table.R_A.isna().all()  # no AU named, none to check: the fidelity term is R_C alone
    stale = stale_stages(project)
    assert stale == {"preview", "generate", "evaluate", "report"}, stale


def test_a_changed_scarce_class_list_reruns_from_decompose(
        fresh_reproduced: tuple[Path, subprocess.CompletedProcess]) -> None:
    """A copy of its own, so that it runs beside the ablation above."""
    project, _ = fresh_reproduced
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["decompose"]["scarce_classes"] = ["disgust", "fear"]  # also the knowledge base's emotions
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = dvc(project, "repro", "au_kb")
    assert "Running stage 'decompose'" in changed.stdout and "Running stage 'demo'" not in changed.stdout
    assert "Running stage 'extract_aus'" in changed.stdout, "scarce clips feed extract_aus"
    clips = pd.read_parquet(project / "data/interim/clips.parquet")
    assert set(clips[clips.scarce].label) <= {"disgust", "fear"}
    assert set(pd.read_parquet(project / "data/interim/au_kb.parquet").emotion) == {"disgust", "fear"}


def test_bad_params_stop_the_stage_with_the_key_named(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["fold"] = 9
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, "stages/decompose.py"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 1
    assert "'data.fold': Input should be less than or equal to 5 (got 9)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "data/interim/clips.parquet").exists()


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update({"source": "dfew", "root": str(tmp_path / "no-such-dfew")})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, "stages/decompose.py"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"data.root for source 'dfew' not found: {tmp_path / 'no-such-dfew'}" in result.stderr


def test_missing_openface_binary_is_a_clear_error(tmp_path: Path, tiny_demo: Path) -> None:
    project = make_project(tmp_path)
    shutil.copytree(tiny_demo, project / "data/raw/demo")  # the demo stage's output (the same params), rendered once
    decompose = subprocess.run([sys.executable, "stages/decompose.py"], cwd=project, capture_output=True, text=True)
    assert decompose.returncode == 0, decompose.stderr
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["extract_aus"].update({"backend": "openface", "openface_bin": str(tmp_path / "FeatureExtraction")})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = subprocess.run([sys.executable, "stages/extract_aus.py"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "OpenFace FeatureExtraction not found or not executable" in result.stderr
    assert not (project / "data/interim/aus.parquet").exists()

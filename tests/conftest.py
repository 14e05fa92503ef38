"""Shared fixtures: a tiny demo dataset, and a tiny copy of the project reproduced with DVC, once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from argen.demo.dataset import write_demo_dataset
from argen.params import DemoParams

ROOT = Path(__file__).resolve().parents[1]

#: The smallest demo that still has every class and all five folds.
TINY_DEMO = DemoParams(n_clips=40, image_size=96, n_frames=8, clips_per_subject=4.0)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny demo dataset in DFEW's layout (seed 0)."""
    root = tmp_path_factory.mktemp("demo") / "demo"
    write_demo_dataset(root, TINY_DEMO, seed=0)
    return root


def demo_landmarks(size: int):
    """The demo face model's neutral 68 landmarks (68, 2), placed in a ``size`` x ``size`` image."""
    from argen.demo.face import FaceShape, neutral_landmarks

    return neutral_landmarks(FaceShape())[:, :2] * size * 0.3 + size / 2


#: The demo params of the pipeline tests' projects.
TINY = {"n_clips": 40, "image_size": 96, "n_frames": 8, "clips_per_subject": 4.0}
BIN = Path(sys.executable).parent


def run(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a command in ``project`` with this environment's tools first on PATH; it must succeed."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(list(args), cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the dvc CLI of this environment in ``project``."""
    return run(project, str(BIN / "dvc"), *args)


def tiny_params() -> dict:
    """The project's params.yaml scaled down to the tiny demo: every stage runs in seconds."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["demo"].update(TINY)
    params["extract_aus"]["sample_per_class"] = 2
    params["motion_model"].update(steps=20, d_model=32, n_layers=1, n_heads=2, min_tracks=5, n_frames=8,
                                   check_samples=2)
    params["generator"].update(size=64, n_frames=8)
    params["ard"].update(policy_steps=30, policy_batch=8)
    params["preview"].update(identities=1, action=[5, 2.0, 2.0], frames=[1, 4, 8])
    params["rewards"].update(frames=3, max_identities=3, shard_pairs=2, workers=1)
    params["generate"].update(per_class={"surprise": 2, "disgust": 3, "fear": 2}, contact_sheet=2)
    params["recognize"].update(variants=["original", "argen", "oracle"], image_size=32, width=4, hidden=16,
                               geometry_hidden=16, epochs=1, bootstrap=50,
                               overrides={"Landmark_Transformer": {"epochs": 3, "lr": 0.01}})
    params["evaluate"].update(splits=["train", "test"], bootstrap=20, descriptor_frames=2)
    return params


def make_project(tmp_path: Path, git: bool = False) -> Path:
    """A copy of the project (code, dvc.yaml, tiny params) under ``tmp_path``, DVC-initialised.

    With ``git``, a git repository with a first commit (``dvc exp`` needs git, DVCLive a commit).
    """
    project = tmp_path / "project"
    project.mkdir()
    for name in ("argen", "stages"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, project)
    for name in ("reports/evidence", "reports/ablations"):  # committed results the report stage includes
        shutil.copytree(ROOT / name, project / name)
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    if not git:
        dvc(project, "init", "--no-scm", "-q")
        return project
    run(project, "git", "init", "-q")
    run(project, "git", "config", "user.email", "test@example.com")
    run(project, "git", "config", "user.name", "test")
    dvc(project, "init", "-q")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", "project")
    return project


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A git + DVC project on the tiny demo after one ``dvc repro``, committed; and that repro's output.

    Tests that change it restore it (``git checkout -- . && dvc checkout``) unless they are the last to use it.
    """
    project = make_project(tmp_path_factory.mktemp("pipeline"), git=True)
    result = dvc(project, "repro")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", "baseline")
    return project, result


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``).

    ``tryfirst``: xdist's worker reads the ``xdist_group`` marks in its own ``pytest_collection_modifyitems``
    (it appends the group to each node id); a conftest hook is registered before xdist's and so would run after
    it, and the marks added here came too late: every test was scheduled on its own and each worker built its
    own ``reproduced`` project.

    Each test file runs on one worker, so its module-scoped fixtures are built once; every test that uses the
    session's ``reproduced`` project (directly or through a fixture) runs on one worker, in collection order,
    so that project is reproduced once. Without xdist the groups change nothing.
    """
    for item in items:
        uses_project = "reproduced" in getattr(item, "fixturenames", ())
        group = "reproduced" if uses_project else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))

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

#: No DVC usage report from the tests' dvc commands: each one otherwise starts a daemon process that imports
#: DVC again to send it (about 0.6 s of CPU a command, on a machine without network).
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

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


def stale_stages(project: Path) -> set[str]:
    """The stages ``dvc status`` names in ``project`` (changed dependencies, not yet re-run)."""
    return {line[:-1] for line in dvc(project, "status").stdout.splitlines()
            if line.endswith(":") and not line[0].isspace()}


def tiny_params() -> dict:
    """The project's params.yaml scaled down to the tiny demo: every stage runs in seconds."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["demo"].update(TINY)
    params["extract_aus"].update(sample_per_class=2, workers=1)  # no spawned pool re-importing torch per stage
    params["motion_model"].update(steps=20, d_model=32, n_layers=1, n_heads=2, min_tracks=5, n_frames=8,
                                   check_samples=2, kb_conditions=True)  # the non-default path, end to end
    params["generator"].update(size=64, n_frames=8)
    params["ard"].update(policy_steps=30, policy_batch=8)
    params["preview"].update(identities=1, action=[5, 2.0, 2.0], frames=[1, 4, 8])
    params["rewards"].update(frames=3, max_identities=2, shard_pairs=2, workers=1)
    params["generate"].update(per_class={"surprise": 2, "disgust": 3, "fear": 2}, contact_sheet=2)
    params["recognize"].update(variants=["original", "argen", "oracle"], frames=8, image_size=32, width=4, hidden=16,
                               geometry_hidden=16, epochs=1, bootstrap=50,
                               overrides={"Landmark_Transformer": {"epochs": 3, "lr": 0.01}})
    params["evaluate"].update(splits=["train", "test"], bootstrap=20, descriptor_frames=1)
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
    if git:
        run(project, "git", "init", "-q")
        run(project, "git", "config", "user.email", "test@example.com")
        run(project, "git", "config", "user.name", "test")
    dvc(project, "init", "-q", *([] if git else ["--no-scm"]))
    shutil.copy(ROOT / ".dvcignore", project)  # over dvc init's empty one
    if git:
        run(project, "git", "add", "-A")
        run(project, "git", "commit", "-q", "-m", "project")
    return project


def copy_project(project: Path, to: Path) -> Path:
    """A copy of a git + DVC project (working tree, .git, .dvc and its cache) at ``to``; DVC re-hashes it."""
    shutil.copytree(project, to, symlinks=True)
    return to


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A git + DVC project on the tiny demo after one ``dvc repro``, committed; and that repro's output.

    Made once per test run: under xdist the first worker to need it builds it in the run's shared temporary
    folder while the others wait for the lock, then read it. Never changed after that: tests work on copies
    (:func:`reproduced`, :func:`fresh_reproduced`).
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # popen-gw0/.. is the run's folder
    folder = shared / "pristine"
    with FileLock(str(shared / "pristine.lock")):
        if not (folder / "done").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            project = make_project(folder, git=True)
            result = subprocess.run([str(BIN / "dvc"), "repro"], cwd=project, capture_output=True, text=True,
                                    env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
            (folder / "stdout").write_text(result.stdout)
            (folder / "stderr").write_text(result.stderr)
            (folder / "returncode").write_text(str(result.returncode))
            if result.returncode == 0:
                run(project, "git", "add", "-A")
                run(project, "git", "commit", "-q", "-m", "baseline")
            (folder / "done").touch()
    returncode = int((folder / "returncode").read_text())
    stdout, stderr = (folder / "stdout").read_text(), (folder / "stderr").read_text()
    assert returncode == 0, stdout + stderr  # the repro failed (on this worker or another)
    return folder / "project", subprocess.CompletedProcess([str(BIN / "dvc"), "repro"], returncode, stdout, stderr)


@pytest.fixture(scope="session")
def reproduced(pristine: tuple[Path, subprocess.CompletedProcess],
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """This worker's copy of the :func:`pristine` project, shared by the tests of the ``reproduced`` group.

    Tests that change it restore it (``git checkout -- . && dvc checkout``) unless they are the last to use it.
    """
    project, result = pristine
    return copy_project(project, tmp_path_factory.mktemp("pipeline") / "project"), result


@pytest.fixture
def fresh_reproduced(pristine: tuple[Path, subprocess.CompletedProcess],
                     tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """A copy of the :func:`pristine` project of the test's own, to change freely (in its own xdist group)."""
    project, result = pristine
    return copy_project(project, tmp_path / "reproduced"), result


def in_group(item: pytest.Item, group: str) -> None:
    """Mark ``item`` for xdist group ``group`` and give it the ``@group`` node id suffix xdist schedules by.

    pytest-xdist (3.8) adds the suffix to ``item._nodeid`` in its worker's collection hook, but pytest 9 keeps
    the node id in ``item._id``: the suffix was lost, ``--dist loadgroup`` ran as ``--dist load``, and each
    worker built its own reproduced project (and its own test_bad_input project). This hook runs after
    xdist's (``trylast``) and sets the suffix where pytest reads it, unless xdist already did.
    """
    item.add_marker(pytest.mark.xdist_group(group))
    if not getattr(item.config.option, "loadgroup", False) or "@" in item.nodeid:  # a loadgroup worker only
        return
    nodeid = f"{item.nodeid}@{group}"
    if hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        item._nodeid = nodeid


#: Where a group's tests go in the run order (others: 2): the longest chains first, as xdist hands out groups in
#: this order (:func:`pytest_configure`): the reproduced project (the pristine build, then the tests on this
#: worker's copy), test_bad_input's built project; the tests on copies of their own last (3), so that the
#: other worker runs the unit tests while the pristine project is built instead of waiting for it.
FIRST = {"reproduced": 0, "tests/test_bad_input.py": 1}
#: The longest tests on copies of their own (the ablations, minutes each) go before the other such tests (4).
LONGEST = {"test_lambda_ablation_reuses_the_reward_table"}
#: Tests that change the worker's ``reproduced`` copy without restoring it: the last of its group (0.5), so that
#: the longest of them starts as soon as the pristine project is built, on the worker that built it (xdist
#: hands a worker the next group only when it is nearly done with its own, and the unit tests come first).
LAST_ON_REPRODUCED = {"test_repro_then_nothing_to_do_then_only_what_the_prompts_feed"}


def pytest_configure(config: pytest.Config) -> None:
    """Under ``--dist loadgroup``, xdist hands out groups in the order of :func:`pytest_collection_modifyitems`
    (by default it would sort them by their number of tests, and the pipeline's few long tests came last).

    In an xdist worker, torch and BLAS run one thread, in the worker and in the stages it starts
    (``ARGEN_TORCH_THREADS``, unless set): ``make test``'s two workers each get a core instead of four threads
    contending for two.
    """
    if getattr(config.option, "dist", "no") == "loadgroup":
        config.option.loadscopereorder = False
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch
        from threadpoolctl import threadpool_limits

        os.environ.setdefault("ARGEN_TORCH_THREADS", "1")
        torch.set_num_threads(int(os.environ["ARGEN_TORCH_THREADS"]))
        threadpool_limits(int(os.environ["ARGEN_TORCH_THREADS"]))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``); see :func:`in_group`.

    Each test file runs on one worker, so its module-scoped fixtures are built once; every test that uses the
    worker's ``reproduced`` copy (directly or through a fixture) runs on one worker, in collection order. A test
    on a ``fresh_reproduced`` copy of its own is a group by itself, free to run on either worker. The tiny
    project is reproduced once per run (:func:`pristine`). Groups run in the order of :data:`FIRST` (a stable
    sort: within a group, collection order). Without xdist the groups change nothing but that order.
    """
    order = {}
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "fresh_reproduced" in names:
            group, order[item] = f"fresh-{item.name}", 3 if item.name in LONGEST else 4
        elif "reproduced" in names:
            group = "reproduced"
            if item.name in LAST_ON_REPRODUCED:
                order[item] = 0.5
        else:
            group = item.nodeid.split("::")[0]
        order.setdefault(item, FIRST.get(group, 2))
        in_group(item, group)
    items.sort(key=order.__getitem__)

"""What run_stage does for every stage: a SIGTERM (a stopped dvc repro or queue) leaves no half-written output
behind, and torch and numpy's BLAS run a fixed number of threads, whatever the machine's core count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STAGE = """
import time
from pathlib import Path
from argen.io import staged_outputs
from argen.stage import run_stage

def main(params):
    with staged_outputs() as out:
        out.path(Path("reports/x/metrics.json")).write_text("{}")
        Path("started").write_text("")
        time.sleep(60)

run_stage(main)
"""


def test_a_terminated_stage_removes_its_staged_outputs(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    process = subprocess.Popen([sys.executable, "-c", STAGE], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the stage did not start"
        time.sleep(0.1)
    assert [p.name for p in (tmp_path / "reports/x").iterdir()][0].startswith(".metrics.json.")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert list((tmp_path / "reports/x").iterdir()) == []  # no temporary folder, no half-written metrics.json



def run_in_process(tmp_path: Path, monkeypatch, setting: str | None) -> dict:
    """run_stage in this process with ``ARGEN_TORCH_THREADS`` set to ``setting``; the threads its main saw."""
    import torch
    from threadpoolctl import threadpool_info

    from argen.stage import run_stage

    (tmp_path / "params.yaml").write_text("seed: 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARGEN_TORCH_THREADS", raising=False)
    if setting is not None:
        monkeypatch.setenv("ARGEN_TORCH_THREADS", setting)
    seen, before, handler = {}, torch.get_num_threads(), signal.getsignal(signal.SIGTERM)

    def main(params) -> None:
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    try:
        run_stage(main)
    finally:
        torch.set_num_threads(before)
        signal.signal(signal.SIGTERM, handler)
    return seen


@pytest.mark.parametrize(("setting", "expected"), [(None, 2), ("1", 1), ("3", 3)])
def test_stages_run_a_fixed_number_of_threads_whatever_the_machine(tmp_path: Path, monkeypatch, setting,
                                                                    expected) -> None:
    seen = run_in_process(tmp_path, monkeypatch, setting)
    assert seen["torch"] == expected and all(n <= expected for n in seen["blas"])


def test_a_bad_thread_setting_is_a_clear_error(tmp_path: Path, monkeypatch, caplog) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_in_process(tmp_path, monkeypatch, "many")
    assert exit_.value.code == 1 and "ARGEN_TORCH_THREADS='many'" in caplog.text


LATE_TORCH = """
import sys
from argen.stage import run_stage

def main(params):
    before = "torch" in sys.modules
    import torch
    print(before, torch.get_num_threads())

run_stage(main)
"""


@pytest.mark.parametrize("setting", ["1", "3"])
def test_a_stage_that_imports_torch_late_gets_the_same_threads(tmp_path: Path, setting: str) -> None:
    """A stage whose modules do not import torch does not pay for it up front (``limit_torch_threads``), and
    torch, imported inside its main, still runs ``ARGEN_TORCH_THREADS`` threads (3 is above this machine's
    cores, where ``OMP_NUM_THREADS`` would have capped it)."""
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    env = {**os.environ, "ARGEN_TORCH_THREADS": setting}
    result = subprocess.run([sys.executable, "-c", LATE_TORCH], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", setting]


#: Stages that never use torch: importing their script must not import it (1-2 s per process).
TORCH_FREE_STAGES = ("demo_data", "decompose", "extract_aus", "identities", "au_kb", "oracle", "tracks", "report")
#: Imports each script in turn in one process (one interpreter start, not eight) and prints the scripts after
#: whose import torch was loaded; a later script is then not checked, so a test fails on the first offender.
IMPORT_EACH = """
import runpy, sys
for stage in sys.argv[1:]:
    sys.argv = [stage, 'original']
    runpy.run_path(f'stages/{stage}.py', run_name='x')
    if 'torch' in sys.modules:
        print(stage)
"""


@pytest.fixture(scope="module")
def stages_importing_torch() -> list[str]:
    """The TORCH_FREE_STAGES after whose import torch was in ``sys.modules``, imported one after the other."""
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH, *TORCH_FREE_STAGES], cwd=root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("stage", TORCH_FREE_STAGES)
def test_stages_without_a_model_do_not_import_torch(stage: str, stages_importing_torch: list[str]) -> None:
    offender = stages_importing_torch[0] if stages_importing_torch else None
    assert offender is None or TORCH_FREE_STAGES.index(stage) < TORCH_FREE_STAGES.index(offender), (
        f"importing stages/{offender}.py imports torch")

"""A stage killed with SIGTERM (a stopped dvc repro or queue) leaves no half-written output behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

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

"""``python -m argen.experiments.compare``: experiments against their baseline, from the files ``dvc exp`` reads (git refs
``refs/exps/..`` to commits holding params.yaml, dvc.lock and the metrics files), built by hand in a tmp repo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from argen.experiments.compare import main
from argen.intervals import DEGENERATE, OUTSIDE, interval_flag, with_interval

HEADER = ("model,variant,WAR,WAR_low,WAR_high,UAR,UAR_low,UAR_high,AR-SU,AR-SU_low,AR-SU_high,"
          "AR-DI,AR-DI_low,AR-DI_high,AR-FE,AR-FE_low,AR-FE_high\n")
DELTA_HEADER = "model,variant,versus,d_WAR,d_WAR_low,d_WAR_high,d_UAR,d_UAR_low,d_UAR_high,d_AR-DI,d_AR-DI_low,d_AR-DI_high\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def commit(repo: Path, lam: float, clips: str, actions: dict, uar: float, message: str) -> str:
    params = {"seed": 0, "ard": {"lambda": lam, "policy": "learned"}, "recognize": {"models": ["LT"]}}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"generate": {
        "cmd": "python stages/generate.py", "outs": [{"path": "data/generated", "md5": clips + ".dir"}]}}}))
    (repo / "reports/recognition").mkdir(parents=True, exist_ok=True)
    (repo / "reports/generate").mkdir(parents=True, exist_ok=True)
    (repo / "reports/recognition/table.csv").write_text(
        HEADER + "LT,original,0.5,0.4,0.6,0.45,0.4,0.5,0.8,0.5,0.9,0.0,0.0,0.0,0.2,0.1,0.5\n"
        f"LT,argen,0.52,0.42,0.62,{uar},0.41,0.52,0.7,0.4,0.9,0.5,0.1,0.9,0.3,0.1,0.6\n")
    (repo / "reports/recognition/deltas.csv").write_text(
        DELTA_HEADER + f"LT,argen,original,0.02,-0.05,0.09,{uar - 0.45},-0.02,0.06,0.5,0.0,0.0\n")
    (repo / "reports/generate/metrics.json").write_text(json.dumps({"clips": 24, "actions": actions}))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    """A baseline and three experiments: λ changed (other clips), w changed (same clips), and the baseline again."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@t")
    git(root, "config", "user.name", "t")
    base = commit(root, 2.0, "aaa", {"5 (2,3)": 24}, 0.47, "baseline")
    for name, lam, clips, actions, uar in (("exp-lambda", 3.0, "bbb", {"20 (2,2)": 20, "5 (2,3)": 4}, 0.50),
                                           ("exp-same", 1.0, "aaa", {"5 (2,3)": 24}, 0.46)):
        git(root, "checkout", "-q", "--detach", base)
        sha = commit(root, lam, clips, actions, uar, name)
        git(root, "update-ref", f"refs/exps/{base[:2]}/{base[2:]}/{name}", sha)
    git(root, "checkout", "-q", "main")
    monkeypatch.chdir(root)
    return root


def test_two_experiments_against_the_baseline_fit_120_columns(repo: Path, capsys) -> None:
    main([])
    out = capsys.readouterr().out
    assert all(len(line) <= 120 for line in out.splitlines()), max(out.splitlines(), key=len)
    blocks = out.split("\n== ")
    assert [b.split(" ")[0] for b in blocks[1:]] == ["HEAD", "exp-lambda", "exp-same"]
    lam, same = blocks[2], blocks[3]
    assert "params: ard.lambda: 2.0 -> 3.0\n" in lam  # the one param that differs, and nothing else
    assert "actions: 20 (2,2) x20, 5 (2,3) x4 (24 clips)" in lam and "generated: other clips" in lam
    assert "generated: the same clips as the baseline's (same actions as the baseline)" in same
    assert "ard.lambda: 2.0 -> 1.0" in same
    argen = next(l for l in lam.splitlines() if l.strip().startswith("argen "))
    assert "52.0 [42.0, 62.0]" in argen and "50.0 [41.0, 52.0]" in argen  # WAR and UAR with their intervals
    delta = next(l for l in lam.splitlines() if "argen-original" in l)
    assert "+2.0 [-5.0, +9.0]" in delta and "+5.0 [-2.0, +6.0]" in delta
    assert "+50.0 [degenerate]" in delta  # AR-DI's [0, 0] interval is flagged, not printed
    versus = next(l for l in lam.splitlines() if "argen-baseline's" in l)
    assert "+3.0" in versus.split()  # UAR 50.0 against the baseline's 47.0
    original = next(l for l in lam.splitlines() if l.strip().startswith("original "))
    assert "0.0 [degenerate]" in original


def test_named_experiments_and_revisions_and_an_unknown_name(repo: Path, capsys) -> None:
    main(["exp-same", "main"])
    out = capsys.readouterr().out
    assert "\n== exp-same " in out and "\n== main " in out and "exp-lambda" not in out
    assert "params: same as the baseline's" in out.split("\n== main ")[1]
    with pytest.raises(SystemExit):
        main(["nope"])


def test_interval_flags() -> None:
    assert interval_flag(9.14, 7.51, 8.66) == OUTSIDE and interval_flag(0, 0, 0) == DEGENERATE
    assert interval_flag(0.5, 0.4, 0.6) == "" and interval_flag(0.5, None, None) == ""
    assert with_interval(9.14, 7.51, 8.66, digits=2) == f"9.14 ({OUTSIDE})"
    assert with_interval(float("nan")) == "n/a" and with_interval(-0.02, -0.05, 0.01, 100, signed=True) == \
        "-2.0 [-5.0, +1.0]"

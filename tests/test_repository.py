"""Repository hygiene: git tracks no file over 1 MB (large outputs are DVC-cached) and no stray build artefact."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 1_000_000


def tracked_files() -> list[Path]:
    """The files git tracks in this checkout (those staged for deletion excluded); skips outside a git checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def test_no_tracked_file_is_over_1_mb() -> None:
    big = {str(p.relative_to(ROOT)): p.stat().st_size for p in tracked_files() if p.stat().st_size > MAX_BYTES}
    assert not big, f"tracked files over 1 MB (make them smaller, JPEG, or a DVC-cached output): {big}"


def test_no_wheel_or_archive_is_tracked() -> None:
    stray = [str(p.relative_to(ROOT)) for p in tracked_files() if p.suffix in {".whl", ".zip", ".tar", ".gz"}]
    assert not stray, f"build artefacts tracked by git: {stray}"

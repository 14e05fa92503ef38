"""Repository hygiene: git tracks no file over 1 MB (large outputs are DVC-cached) and no stray build artefact."""

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from argen.generators.preview import contact_sheet

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


def test_photo_figures_are_jpeg_outputs_written_small(tmp_path: Path) -> None:
    """The contact sheets and grids are JPEG in dvc.yaml, and a sheet of 9 noisy face-sized rows (PNG: 1.3 MB)
    stays well under 1 MB."""
    outs = {next(iter(o)) if isinstance(o, dict) else o for stage in
            yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values() for o in stage.get("outs", [])}
    sheets = {"reports/generator/contact_sheet.jpg", "reports/generate/contact_sheet.jpg",
              "reports/evaluate/grid.jpg", "reports/identities/grid.jpg"}
    assert sheets <= outs
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128]
    face = np.stack([x, y, (x + y) // 2], -1) * 1.5
    rows = [(f"row {k}", np.clip(face + 10 * k + rng.normal(0, 8, (16, 128, 128, 3)), 0, 255).astype(np.uint8))
            for k in range(9)]
    contact_sheet(rows, [1, 6, 11, 16], tmp_path / "sheet.jpg")
    assert (tmp_path / "sheet.jpg").read_bytes()[:2] == b"\xff\xd8"  # JPEG, not PNG under a .jpg name
    assert (tmp_path / "sheet.jpg").stat().st_size < 400_000
    assert cv2.imread(str(tmp_path / "sheet.jpg")).shape[1] == 4 * 128

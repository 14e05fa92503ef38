"""The report: sections from what exists, in-place notes for what does not, and the page in a real browser."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from argen.params import Params
from argen.report.build import build_sections, to_html, to_markdown

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
NO_BROWSER = ("headless Chromium not found: install Debian's `chromium` package (apt-get install chromium); "
              ".ci/run installs it and sets ARGEN_REQUIRE_BROWSER=1 so that CI cannot skip this test")


def write_inputs(root: Path) -> None:
    """A few stages' outputs: the dataset section complete, identities malformed, the rest missing."""
    (root / "reports/decompose").mkdir(parents=True)
    pd.DataFrame({"emotion": ["happy", "disgust"], "train": [10, 1], "test": [3, 1], "all": [13, 2]}).to_csv(
        root / "reports/decompose/class_counts.csv", index=False)
    (root / "reports/decompose/metrics.json").write_text(json.dumps({"n_clips": 15, "n_skipped": 2}))
    image = np.zeros((20, 30, 3), np.uint8)
    image[5:15, 5:25] = (0, 128, 255)
    cv2.imwrite(str(root / "reports/decompose/class_distribution.png"), image)
    (root / "reports/identities").mkdir(parents=True)
    (root / "reports/identities/metrics.json").write_text("{not json")


def build(root: Path) -> tuple[str, str]:
    figures = root / "reports/report_figures"
    figures.mkdir(parents=True, exist_ok=True)
    sections = build_sections(Params(), figures)
    text = to_markdown(sections, "test report")
    return text, to_html(text, "test report", figures)


def test_missing_and_malformed_inputs_become_notes_in_place(tmp_path: Path, monkeypatch) -> None:
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    text, page = build(tmp_path)
    for title in ("## Run", "## Dataset and its long tail (fig. 1a)", "## Identity frames (fig. 6)",
                  "## AU knowledge base (fig. 7)", "## Prompts and hallucinations (supp. G)", "## The policy (fig. 8)",
                  "## Generated clips (fig. 3)", "## Recognition (table 2)", "## Generation metrics (tables 1, 8)",
                  "## Ablations (tables 3, 4, 5)"):
        assert title in text
    assert "| disgust | 1 | 1 | 2 |" in text and "15 usable clips" in text
    assert "![Clips per emotion (the scarce classes marked)](decompose/class_distribution.png)" in text
    assert "**Unreadable input.** JSONDecodeError" in text  # identities/metrics.json, not a traceback
    assert "`reports/evaluate/metrics.json` is missing: stage `evaluate` has not run (`dvc repro evaluate`)" in text
    assert "`data/interim/au_kb.parquet` is missing: stage `au_kb` has not run (`dvc repro au_kb`)" in text
    assert "python -m argen.ablations queue" in text
    assert "FVD detector | none supplied (evaluate.i3d_path)" in text
    assert page.count("<table>") == 2 and 'src="data:image/png;base64,' in page
    assert not re.search(r'src="(?!data:)', page)  # every image embedded


def test_the_fvd_note_names_what_to_supply(tmp_path: Path, monkeypatch) -> None:
    write_inputs(tmp_path)
    (tmp_path / "reports/evaluate").mkdir(parents=True)
    reason = "no I3D weights: set evaluate.i3d_path to a local i3d_pretrained_400.pt"
    (tmp_path / "reports/evaluate/metrics.json").write_text(json.dumps({"fvd": {"computed": False, "reason": reason}}))
    (tmp_path / "reports/evaluate/tables.md").write_text("# Generation metrics\n\n## A table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    monkeypatch.chdir(tmp_path)
    text, _ = build(tmp_path)
    assert "**FVD, sFVD and tFVD not computed.** " + reason in text
    assert "#### A table" in text  # the stage's headings demoted under the section
    assert "`reports/evaluate/grid.png` is missing" in text  # a missing figure is a note, the rest stays


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert build(tmp_path) == build(tmp_path)


def browser() -> str:
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        if os.environ.get("ARGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(NO_BROWSER)
        pytest.skip(NO_BROWSER)
    return found


#: Test-only script appended to a copy of the page: after load, it records what the browser rendered.
PROBE = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const result = {images: images.length,
                  broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
                  tables: Array.from(document.querySelectorAll('table')).map(t => t.rows.length)};
  const out = document.createElement('pre');
  out.id = 'argen-test-result';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def rendered(page: Path, chromium: str, tmp_path: Path) -> dict:
    """What Chromium rendered of ``page``: image count, broken images, rows per table."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "\n</body>"))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="argen-test-result">(.*?)</pre>', dom, flags=re.S)
    assert found, f"the page did not finish loading in Chromium: {dom[-500:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, chromium: str) -> Path:
    """A full-page screenshot kept as a test artifact (``ARGEN_TEST_ARTIFACTS`` or ``test-artifacts/``)."""
    folder = Path(os.environ.get("ARGEN_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,9000", f"--screenshot={path}", page.as_uri()],
                   capture_output=True, timeout=180, check=True)
    return path


def test_the_pipelines_report_renders_in_chromium(reproduced, tmp_path: Path) -> None:
    chromium = browser()
    project, _ = reproduced
    page = project / "reports/report.html"
    assert page.is_file() and (project / "reports/report.md").is_file()
    result = rendered(page, chromium, tmp_path)
    assert result["images"] >= 8 and result["broken"] == [], result
    assert len(result["tables"]) >= 8 and min(result["tables"]) >= 2, result  # header + at least one row each
    shot = cv2.imread(str(screenshot(page, chromium)))
    assert shot is not None and shot.shape[1] == 1280 and shot.std() > 10  # a page, not a blank


def test_a_broken_image_is_caught_by_the_browser_check(tmp_path: Path) -> None:
    chromium = browser()
    page = tmp_path / "page.html"
    page.write_text('<html><body><table><tr><td>1</td></tr><tr><td>2</td></tr></table>'
                    '<img alt="broken" src="data:image/png;base64,AAAA"></body></html>')
    result = rendered(page, chromium, tmp_path)
    assert result == {"images": 1, "broken": ["broken"], "tables": [2]}

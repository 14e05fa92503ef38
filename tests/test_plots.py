"""``dvc plots show`` draws every plot of dvc.yaml offline: the vega libraries come from node_modules/ (npm, at
``make install``) through the HTML template ``.dvc/plots/index.html``, never from a CDN. Checked in headless
Chromium with every network request sent to a closed port."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_report import browser

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")

#: Appended to the page: after vega-embed has drawn, counts what each plot drew (canvas pixels, SVG marks, images).
PROBE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const drawn = Array.from(document.querySelectorAll('canvas')).map(c => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && data[i] + data[i + 1] + data[i + 2] < 600) ink++;
    return ink;
  });
  const svgs = Array.from(document.querySelectorAll('svg.marks')).map(s => s.querySelectorAll('path').length);
  const images = Array.from(document.images);
  const out = document.createElement('pre');
  out.id = 'argen-plots-result';
  out.textContent = JSON.stringify({canvases: drawn, svgs: svgs, images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(-60)),
    vega: typeof vegaEmbed !== 'undefined'});
  document.body.appendChild(out);
}, 3000));
</script>"""


def plot_counts() -> tuple[int, int]:
    """(vega plots, image plots) that dvc.yaml's top-level ``plots`` lists."""
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    images = [p for p in plots if isinstance(p, str) and p.endswith((".png", ".jpg"))]
    return len(plots) - len(images), len(images)


def test_dvc_plots_show_draws_every_plot_offline(tmp_path: Path) -> None:
    chromium = browser()
    missing = [name for name in LIBRARIES if not (ROOT / "node_modules" / name).is_file()]
    if missing:
        pytest.fail(f"node_modules/ lacks {missing}: run `make install` (npm ci installs the vega libraries)")
    out = tmp_path / "dvc_plots"
    dvc = Path(sys.executable).parent / "dvc"
    subprocess.run([str(dvc), "plots", "show", "-o", str(out)], cwd=ROOT, check=True, capture_output=True,
                   timeout=300, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    page = (out / "index.html").read_text()
    assert not re.search(r'src="https?:', page), "a script or image is loaded from the network"
    for name in LIBRARIES:
        assert f'src="../node_modules/{name}"' in page
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")  # the page's ../node_modules
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "\n</body>"))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
                          "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=20000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="argen-plots-result">(.*?)</pre>', dom, flags=re.S)
    assert found, f"the plots page did not finish loading: {dom[-400:]}"
    result = json.loads(html.unescape(found.group(1)))
    vega_plots, image_plots = plot_counts()
    assert result["vega"], "vega-embed did not load from node_modules/"
    drawn = [ink for ink in result["canvases"] if ink > 100] + [n for n in result["svgs"] if n > 0]
    assert len(drawn) == vega_plots, result  # every vega plot drew (a blank canvas has no ink)
    assert result["images"] == image_plots and result["broken"] == [], result


def test_the_template_keeps_dvcs_placeholders_and_names_no_cdn() -> None:
    template = (ROOT / ".dvc/plots/index.html").read_text()
    assert "{plot_divs}" in template and "{refresh_tag}" in template
    assert "{scripts}" not in template  # DVC would insert its CDN <script> tags there
    assert "cdn." not in template and "http" not in template
    config = (ROOT / ".dvc/config").read_text()
    assert re.search(r"\[plots\]\s+html_template = plots/index.html", config)
    assert {"node_modules/", "dvc_plots/"} <= set((ROOT / ".gitignore").read_text().split())
    assert shutil.which("npm") or (ROOT / "node_modules").is_dir()

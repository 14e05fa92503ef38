"""The report's Markdown as one self-contained HTML page: inline style, images as data URIs, no request."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from argen.report.inputs import FIGURES, REPORTS

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.86em; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; vertical-align: top; }
th { background: #eef0f3; }
tr:nth-child(even) td { background: #f8f9fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.88em; color: #555; margin-top: 0.3em; }
blockquote { border-left: 4px solid #d9822b; margin: 0.8em 0; padding: 0.3em 0.8em; background: #fff8f0; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
code { background: #f3f3f3; padding: 0 0.2em; font-size: 0.92em; }
"""

NUMBER = re.compile(r"^[-+−]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?( ?%)?(\s*(\[|±|\().*)?$")


#: Images embedded as they are up to this size; a larger PNG or JPEG is re-encoded at display size.
EMBED_AS_IS_BYTES = 40_000
#: The width larger images are scaled down to (the page's content width) and their WebP quality.
DISPLAY_WIDTH, WEBP_QUALITY = 1000, 75


def display_image(path: Path) -> tuple[str, bytes]:
    """An image's MIME type and bytes to embed: as it is when small, else a WebP at most display width.

    A stage's 1 MB contact sheet would make the page megabytes; at the page's width a WebP of it reads the same
    at about half a JPEG's size (every current browser shows WebP). OpenCV's encoder is deterministic: the same
    file gives the same bytes. The Markdown keeps linking the stage's own file.
    """
    import cv2
    import numpy as np

    suffix = path.suffix.lower()
    raw = path.read_bytes()
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
            ".gif": "image/gif"}.get(suffix, "application/octet-stream")
    if len(raw) <= EMBED_AS_IS_BYTES or suffix not in (".png", ".jpg", ".jpeg"):
        return mime, raw
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return mime, raw
    if image.shape[1] > DISPLAY_WIDTH:
        height = round(image.shape[0] * DISPLAY_WIDTH / image.shape[1])
        image = cv2.resize(image, (DISPLAY_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY])
    return ("image/webp", encoded.tobytes()) if ok and len(encoded) < len(raw) else (mime, raw)


def _embed(match: re.Match, figures: Path) -> str:
    alt, src = html.unescape(match.group("alt")), html.unescape(match.group("src"))
    link = Path(src)
    path = figures / link.name if link.parent == FIGURES.relative_to(REPORTS) else REPORTS / link
    if src.startswith(("http:", "https:", "/")) or ".." in link.parts or not path.is_file():
        return f'<p class="missing">[image not embedded: {html.escape(src)} is missing]</p>'
    mime, data = display_image(path)
    data = base64.b64encode(data).decode()
    caption = match.group("caption")
    image = f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>" if caption else f"<figure>{image}</figure>"


def to_html(markdown_text: str, title: str, figures: Path) -> str:
    """The Markdown as one self-contained HTML page: tables as <table>, images as data URIs in <figure>s.

    Args:
        figures: where the report's own figures are now (their links name ``reports/report_figures/``).
    """
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "toc"], output_format="html")
    body = re.sub(r'<p><img alt="(?P<alt>[^"]*)" src="(?P<src>[^"]+)"\s*/?></p>'
                  r'(?:\s*<p><em>Figure: (?P<caption>.*?)</em></p>)?',
                  lambda m: _embed(m, figures), body, flags=re.S)
    body = re.sub(r'<img [^>]*src="(?!data:)[^"]*"[^>]*>', '<span class="missing">[image not embedded]</span>', body)

    def numeric(match: re.Match) -> str:
        attrs, content = match.group(1), match.group(2)
        if NUMBER.match(html.unescape(content).strip()) and "class=" not in attrs:
            attrs = re.sub(r'\s*style="text-align: right;"', "", attrs) + ' class="num"'
        return f"<td{attrs}>{content}</td>"

    body = re.sub(r"<td([^>]*)>(.*?)</td>", numeric, body, flags=re.S)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")

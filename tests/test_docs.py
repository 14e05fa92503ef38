"""The README and docs/ name only things that exist, and the README stays short.

A named repository path exists when it is on disk in this checkout (tracked files), when a ``dvc.yaml``
stage writes it (an output, or a file under an output folder: ``data/``, ``models/`` and the DVC-cached
``reports/report.html`` are not in git), or when it is one of the git-ignored folders the code makes at run
time. ``<name>`` and ``*`` in a path match any one path segment; ``python -m a.b`` must name a module here;
a link's ``#anchor`` must be a heading of the page it points at.
"""

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250

#: First path segments that make a backticked word or a code-block word a repository path.
TOP = ("argen", "stages", "configs", "benchmarks", "tests", "docs", "reports", "data", "models")
ROOT_FILES = ("params.yaml", "dvc.yaml", "dvc.lock", "Makefile", "requirements.txt", "pyproject.toml", "README.md")
#: Git-ignored folders the code creates at run time (see .gitignore).
RUNTIME = ("data/cache", "test-artifacts", "dvc_plots")

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w/.$-])((?:%s)/[\w.<>*{}$-]*(?:/[\w.<>*{}$-]*)*|%s)" % ("|".join(TOP),
                                                                                "|".join(map(re.escape, ROOT_FILES))))
MODULE = re.compile(r"python -m ((?:argen|benchmarks|stages|tests)\.[\w.]+)")


def dvc_outputs() -> list[str]:
    """Every output path dvc.yaml declares, ``${...}`` templates as ``*``."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    found = []
    for stage in stages.values():
        body = stage.get("do", stage)  # foreach stages declare their outputs under do:
        for kind in ("outs", "metrics", "plots"):
            for out in body.get(kind, []):
                name = next(iter(out)) if isinstance(out, dict) else out
                found.append(re.sub(r"\$\{[^}]*\}", "*", name).rstrip("/"))
    return found


OUTPUTS = dvc_outputs()


PLACEHOLDER = re.compile(r"<[^>]*>|\$\{[^}]*\}|\{[^}]*\}")


def path_exists(path: str) -> bool:
    """On disk (placeholders as ``*``), a runtime folder, or written by a dvc.yaml stage."""
    path = path.rstrip("/.,:;")
    if not path or path in TOP:
        return True
    pattern = PLACEHOLDER.sub("*", path)
    if any(ROOT.glob(pattern)) if "*" in pattern else (ROOT / pattern).exists():
        return True
    if any(path == r or path.startswith(r + "/") for r in RUNTIME):
        return True
    example = PLACEHOLDER.sub("q-q", path)  # a placeholder stands for a name like a stage's ${item}-${key}
    return any(fnmatch.fnmatch(example, out) or fnmatch.fnmatch(example, out + "/*") for out in OUTPUTS)


def named_paths(text: str) -> list[str]:
    """Repository paths named in backticks and in fenced code blocks (``text`` blocks, the layout map, aside:
    its paths are relative to their parent line and checked by ``test_the_layout_map_matches_the_code``)."""
    spans = INLINE.findall(FENCE.sub("", text)) + [b for b in FENCE.findall(text) if not b.startswith("```text")]
    return sorted({m for span in spans for m in PATH.findall(span)})


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+\s+(.*)$", FENCE.sub("", page.read_text()), re.M)}


def layout_map() -> list[str]:
    """The paths of the README's layout map: the fenced block under "## Layout", two spaces of indent per
    folder level, each line a name column (``a.py, b.py`` or ``data/ models/``) then a description; a line
    indented deeper than one level below its folder continues the description above it."""
    section = README.read_text().split("\n## Layout\n", 1)[1]
    lines = FENCE.search(section).group(0).splitlines()[1:-1]
    paths, parents = [], []
    for line in lines:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        if depth > len(parents):  # a description carried on to the next line
            continue
        names = [n for n in re.split(r"[,\s]+", re.split(r"\s{2,}", line.strip())[0]) if n]
        parents = parents[:depth]
        paths += ["/".join(parents + [n.rstrip("/")]) for n in names]
        if len(names) == 1 and names[0].endswith("/"):
            parents.append(names[0].rstrip("/"))
    return paths


def test_the_layout_map_matches_the_code() -> None:
    shown = layout_map()
    missing = [p for p in shown if not path_exists(p)]
    assert not missing, f"the layout map names what does not exist: {missing}"
    package = ROOT / "argen"
    code = [f"argen/{p.parent.name}" for p in package.glob("*/__init__.py")] + \
        [f"argen/{p.name}" for p in package.glob("*.py") if p.name != "__init__.py"]
    unmapped = sorted(set(code) - set(shown))
    assert not unmapped, f"argen modules and packages missing from the layout map: {unmapped}"
    top = {"argen", "stages", "configs", "docs", "tests", "benchmarks", "data", "models", "reports"}
    assert top <= set(shown)


def test_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move reference material to docs/"


def test_docs_pages_exist_and_the_readme_links_each() -> None:
    pages = [p for p in PAGES if p != README]
    assert len(pages) >= 5, pages
    linked = {Path(link.split("#")[0]).name for link in LINK.findall(README.read_text())}
    unlinked = [p.name for p in pages if p.name not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_named_path_exists(page: Path) -> None:
    missing = [p for p in named_paths(page.read_text()) if not path_exists(p)]
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves(page: Path) -> None:
    broken = []
    for link in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://|mailto:", link):
            continue
        target, _, anchor = link.partition("#")
        file = (page.parent / target).resolve() if target else page
        rel = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)
        if not path_exists(rel):
            broken.append(link)
        elif anchor and file.suffix == ".md" and file.exists() and anchor not in anchors(file):
            broken.append(link)
    assert not broken, f"{page.name} has broken links: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_python_module_named_exists(page: Path) -> None:
    missing = []
    for module in MODULE.findall(page.read_text()):
        base = ROOT / module.replace(".", "/")
        if not (base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()):
            missing.append(module)
    assert not missing, f"{page.name} runs modules that do not exist: {missing}"


PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
KEY = re.compile(r"(?<![\w./-])(%s)\.(\w+\*?)(?![\w/])" % "|".join(map(re.escape, PARAMS)))
FILE_SUFFIXES = {"py", "md", "yaml", "json", "csv", "parquet", "png", "jpg", "html", "txt", "safetensors"}


def unknown_params_keys(text: str) -> list[str]:
    """``section.key`` names (``-S`` overrides included) that params.yaml does not have; ``key*`` is a prefix."""
    spans = INLINE.findall(FENCE.sub("", text)) + FENCE.findall(text)
    unknown = set()
    for section, key in (m for span in spans for m in KEY.findall(span)):
        if key in FILE_SUFFIXES or not isinstance(PARAMS[section], dict):
            continue
        known = PARAMS[section]
        if not (key in known or key.endswith("*") and any(k.startswith(key[:-1]) for k in known)):
            unknown.add(f"{section}.{key}")
    return sorted(unknown)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_params_key_named_exists(page: Path) -> None:
    unknown = unknown_params_keys(page.read_text())
    assert not unknown, f"{page.name} names params.yaml keys that do not exist: {unknown}"


def test_the_checker_finds_a_wrong_path() -> None:
    """The checks themselves: a planted wrong path, placeholder and output are told apart."""
    text = "See `argen/no_such_module.py`, `reports/recognize/<run>/metrics.json` and `data/interim/aus.parquet`."
    names = named_paths(text)
    assert names == ["argen/no_such_module.py", "data/interim/aus.parquet", "reports/recognize/<run>/metrics.json"]
    assert [path_exists(n) for n in names] == [False, True, True]
    assert not path_exists("data/interim/no_such_table.parquet")
    assert unknown_params_keys("`dvc exp run -S ard.lambda=1 -S ard.no_such_key=2`, `evaluate.lpips_*`, "
                               "`decompose.py`") == ["ard.no_such_key"]

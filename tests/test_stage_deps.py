"""Every stage in dvc.yaml depends on all the package code its script runs.

A module a stage imports but does not list under ``deps`` can change without DVC noticing: ``dvc repro``
then keeps an output the current code would not produce. This walks each stage script's imports (those
inside functions too) through the package and asserts every module file, and every package data file a
module names (``"data/facs.yaml"``), is covered by a ``deps`` entry.

Not followed: the package's ``__init__`` (version string), ``errors.py`` (exception classes), ``stage.py``
(logging and the runner) and ``params.py`` (DVC tracks the parameter values each stage reads through its
``params`` list); and package ``__init__`` files holding only a docstring.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOT_FOLLOWED = {"argen/__init__.py", "argen/errors.py", "argen/stage.py", "argen/params.py"}


def module_file(dotted: str) -> Path | None:
    """The file of a module ``argen.x.y`` (package ``__init__`` or module), or None (a name in a module)."""
    path = ROOT / Path(*dotted.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.cache  # each file is parsed once per run, not once per stage, test and question
def syntax_tree(path: Path) -> ast.Module:
    """The parsed file (read-only: shared by every caller)."""
    return ast.parse(path.read_text(), str(path))


@functools.cache
def imported_modules(path: Path) -> frozenset[str]:
    """Dotted names of the ``argen`` modules (and names from them) one file imports anywhere in its body."""
    tree = syntax_tree(path)
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(parts + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(name for name in names if name.split(".")[0] == "argen")


@functools.cache
def data_files(path: Path) -> frozenset[str]:
    """Package data files (non-Python files under ``argen/``) a module names in a string literal."""
    package = ROOT / "argen"
    return frozenset(f"argen/{node.value}" for node in ast.walk(syntax_tree(path))
                     if isinstance(node, ast.Constant) and isinstance(node.value, str) and "/" in node.value
                     and not node.value.endswith(".py") and len(node.value) < 200 and (package / node.value).is_file())


def docstring_only(path: Path) -> bool:
    body = syntax_tree(path).body
    return all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) or
               isinstance(s, ast.ImportFrom) and s.module == "__future__" for s in body)


@functools.cache  # each file is parsed once per run, not once per stage and test
def code_closure(script: Path) -> frozenset[str]:
    """Repository-relative paths of the package files ``script`` runs (see the module docstring)."""
    todo, seen, data = [script], set(), set()
    while todo:
        path = todo.pop()
        relative = path.relative_to(ROOT).as_posix()
        if relative in seen:
            continue
        seen.add(relative)
        data |= data_files(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for depth in range(2, len(parts) + 1):  # argen.a.b also runs argen/a/__init__.py
                found = module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return frozenset(data | {p for p in seen if p.startswith("argen/") and p not in NOT_FOLLOWED
                             and not (p.endswith("__init__.py") and docstring_only(ROOT / p))})


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def stages() -> dict[str, dict]:
    """dvc.yaml's stages with a ``foreach`` or ``matrix`` template reduced to its body."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in raw.items()}


@pytest.mark.parametrize("name", sorted(stages()))
def test_the_stage_depends_on_the_code_it_runs(name: str) -> None:
    stage = stages()[name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    scripts = [w for w in stage["cmd"].split() if w.startswith("stages/") and w.endswith(".py")]
    assert scripts, f"{name}: no stage script in {stage['cmd']!r}"
    for script in scripts:
        assert script in deps, f"{name}: {script} is not in its deps"
        missing = sorted(p for p in code_closure(ROOT / script) if not covered(p, deps))
        assert not missing, f"dvc.yaml stage {name} runs code it does not list under deps: {missing}"


@pytest.mark.parametrize("name", sorted(stages()))
def test_the_stage_lists_no_code_it_does_not_run(name: str) -> None:
    """An over-broad code dep re-runs the stage (and everything after it) for nothing when that code changes."""
    stage = stages()[name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    scripts = [w for w in stage["cmd"].split() if w.startswith("stages/") and w.endswith(".py")]
    runs = set().union(*(code_closure(ROOT / script) for script in scripts))
    unused = [d for d in deps if d.startswith("argen/") and not any(covered(p, [d]) for p in runs)]
    assert not unused, f"dvc.yaml stage {name} lists code it never runs: {unused}"


def test_the_walk_finds_lazy_imports_and_package_data() -> None:
    """The walk itself: an import inside a function and a data file read by name are found."""
    imports = imported_modules(ROOT / "argen/policy/augment.py")
    assert "argen.policy.reinforce" in imports  # imported inside policy_actions
    assert code_closure(ROOT / "stages/report.py") >= {"argen/report/build.py", "argen/markdown.py"}
    assert "argen/data/facs.yaml" in code_closure(ROOT / "stages/au_kb.py")  # read through importlib.resources

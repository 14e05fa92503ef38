"""The package layout follows the paper's steps, and imports only run downwards.

Layers, lowest first: the shared modules (``argen/*.py``, ``argen.stats``, ``argen.actions`` and the data
steps' packages), then ``generators`` (step 3), ``rewards`` (step 4), ``policy`` (step 5); the experiment
tools, the stage scripts and the benchmarks sit on top and nothing in the package imports them.
Every import counts, those inside functions too (the walk of ``tests/test_stage_deps.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "argen"

#: Paper-step packages, lowest first: a package may import those before it, never those after it.
STEPS = ("argen.generators", "argen.rewards", "argen.policy")
#: Packages nothing else in argen may import.
TOP = ("argen.experiments",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Top-level module names (``argen.x.y``, ``stages``, ``benchmarks``) one file imports anywhere."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an imported name lives in (``argen.x.y.func`` -> ``argen.x.y``), or None outside argen."""
    parts = name.split(".")
    for depth in range(len(parts), 0, -1):
        if ".".join(parts[:depth]) in known:
            return ".".join(parts[:depth])
    return None


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m in (resolve(i, known) for i in imports(path)) if m and m != name}
            for name, path in known.items()}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_package_module_imports_a_stage_benchmark_or_experiment_tool() -> None:
    bad = []
    for name, path in modules().items():
        for imported in imports(path):
            top = imported.split(".")[0]
            if top in ("stages", "benchmarks") or (any(within(imported, t) for t in TOP)
                                                   and not any(within(name, t) for t in TOP)):
                bad.append(f"{name} imports {imported}")
    assert not bad, bad


@pytest.mark.parametrize("lower", range(len(STEPS)))
def test_a_paper_step_never_imports_a_later_one(lower: int) -> None:
    bad = [f"{name} imports {target}" for name, targets in graph().items() if within(name, STEPS[lower])
           for target in targets if any(within(target, later) for later in STEPS[lower + 1:])]
    assert not bad, bad


def test_the_generators_borrow_nothing_from_the_demo() -> None:
    """The renderer's mean face is the generators' own: the demo dataset may change without moving them."""
    bad = [f"{name} imports {target}" for name, targets in graph().items() if within(name, "argen.generators")
           for target in targets if within(target, "argen.demo")]
    assert not bad, bad


def test_shared_modules_import_no_paper_step() -> None:
    """stats, actions, params, io, face ... and the data steps' packages sit below the generators."""
    steps = (*STEPS, *TOP)
    bad = [f"{name} imports {target}" for name, targets in graph().items()
           if not any(within(name, s) for s in steps) and not within(name, "argen.report")
           and not within(name, "argen.evaluate")
           for target in targets if any(within(target, s) for s in steps)]
    assert not bad, bad


def test_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("package", [*STEPS, *TOP])
def test_each_paper_step_package_says_what_it_is(package: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / Path(*package.split(".")) / "__init__.py").read_text()))
    assert doc and ("step" in doc.lower() or "experiment" in doc.lower()), f"{package}/__init__.py: no docstring"


@pytest.mark.parametrize("script", sorted((ROOT / "stages").glob("*.py")), ids=lambda p: p.name)
def test_stage_scripts_are_thin(script: Path) -> None:
    """A stage wires params, paths and one package call; its logic lives (and is tested) in the package."""
    lines = len(script.read_text().splitlines())
    assert lines <= 80, f"{script.name}: {lines} lines (at most 80)"

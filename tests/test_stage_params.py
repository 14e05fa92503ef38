"""dvc.yaml's params lists against what the stages read, and what a change to a key re-runs.

``test_stage_deps.py`` ties each stage's code deps to the imports it runs; here each stage's ``params`` list
is tied to the params its code reads: every ``params.<section>[.<key>]`` its script and the package modules
it runs access (a section handed on whole, ``cfg = params.rewards`` or ``f(params.generator)``, counts as
reading all of it; ``provenance(..., "<section>")`` records a whole section). A key read but not declared
would change without DVC re-running the stage; a declared key nobody reads re-runs it for nothing.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path, PurePosixPath

import pytest

from argen.params import Params
from tests.test_stage_deps import ROOT, code_closure, stages, syntax_tree

SECTIONS = set(Params.model_fields)


@functools.cache  # each file is parsed once per run
def reads(path: Path) -> frozenset[str]:
    """``section`` or ``section.key`` names one file reads from a variable called ``params``."""
    tree = syntax_tree(path)
    found: set[str] = set()
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "params" \
                and node.attr in SECTIONS | {"seed"}:
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.value is node:
                key = "lambda" if parent.attr == "lambda_" else parent.attr
                found.add(f"{node.attr}.{key}" if not callable(getattr(Params, node.attr, None)) else node.attr)
            else:
                found.add(node.attr)  # the whole section handed on (or the top-level seed)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "provenance":
            found.update(a.value for a in node.args[2:] if isinstance(a, ast.Constant) and a.value in SECTIONS)
    return frozenset(found)


def stage_reads(name: str) -> set[str]:
    stage = stages()[name]
    scripts = [w for w in stage["cmd"].split() if w.startswith("stages/") and w.endswith(".py")]
    files = {ROOT / s for s in scripts} | {ROOT / p for s in scripts for p in code_closure(ROOT / s)
                                          if p.endswith(".py")}
    return set().union(*(reads(f) for f in files))


def declared(name: str) -> set[str]:
    return set(stages()[name].get("params", []))


def covers(declared_keys: set[str], key: str) -> bool:
    return key in declared_keys or key.split(".")[0] in declared_keys


#: Reads a stage may leave undeclared, with the reason.
UNDECLARED_ON_PURPOSE: dict[str, set[str]] = {
    # tracks records the whole recognize section in its Parquet footer (provenance), but only
    # recognize.image_size and recognize.face_crop change its rows; declaring the section would re-run every
    # track on any training knob. (The footer then records values that may be stale: left as it is, so that
    # the committed outputs stay byte-identical.)
    "tracks": {"recognize"},
}


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_param_a_stage_reads_is_declared(name: str) -> None:
    undeclared = sorted(k for k in stage_reads(name) if not covers(declared(name), k)
                        and k not in UNDECLARED_ON_PURPOSE.get(name, set()))
    assert not undeclared, f"dvc.yaml stage {name} reads params it does not declare: {undeclared}"


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_declared_param_is_read(name: str) -> None:
    read = stage_reads(name)
    unread = sorted(k for k in declared(name) if k not in read and k.split(".")[0] not in read
                    and not any(r.startswith(k + ".") for r in read))
    assert not unread, f"dvc.yaml stage {name} declares params its code never reads: {unread}"


def downstream(changed: set[str]) -> set[str]:
    """Every stage a change to the ``changed`` params re-runs: those declaring them, and every stage after
    them through dvc.yaml's outputs and dependencies (foreach/matrix expanded by DVC itself)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        graph = list(repo.index.stages)
        params = {s.addressing: {k for d in s.deps if d.__class__.__name__ == "ParamsDependency" for k in d.params}
                  for s in graph}
        outs = {s.addressing: [PurePosixPath(o.def_path) for o in s.outs] for s in graph}
        deps = {s.addressing: [PurePosixPath(d.def_path) for d in s.deps
                               if d.__class__.__name__ != "ParamsDependency"] for s in graph}
    hit = {name for name, keys in params.items()
           if any(k == c or c.startswith(k + ".") or k.startswith(c + ".") for k in keys for c in changed)}
    related = lambda a, b: a == b or a in b.parents or b in a.parents  # noqa: E731
    grew = True
    while grew:
        after = {name for name in deps if name not in hit
                 and any(related(d, o) for d in deps[name] for h in hit for o in outs[h])}
        grew = bool(after)
        hit |= after
    return hit


def test_lambda_reruns_the_policy_and_what_uses_the_generated_set_and_nothing_else() -> None:
    assert downstream({"ard.lambda"}) == {
        "policy", "generate", "oracle", "tracks@argen", "tracks@oracle",
        "recognize@Landmark_Transformer-argen", "recognize@Res18_LSTM-argen", "recognition", "evaluate", "report",
    }


def test_a_generator_key_reruns_the_preview_and_the_reward_table_but_not_the_motion_model() -> None:
    changed = downstream({"generator.size"})
    assert {"preview", "rewards", "policy", "generate"} <= changed
    assert not changed & {"demo", "decompose", "extract_aus", "identities", "au_kb", "prompts", "motion_model",
                          "tracks@original", "recognize@Res18_LSTM-original"}

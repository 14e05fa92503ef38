"""Compare DVC experiments with their baseline in one table that fits 120 columns.

Usage::

    python -m argen.experiments.compare                  # every experiment of the current commit (HEAD) against HEAD
    python -m argen.experiments.compare abl-wo_ard exp-1 # these experiments (names or git revisions)
    python -m argen.experiments.compare --baseline main --model Landmark_Transformer

Reads, from each commit (the files ``dvc exp show`` and ``dvc metrics diff`` read, via ``git show``):
``params.yaml``, ``reports/recognition/table.csv`` (WAR, UAR and the scarce recalls with their 95 %
intervals), ``reports/recognition/deltas.csv`` (ARGen − original, paired over the same test clips, with
its interval), ``reports/generate/metrics.json`` (the policy's actions) and ``dvc.lock`` (the hash of
``data/generated``: whether the experiment generated other clips than the baseline). Per experiment it
prints the params that differ from the baseline's, the actions, whether the clips differ, and per model the
ARGen row, its difference against original, and its difference against the baseline's ARGen row (a point:
two unpaired runs give no interval here). Intervals that are degenerate or miss their point are flagged
(:mod:`argen.intervals`).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pandas as pd
import yaml

from argen.errors import UserError
from argen.intervals import with_interval

log = logging.getLogger("argen.experiments.compare")

#: The figures compared (columns of the recognition table); the recalls are the paper's scarce classes.
FIGURES = ("WAR", "UAR", "AR-SU", "AR-DI", "AR-FE")
TABLE, DELTAS = "reports/recognition/table.csv", "reports/recognition/deltas.csv"
GENERATE, LOCK, PARAMS = "reports/generate/metrics.json", "dvc.lock", "params.yaml"
WIDTH = 120
LABEL = 21  # width of the row-label column; five figure columns of 19 fill the rest


def git(*args: str, check: bool = True) -> str | None:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode:
        if check:
            raise UserError(f"git {' '.join(args)}: {result.stderr.strip()}")
        return None
    return result.stdout


def experiment_refs() -> dict[str, tuple[str, str]]:
    """Experiment name -> (commit, baseline commit) of every DVC experiment ref (``refs/exps/xx/yyyy/<name>``)."""
    out = {}
    for line in (git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps") or "").splitlines():
        ref, commit = line.split()
        parts = ref.split("/")
        if len(parts) == 5:  # refs, exps, sha[:2], sha[2:], name
            out[parts[4]] = (commit, parts[2] + parts[3])
    return out


def resolve(names: list[str], baseline: str) -> dict[str, str]:
    """Name -> commit of each requested experiment; none requested: the experiments of ``baseline``."""
    refs = experiment_refs()
    if not names:
        found = {name: commit for name, (commit, base) in sorted(refs.items()) if base == baseline}
        if not found:
            raise UserError(f"no experiment has {baseline[:7]} as its baseline (`dvc exp show` lists them); "
                            "name experiments or revisions: python -m argen.experiments.compare EXP [EXP ...]")
        return found
    out = {}
    for name in names:
        if name in refs:
            out[name] = refs[name][0]
            continue
        commit = git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", check=False)
        if not commit:
            raise UserError(f"{name!r} is neither an experiment ({', '.join(sorted(refs)) or 'none here'}) "
                            "nor a git revision")
        out[name] = commit.strip()
    return out


@dataclass
class Run:
    """What one commit holds: params, recognition table and deltas, actions, generated-clips hash."""

    name: str
    commit: str
    params: dict
    table: pd.DataFrame | None
    deltas: pd.DataFrame | None
    actions: dict | None
    clips_hash: str | None


def _csv(text: str | None) -> pd.DataFrame | None:
    return pd.read_csv(io.StringIO(text)) if text else None


def clips_hash(lock_text: str | None) -> str | None:
    """The ``data/generated`` hash in ``dvc.lock``'s ``generate`` stage (None when it has none)."""
    try:
        stages = (yaml.safe_load(lock_text or "") or {}).get("stages") or {}
    except yaml.YAMLError:
        return None
    outs = (stages.get("generate") or {}).get("outs") or []
    return next((o.get("md5") for o in outs if isinstance(o, dict) and o.get("path") == "data/generated"), None)


def read_run(name: str, commit: str) -> Run:
    def show(path: str) -> str | None:
        return git("show", f"{commit}:{path}", check=False)

    params = yaml.safe_load(show(PARAMS) or "") or {}
    generate = json.loads(show(GENERATE) or "null")
    return Run(name, commit, params, _csv(show(TABLE)), _csv(show(DELTAS)),
               (generate or {}).get("actions"), clips_hash(show(LOCK)))


def flatten(params: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def short(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def params_changed(base: dict, params: dict) -> list[str]:
    """``key: base -> value`` for every param that differs (added and removed keys too)."""
    a, b = flatten(base), flatten(params)
    return [f"{k}: {short(a.get(k, '(none)'))} -> {short(b.get(k, '(none)'))}"
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def actions_text(actions: dict | None) -> str:
    """``T (a,b) x count`` per action, most frequent first."""
    if not actions:
        return "n/a (no reports/generate/metrics.json)"
    total = sum(actions.values())
    parts = [f"{k} x{v}" for k, v in sorted(actions.items(), key=lambda kv: (-kv[1], kv[0]))]
    return f"{', '.join(parts)} ({total} clips)"


def _row(frame: pd.DataFrame | None, **keys) -> pd.Series | None:
    if frame is None:
        return None
    mask = pd.Series(True, index=frame.index)
    for key, value in keys.items():
        if key not in frame:
            return None
        mask &= frame[key].astype(str) == value
    return frame[mask].iloc[0] if mask.any() else None


def figure_cells(row: pd.Series | None, prefix: str = "", signed: bool = False) -> list[str]:
    if row is None:
        return ["n/a"] * len(FIGURES)
    return [with_interval(row.get(f"{prefix}{f}"), row.get(f"{prefix}{f}_low"), row.get(f"{prefix}{f}_high"),
                          scale=100, signed=signed, short=True) for f in FIGURES]


def line(label: str, cells: list[str]) -> str:
    width = (WIDTH - LABEL) // len(FIGURES)
    return f"{label[:LABEL]:<{LABEL}}" + "".join(f"{c[:width - 1]:>{width - 1}} " for c in cells).rstrip()


def models(run: Run) -> list[str]:
    return list(dict.fromkeys(run.table["model"].astype(str))) if run.table is not None else []


def run_block(run: Run, base: Run | None, only: str | None) -> list[str]:
    """The lines of one run: its params diff, actions, clips, and per model ARGen, Δ original, Δ baseline."""
    lines = [f"== {run.name} ({run.commit[:7]})" + (" -- the baseline" if base is None else "")]
    wrap = textwrap.TextWrapper(width=WIDTH, subsequent_indent="     ")
    if base is not None:
        changed = params_changed(base.params, run.params)
        lines += wrap.wrap("   params: " + ("; ".join(changed) if changed else "same as the baseline's"))
    lines += wrap.wrap("   actions: " + actions_text(run.actions))
    if base is not None:
        if run.clips_hash is None or base.clips_hash is None:
            clips = "n/a (no generate entry in dvc.lock)"
        elif run.clips_hash == base.clips_hash:
            same = " (same actions as the baseline)" if run.actions == base.actions else ""
            clips = f"the same clips as the baseline's{same}; its ARGen rows differ only by training noise"
        else:
            clips = "other clips than the baseline's"
        lines += wrap.wrap("   generated: " + clips)
    if run.table is None:
        lines.append(f"   no {TABLE} in this commit: recognition has not run")
        return lines
    lines.append(line("   model / row", [f"{f} %" for f in FIGURES]))
    for model in models(run):
        if only and model != only:
            continue
        lines.append(f"   {model}")
        for variant in dict.fromkeys(run.table[run.table.model.astype(str) == model].variant.astype(str)):
            lines.append(line(f"     {variant}", figure_cells(_row(run.table, model=model, variant=variant))))
        for variant in ("argen", "oracle"):
            delta = _row(run.deltas, model=model, variant=variant, versus="original")
            if delta is not None:
                lines.append(line(f"     {variant}-original", figure_cells(delta, "d_", signed=True)))
        mine, theirs = _row(run.table, model=model, variant="argen"), \
            _row(base.table if base else None, model=model, variant="argen")
        if base is not None and mine is not None and theirs is not None:
            cells = [f"{100 * (mine[f] - theirs[f]):+.1f}" if f in mine and f in theirs else "n/a" for f in FIGURES]
            lines.append(line("     argen-baseline's", cells))
    return lines


def comparison(runs: list[Run], base: Run, only: str | None = None) -> str:
    """The whole comparison: the baseline's block, then each experiment's."""
    lines = [f"Experiments against the baseline {base.name} ({base.commit[:7]}); figures in % with 95 % intervals "
             "(deltas: paired bootstrap", "over the same test clips); argen-baseline's: difference of the ARGen rows "
             "(a point, no interval)."]
    for run in [base, *runs]:
        lines += [""] + run_block(run, None if run is base else base, only)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiments", nargs="*", help="experiment names or git revisions (default: the "
                                                        "baseline's experiments)")
    parser.add_argument("--baseline", default="HEAD", help="the revision compared against (default HEAD)")
    parser.add_argument("--model", help="only this recognition model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        baseline = (git("rev-parse", "--verify", f"{args.baseline}^{{commit}}") or "").strip()
        base = read_run(args.baseline, baseline)
        runs = [read_run(name, commit) for name, commit in resolve(args.experiments, baseline).items()]
        print(comparison(runs, base, args.model), end="")
    except UserError as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()

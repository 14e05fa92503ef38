"""The recognition evidence run: every row of the paper's table 3, five folds, pooled into one table.

``configs/evidence.yaml`` holds the configuration: a demo large enough for >= 30 test clips of every scarce
class pooled over five folds, three seeds, ``set`` (shared overrides), ``base`` (the first experiment of a
fold: ARGen with the default reward, plus the recognition variants that need no other generated set:
original, oracle, oversample) and ``variants`` (table 3's rows that need another generated set: the
paper-only reward, w/o ASI, w/o ARD). Usage::

    python -m argen.experiments.evidence plan       # per fold: the experiments, the stages each runs, the estimate
    python -m argen.experiments.evidence commands   # the dvc exp run commands, in order
    python -m argen.experiments.evidence run        # run them, one after the other, in this workspace
    python -m argen.experiments.evidence table      # reports/evidence/table.md, table.csv, deltas.csv, judge.csv

**What runs once per fold and what per variant.** The experiments of a fold run one after the other in the
*workspace* (``dvc exp run`` without ``--queue``), so DVC re-runs only the stages whose parameters or
inputs changed since the previous experiment: the fold's base experiment runs decompose, extraction,
identities, prompts, the motion model, the reward table, the policy, the generated set, its tracks and the
recognisers of every base variant; a variant experiment re-runs only what its keys reach (the paper-only
reward: policy onwards; w/o ARD: generate onwards; w/o ASI: prompts, reward table, policy onwards), and
its ``argen`` recogniser. ``recognize.variants`` is the same in every experiment, so the ``recognize``
parameters never change within a fold and the original and oversample recognisers run once. The demo
itself (``demo.n_clips``) runs once for the whole evidence run. (``dvc queue`` would run each experiment in
a fresh copy from the committed lock, every stage again: the cost this layout removes.) Every experiment
sets every key any variant changes (to the base value unless it is its own), so no setting leaks from one
experiment into the next. The experiments target ``target`` (``recognition``): the generation metrics
(``evaluate``) and the report are not part of the evidence.

:func:`plan` predicts which stages each experiment runs from ``dvc.yaml`` (each stage's params and
deps/outs, foreach and matrix expanded) without running anything; :func:`estimate_seconds` adds measured
per-stage seconds over the plan. ``stable_outputs`` names output files that stay byte-identical in a
fold's variant experiments although the stage writing them re-runs (``data/generated/counts.json``: every
variant generates the same counts per emotion): a stage that reads only such files of a re-run stage (the
oracle) does not re-run on its account.

``table`` finds the finished experiments by name among the repository's experiment refs, reads each one's
predictions from its commit (a base experiment's every variant; a variant experiment's ``argen`` run,
renamed to the variant), and pools them with :mod:`argen.recognize.summary`: WAR, UAR and recalls over all
folds' test clips (every clip of the dataset once), mean ± sd over the 15 runs, paired differences over
(fold, seed) against original and ARGen against oversampling, ARGen's share of the oracle's gain, and
the judge's shares.

``table`` refuses to overwrite a committed table that pooled experiments this workspace cannot see (the
pooled figures cannot be merged back fold by fold); ``--fresh`` overrides.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from argen.emotions import EMOTIONS
from argen.errors import UserError
from argen.experiments.queue import print_or_queue, yaml_value
from argen.io import staged_outputs
from argen.markdown import markdown_table
from argen.params import parse_params_yaml, validate_params
from argen.paths import report_dir
from argen.recognize.judge import judge_markdown, most_confused
from argen.recognize.summary import delta_table, markdown, recognition_tables, stage_tables
from argen.stats import wilson_interval

CONFIG = Path("configs/evidence.yaml")
OUT = report_dir("evidence")
DEFAULT_TARGET = "recognition"

log = logging.getLogger("argen.experiments.evidence")


def read_config(path: Path = CONFIG) -> dict:
    """The evidence configuration: ``name``, ``folds``, ``set``; optional ``base``, ``variants``, ``target``.

    Raises:
        UserError: a key is missing, or a variant changes a key ``base`` does not set (its value in the next
            experiment would be left to chance).
    """
    if not path.is_file():
        raise UserError(f"{path}: not found (run from the project root)")
    config = yaml.safe_load(path.read_text())
    for key in ("name", "folds", "set"):
        if key not in (config or {}):
            raise UserError(f"{path}: missing key {key!r}")
    config.setdefault("base", {})
    config.setdefault("variants", {})
    config.setdefault("target", DEFAULT_TARGET)
    config.setdefault("stable_outputs", [])
    for variant, keys in config["variants"].items():
        unset = sorted(set(keys) - set(config["base"]))
        if unset:
            raise UserError(f"{path}: variant {variant!r} sets {unset}, which base does not: give base their "
                            "ARGen value so that the experiment after it resets them")
    return config


def experiments(config: dict) -> list[dict]:
    """The experiments in run order: per fold the base, then each variant.

    Returns:
        dicts with ``name`` (``<name>-fold<k>`` or ``<name>-fold<k>-<variant>``), ``fold``, ``variant``
        (``None`` for the base) and ``overrides`` (every ``-S`` key and value, in order).
    """
    out = []
    for fold in config["folds"]:
        shared = {"data.fold": fold, **config["set"], **config["base"]}
        out.append({"name": f"{config['name']}-fold{fold}", "fold": fold, "variant": None, "overrides": shared})
        for variant, keys in config["variants"].items():
            out.append({"name": f"{config['name']}-fold{fold}-{variant}", "fold": fold, "variant": variant,
                        "overrides": {**shared, **keys}})
    return out


def run_commands(config: dict) -> list[list[str]]:
    """One ``dvc exp run`` per experiment (workspace, in order), with its overrides and the target stage."""
    commands = []
    for experiment in experiments(config):
        command = ["dvc", "exp", "run", "-n", experiment["name"]]
        for key, value in experiment["overrides"].items():
            command += ["-S", f"{key}={yaml_value(value)}"]
        commands.append(command + [config["target"]])
    return commands


# ------------------------------------------------------------------------------------------------ planning

def _lookup(params: dict, key: str) -> object:
    value = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _with_overrides(params: dict, overrides: dict) -> dict:
    """A deep copy of ``params`` with dotted ``overrides`` applied."""
    import copy

    out = copy.deepcopy(params)
    for key, value in overrides.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _interpolate(text: str, scope: dict) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(_lookup(scope, m.group(1).strip())), text)


def _paths(entries: list) -> list[str]:
    """Paths of a deps/outs/metrics list (entries are strings or one-key dicts)."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def _param_keys(entries: list) -> list[str]:
    """Param keys of a stage's ``params`` list (a key, or ``{file: [keys]}``)."""
    keys = []
    for entry in entries or []:
        if isinstance(entry, str):
            keys.append(entry)
        elif isinstance(entry, dict):
            keys.extend(k for values in entry.values() for k in values or [])
    return keys


def expand_stages(pipeline: dict, params: dict) -> dict[str, dict]:
    """``dvc.yaml``'s stages with foreach and matrix expanded as DVC names them (``name@key``,
    ``name@a-b``): for each its param keys, dependency paths and output paths (metrics included)."""
    stages = {}
    for name, stage in pipeline["stages"].items():
        if "foreach" in stage:
            items = stage["foreach"]
            cells = [(f"{name}@{key}", {"key": key, "item": item}) for key, item in items.items()]
            body = stage["do"]
        elif "matrix" in stage:
            axes = {axis: (_lookup(params, values[2:-1]) if isinstance(values, str) else values)
                    for axis, values in stage["matrix"].items()}
            cells = [(f"{name}@{'-'.join(map(str, combo))}", {"item": dict(zip(axes, combo))})
                     for combo in product(*axes.values())]
            body = stage
        else:
            cells, body = [(name, {})], stage
        for cell, scope in cells:
            scope = {**params, **scope}
            stages[cell] = {
                "params": [_interpolate(k, scope) for k in _param_keys(body.get("params"))],
                "deps": [_interpolate(p, scope) for p in _paths(body.get("deps"))],
                "outs": [_interpolate(p, scope) for kind in ("outs", "metrics", "plots")
                         for p in _paths(body.get(kind))],
            }
    return stages


def _covers(stage_key: str, changed: str) -> bool:
    """A stage reading ``stage_key`` sees a change of ``changed`` (one is the other or a section of it)."""
    return stage_key == changed or changed.startswith(stage_key + ".") or stage_key.startswith(changed + ".")


def _under(dep: str, out: str) -> bool:
    return dep == out or dep.startswith(out.rstrip("/") + "/") or out.startswith(dep.rstrip("/") + "/")


def stages_to_run(before: dict[str, dict], after: dict[str, dict], changed: set[str], target: str,
                  stable: tuple[str, ...] = ()) -> list[str]:
    """The stages of ``after`` that ``dvc repro target`` runs, in pipeline order: new stages, stages reading
    a changed parameter key, and every stage downstream of one that runs; only ``target``'s ancestors.
    A dep under a ``stable`` path keeps its bytes when the stage writing it re-runs (DVC then skips the
    stage reading it): it does not make its reader run."""
    needed, todo = set(), [target]
    while todo:  # the target and everything it depends on
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [other for other, stage in after.items()
                 if any(_under(dep, out) for dep in after[name]["deps"] for out in stage["outs"])]
    running: list[str] = []
    propagating: set[str] = set()
    for name in after:  # dvc.yaml lists every stage after those it reads
        if name not in needed:
            continue
        stage = after[name]
        own = name not in before or any(_covers(k, c) for k in stage["params"] for c in changed)
        changing = [dep for dep in stage["deps"] if not any(dep == p or dep.startswith(p.rstrip("/") + "/") for p in stable)]
        upstream = [run for run in propagating if any(_under(dep, out) for dep in changing for out in after[run]["outs"])]
        if own or upstream:
            running.append(name)
            propagating.add(name)
    return running


def plan(config: dict, pipeline: dict, params: dict) -> list[dict]:
    """Which stages each experiment runs, from a workspace whose outputs match ``params`` (module docstring).

    Args:
        config: the evidence configuration (:func:`read_config`).
        pipeline: ``dvc.yaml`` as loaded.
        params: ``params.yaml`` as loaded (the workspace's state before the first experiment).

    Returns:
        one dict per experiment (:func:`experiments`) with ``stages``: the stages it runs, in order.
    """
    state, stages = params, expand_stages(pipeline, params)
    out = []
    for experiment in experiments(config):
        new_state = _with_overrides(state, experiment["overrides"])
        changed = {key for key in experiment["overrides"] if _lookup(state, key) != _lookup(new_state, key)}
        new_stages = expand_stages(pipeline, new_state)
        stable = tuple(config["stable_outputs"]) if experiment["variant"] else ()  # a new fold: other counts
        out.append({**experiment, "stages": stages_to_run(stages, new_stages, changed, config["target"], stable)})
        state, stages = new_state, new_stages
    return out


def estimate_seconds(planned: list[dict], seconds: dict[str, float]) -> tuple[float, pd.DataFrame]:
    """Total seconds of a plan from per-stage seconds (a stage name, or its family before ``@``); and the
    time per stage family summed over the plan (where the time goes). Stages without a figure count 0 and
    are listed with NaN."""
    rows = []
    for experiment in planned:
        for stage in experiment["stages"]:
            family = stage.split("@")[0]
            value = seconds.get(stage, seconds.get(family, float("nan")))
            rows.append({"experiment": experiment["name"], "stage": stage, "family": family, "seconds": value})
    frame = pd.DataFrame(rows, columns=["experiment", "stage", "family", "seconds"])
    by_family = frame.groupby("family", sort=False).seconds.agg(["count", "sum"]).rename(
        columns={"count": "runs", "sum": "seconds"}).reset_index()
    return float(frame.seconds.fillna(0).sum()), by_family


def experiment_revisions(name: str) -> dict[str, str]:
    """Experiment name -> commit of every experiment ref whose name starts with ``<name>-fold``."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    found = {}
    for line in filter(None, refs):
        ref, commit = line.split()
        exp = ref.rsplit("/", 1)[-1]
        if exp.startswith(f"{name}-fold"):
            found[exp] = commit
    return found


def git_show(commit: str, path: str) -> str:
    """A file's text at a commit (an experiment's), or a UserError naming it."""
    result = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True)
    if result.returncode:
        raise UserError(f"experiment {commit[:7]} has no {path}: {result.stderr.strip()}")
    return result.stdout


def variant_of(config: dict, experiment: str) -> str | None:
    """The variant an experiment name runs (``None`` for a fold's base experiment)."""
    for variant in config["variants"]:
        if re.fullmatch(rf"{re.escape(config['name'])}-fold\d+-{re.escape(variant)}", experiment):
            return variant
    return None


def runs_of(config: dict, experiment: str, variants: list[str]) -> dict[str, str]:
    """The recognition runs an experiment contributes: {variant in the experiment: name in the table}. A base
    experiment gives every variant; a variant experiment its ``argen`` run under the variant's name."""
    variant = variant_of(config, experiment)
    if variant is None:
        return {v: v for v in variants}
    return {"argen": variant} if "argen" in variants else {}


def collect_predictions(config: dict, revisions: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """Every contributed run's predictions, with model, variant (renamed) and fold; and a base experiment's
    params (or the first's)."""
    parts, params, base_params = [], None, None
    for exp, commit in sorted(revisions.items()):
        source = f"{exp}:params.yaml"
        params = validate_params(parse_params_yaml(git_show(commit, "params.yaml"), source), source)
        if variant_of(config, exp) is None:
            base_params = params
        for model in params.recognize.models:
            for variant, shown in runs_of(config, exp, params.recognize.variants).items():
                table = pd.read_csv(io.StringIO(git_show(commit, f"reports/recognize/{model}-{variant}/predictions.csv")),
                                    dtype={"clip_id": str})
                parts.append(table[["clip_id", "seed", "label", "predicted"]].assign(
                    model=model, variant=shown, fold=params.data.fold))
    return pd.concat(parts, ignore_index=True), base_params or params


def pooled_judge(config: dict, revisions: dict[str, str]) -> pd.DataFrame:
    """The judge's shares pooled over the experiments: hits and clips summed per model, set and emotion (a
    variant experiment's ``argen`` set under the variant's name)."""
    parts = []
    for exp, commit in revisions.items():
        judged = pd.read_csv(io.StringIO(git_show(commit, "reports/recognition/judge.csv")))
        variant = variant_of(config, exp)
        if variant is not None:
            judged = judged[judged.set == "argen"].assign(set=variant)
        parts.append(judged)
    return pool_judged(parts)


def pool_judged(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-run judge tables (``judge.csv``) pooled: clips, hits and the ``as_<class>`` counts summed per model,
    set and emotion, the share with its Wilson interval, and the most common wrong class over all runs."""
    judged = pd.concat(runs, ignore_index=True)
    if judged.empty:
        return judged
    counts = [c for c in judged.columns if c.startswith("as_")]
    # a run from before the as_<class> counts has none: a pooled row that includes one names no confusion
    judged = judged.assign(incomplete=judged[counts].isna().any(axis=1) if counts else True)
    pooled = judged.groupby(["model", "set", "emotion"], sort=False)[["clips", "hits", *counts, "incomplete"]].sum()
    pooled = pooled.reset_index()
    pooled["share"] = pooled.hits / pooled.clips
    intervals = [wilson_interval(int(round(h)), int(n)) for h, n in zip(pooled.hits, pooled.clips)]
    pooled["low"], pooled["high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    pooled["most_confused_with"] = ["" if incomplete else most_confused(dict(zip(counts, row)), emotion)
                                    for row, emotion, incomplete in zip(pooled[counts].to_numpy(), pooled.emotion,
                                                                        pooled.incomplete)]
    return pooled.drop(columns="incomplete")


POLICY_RULES = ("learned", "best_fixed", "random", "fixed_T20", "oracle")  # reports/policy/metrics.json's heldout


def policy_rows(config: dict, revisions: dict[str, str]) -> pd.DataFrame:
    """Each fold's held-out policy comparison (``reports/policy/metrics.json``), one row per policy trained.

    A variant experiment that does not re-run the policy (w/o ARD) carries its base experiment's file
    unchanged; identical files within a fold are one policy and counted once, under the first experiment by
    name (the base). Rewards are those of the experiment's own reward setting, so rows of different sets
    are not comparable with each other, only within a set.
    """
    rows, seen = [], set()
    for exp, commit in sorted(revisions.items()):
        text = git_show(commit, "reports/policy/metrics.json")
        fold = int(re.search(r"-fold(\d+)", exp).group(1))
        if (fold, text) in seen:
            continue
        seen.add((fold, text))
        metrics = json.loads(text)
        heldout, delta = metrics["heldout"], metrics["learned_minus_best_fixed"]
        rows.append({"set": variant_of(config, exp) or "argen", "fold": fold,
                     "reward": metrics.get("reward", {}).get("mode", ""),
                     "best_fixed_action": " ".join(f"{v:g}" for v in metrics["best_fixed_action"]),
                     **{name: heldout[name]["reward"] for name in POLICY_RULES},
                     "learned_minus_best_fixed": delta["mean"], "low": delta["low"], "high": delta["high"],
                     "pairs": delta["pairs"], "gap_closed": metrics.get("gap_closed", {}).get("oracle")})
    return pd.DataFrame(rows)


def pooled_policy(rows: pd.DataFrame) -> pd.DataFrame:
    """Per set, the folds' policy figures averaged, and learned - best fixed pooled over the folds.

    The pooled difference is the mean of the folds' paired differences; its 95 % interval treats the folds
    as independent, each with the standard error its own paired interval implies ((high - low) / 3.92):
    mean +- 1.96 sqrt(sum se^2) / k. ``folds_above`` / ``folds_below`` count folds whose own interval
    excludes 0 on that side.
    """
    pooled = []
    for name, group in rows.groupby("set", sort=False):
        se = (group.high - group.low) / 3.92
        half = 1.96 * float(np.sqrt((se ** 2).sum())) / len(group)
        mean = float(group.learned_minus_best_fixed.mean())
        pooled.append({"set": name, "folds": len(group), "pairs": int(group.pairs.sum()),
                       **{name: float(group[name].mean()) for name in POLICY_RULES},
                       "learned_minus_best_fixed": mean, "low": mean - half, "high": mean + half,
                       "folds_above": int((group.low > 0).sum()), "folds_below": int((group.high < 0).sum()),
                       "gap_closed": float(group.gap_closed.mean())})
    return pd.DataFrame(pooled)


def policy_markdown(rows: pd.DataFrame, pooled: pd.DataFrame) -> str:
    """The policy section of ``table.md``: pooled per set, then every fold."""
    if rows.empty:
        return ""
    lines = ["", "## The policy on held-out pairs (each fold's validation identities)", "",
             "Mean total reward of each rule on the fold's held-out pairs, under the set's own reward; learned - "
             "best fixed with its paired 95 % interval (pooled: folds as independent estimates); gap closed = "
             "(learned - best fixed) / (per-pair oracle - best fixed).", ""]
    lines += markdown_table(
        ["set", "folds", "pairs", "learned", "best fixed", "random", "fixed T=20", "per-pair oracle",
         "learned - best fixed", "folds above / below 0", "gap closed"],
        [[r.set, r.folds, r.pairs, *(f"{getattr(r, name):.3f}" for name in POLICY_RULES),
          f"{r.learned_minus_best_fixed:+.3f} [{r.low:+.3f}, {r.high:+.3f}]",
          f"{r.folds_above} / {r.folds_below}", f"{100 * r.gap_closed:.0f} %"] for r in pooled.itertuples()],
        "No policy was trained.")
    lines += ["", "Per fold:", ""]
    lines += markdown_table(
        ["set", "fold", "best fixed (T, a, b)", "learned", "best fixed", "learned - best fixed", "gap closed"],
        [[r.set, r.fold, r.best_fixed_action, f"{r.learned:.3f}", f"{r.best_fixed:.3f}",
          f"{r.learned_minus_best_fixed:+.3f} [{r.low:+.3f}, {r.high:+.3f}]", f"{100 * r.gap_closed:.0f} %"]
         for r in rows.itertuples()], "No policy was trained.")
    return "\n".join(lines) + "\n"


def evidence_source(predictions: pd.DataFrame, n_clips: int, seeds: list[int], revisions: dict[str, str]) -> str:
    """The table's provenance line: clips, the folds pooled and the seeds (plain numbers), the experiments."""
    folds = ", ".join(str(int(f)) for f in sorted(predictions.fold.unique()))
    return (f"demo of {n_clips} clips, folds {folds} pooled, seeds {', '.join(str(int(s)) for s in seeds)}; "
            f"experiments {', '.join(sorted(revisions))}")


def committed_experiments(out: Path = OUT) -> dict[str, str]:
    """The experiments the committed table pooled (``sources.json`` at HEAD, else on disk; {} when none)."""
    path = out / "sources.json"
    result = subprocess.run(["git", "show", f"HEAD:{path.as_posix()}"], capture_output=True, text=True)
    text = result.stdout if result.returncode == 0 else (path.read_text() if path.is_file() else "")
    if not text:
        return {}
    try:
        return dict(json.loads(text)["experiments"])
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path}: the committed table's sources cannot be read ({err}); restore it (git checkout) "
                        "or pass --fresh to pool only the experiments visible here") from None


def check_nothing_lost(revisions: dict[str, str], committed: dict[str, str]) -> None:
    """Refuse to pool fewer experiments than the committed table did: its pooled rows cannot be merged back.

    The evidence table pools every fold's predictions; a fold that is not in this workspace cannot be taken
    from the committed Markdown, so the command refuses and names the missing experiments.
    """
    missing = sorted(set(committed) - set(revisions))
    if missing:
        raise UserError(f"the committed reports/evidence pooled {len(committed)} experiments; {len(missing)} of them "
                        f"are not in this workspace ({', '.join(missing)}): writing the table now would drop their "
                        "folds. Fetch them (`dvc exp pull <remote> <name>`) or re-run them (python -m "
                        "argen.experiments.evidence run), or pass --fresh to pool only what is visible")


def versus_oversampling(predictions: pd.DataFrame, resamples: int) -> pd.DataFrame:
    """ARGen (and every generated variant) against oversampling, paired over (fold, seed) and clips."""
    if "oversample" not in set(predictions.variant):
        return pd.DataFrame()
    generated = predictions[~predictions.variant.isin(["original", "oracle"])]
    return delta_table(generated, list(EMOTIONS), resamples, 0, baseline="oversample")


def evidence_table(config: dict, resamples: int = 2000, fresh: bool = False) -> str:
    """Pool the finished experiments into ``reports/evidence/`` and return the Markdown.

    Unless ``fresh``, refuses (:func:`check_nothing_lost`) when an experiment the committed table pooled is
    not visible here.
    """
    revisions = experiment_revisions(config["name"])
    if not fresh:
        check_nothing_lost(revisions, committed_experiments())
    if not revisions:
        raise UserError(f"no finished experiment named {config['name']}-fold<k> (dvc exp show lists them; "
                        f"run them with: python -m argen.experiments.evidence run)")
    predictions, params = collect_predictions(config, revisions)
    table, deltas, shares, shown = recognition_tables(predictions, params.decompose.scarce_classes, resamples, 0)
    against = versus_oversampling(predictions, resamples)
    if len(against):
        deltas = pd.concat([deltas, against], ignore_index=True)
    source = evidence_source(predictions, params.demo.n_clips, params.recognize.seeds, revisions)
    judged = pooled_judge(config, revisions)
    policies = policy_rows(config, revisions)
    pooled = pooled_policy(policies)
    text = ("# Recognition evidence\n\n" + markdown(table, deltas, shares, shown, source) + judge_markdown(judged)
            + policy_markdown(policies, pooled))
    with staged_outputs() as out:
        stage_tables(out, OUT, text, table, deltas, judged)
        for name, frame in (("policy_folds", policies), ("policy", pooled)):
            frame.to_csv(out.path(OUT / f"{name}.csv"), index=False, float_format="%.6g")
        out.json({"experiments": revisions, "config": config}, OUT / "sources.json")
    return text


def plan_text(planned: list[dict], seconds: dict[str, float] | None = None) -> str:
    """The plan as text: per experiment the stages it runs; with ``seconds``, the estimate and where it goes."""
    lines = []
    for experiment in planned:
        lines.append(f"{experiment['name']}: {len(experiment['stages'])} stages: {', '.join(experiment['stages'])}")
    if seconds:
        total, by_family = estimate_seconds(planned, seconds)
        lines.append(f"\nestimate: {total / 60:.1f} min; by stage (runs, minutes):")
        for row in by_family.sort_values("seconds", ascending=False).itertuples(index=False):
            lines.append(f"  {row.family:14s} {row.runs:3d}  {row.seconds / 60:7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["plan", "commands", "run", "table"])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--fresh", action="store_true",
                        help="table: pool only the experiments visible here, even if the committed table pooled more")
    parser.add_argument("--seconds", type=Path, default=None,
                        help="plan: a YAML of measured seconds per stage (name or family) for the estimate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = read_config(args.config)
        if args.action == "table":
            print(evidence_table(config, fresh=args.fresh))
            return
        if args.action == "plan":
            pipeline = yaml.safe_load(Path("dvc.yaml").read_text())
            params = yaml.safe_load(Path("params.yaml").read_text())
            seconds = yaml.safe_load(args.seconds.read_text()) if args.seconds else None
            print(plan_text(plan(config, pipeline, params), seconds))
            return
        print_or_queue(run_commands(config), run=args.action == "run")
    except (UserError, subprocess.CalledProcessError) as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The paper's ablations (tables 3, 4, 5) as queued DVC experiments, and the tables that compare them.

``configs/ablations.yaml`` names the experiments (each a set of ``-S`` overrides on top of a shared ``set``)
and the tables (rows = experiments, with the paper's row names; columns = metrics read from the
experiments' metrics files). Usage::

    python -m argen.experiments.ablations commands [--table 3 4 5]   # print the `dvc exp run --queue` commands
    python -m argen.experiments.ablations queue [--table 3 4 5]      # ... and queue them
    ARGEN_CACHE=$PWD/data/cache dvc queue start -j 1
    python -m argen.experiments.ablations table [--out DIR]          # reports/ablations/comparison.md, comparison.csv, cost.csv

Experiments whose overrides (the shared ``set`` plus their own) are identical run once: the later names
are aliases of the first. ``table`` finds the finished experiments by name (``<name>-<experiment>``) among
the repository's experiment refs (the newest commit when a name was run more than once), reads each one's
metrics files from its commit (``git show``) and writes one Markdown table per paper table: each value with
its ± sd, 95 % interval and N where the metrics carry them, and its difference against the ``full``
experiment's row. A metric missing from a file gives ``n/a`` and a note naming the key; an experiment that
has not run, is queued or running, or failed (``dvc queue status``) gets a row saying so and the command
that runs it. The cost table says, per experiment, which stages re-ran against ``full`` (their ``dvc.lock``
entries differ: a changed command, dependency, parameter or output, or a stage ``full`` has not) and which
of them produced other outputs, in pipeline order, and its wall time from ``dvc queue logs``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml

from argen.errors import UserError
from argen.io import staged_outputs
from argen.markdown import markdown_table
from argen.experiments.queue import print_or_queue, shell_text, yaml_value

CONFIG = Path("configs/ablations.yaml")
OUT = Path("reports/ablations")

log = logging.getLogger("argen.experiments.ablations")

#: Reads a file of an experiment: (experiment commit, path) -> text, or None when it has no such file.
FileReader = Callable[[str, str], "str | None"]

#: Keys beside a metric that give its count (the first found is shown as N).
N_KEYS = ("n", "n_generated", "{leaf}_support", "test_clips")


# --------------------------------------------------------------------------------------------- configuration

def read_config(path: Path = CONFIG) -> dict:
    """The ablation configuration, checked: a ``full`` experiment, and every table row names a defined one."""
    if not path.is_file():
        raise UserError(f"{path}: not found (run from the project root)")
    config = yaml.safe_load(path.read_text()) or {}
    for key in ("name", "experiments", "tables"):
        if key not in config:
            raise UserError(f"{path}: missing key {key!r}")
    if "full" not in config["experiments"]:
        raise UserError(f"{path}: experiments need a 'full' reference (ARGen as configured)")
    for table in config["tables"]:
        for key in ("title", "metrics", "rows"):
            if key not in table:
                raise UserError(f"{path}: table {table.get('title', table.get('paper'))!r} misses {key!r}")
        for row in table["rows"]:
            if row.get("experiment") not in config["experiments"]:
                raise UserError(f"{path}: table {table['title']!r} names experiment {row.get('experiment')!r}, "
                                f"not one of {sorted(config['experiments'])}")
    return config


def overrides(config: dict, experiment: str) -> dict:
    """The ``-S`` overrides of one experiment: the shared ``set``, then its own (which win)."""
    return {**(config.get("set") or {}), **(config["experiments"][experiment] or {})}


def canonical(config: dict) -> dict[str, str]:
    """Experiment -> the first experiment with the same overrides (itself when it is the first)."""
    first: dict[tuple, str] = {}
    out = {}
    for experiment in config["experiments"]:
        key = tuple(sorted((k, yaml_value(v)) for k, v in overrides(config, experiment).items()))
        out[experiment] = first.setdefault(key, experiment)
    return out


def experiment_name(config: dict, experiment: str) -> str:
    """The DVC experiment name: ``<name>-<canonical experiment>``."""
    return f"{config['name']}-{canonical(config)[experiment]}"


def queue_command(config: dict, experiment: str) -> list[str]:
    """``dvc exp run --queue`` for one experiment: the shared ``set``, then its own overrides."""
    command = ["dvc", "exp", "run", "--queue", "-n", experiment_name(config, experiment)]
    for key, value in overrides(config, experiment).items():
        command += ["-S", f"{key}={yaml_value(value)}"]
    return command


def wanted_experiments(config: dict, tables: list[int] | None = None) -> list[str]:
    """The distinct experiments the chosen tables (the paper's numbers; None = all) need, ``full`` first."""
    chosen = [t for t in config["tables"] if tables is None or t.get("paper") in tables]
    alias = canonical(config)
    return list(dict.fromkeys(alias[e] for e in ["full"] + [row["experiment"] for t in chosen for row in t["rows"]]))


# ------------------------------------------------------------------------------------------------ finding runs

def experiment_revisions(config: dict) -> dict[str, str]:
    """Canonical experiment -> commit of its finished experiment ref (the newest when it ran more than once)."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname) %(committerdate:unix)",
                           "refs/exps"], capture_output=True, text=True, check=True).stdout.split("\n")
    by_name = {experiment_name(config, e): canonical(config)[e] for e in config["experiments"]}
    found: dict[str, tuple[int, str]] = {}
    for line in filter(None, refs):
        ref, commit, when = line.split()
        name = ref.rsplit("/", 1)[-1]
        if name in by_name and int(when) >= found.get(by_name[name], (-1, ""))[0]:
            found[by_name[name]] = (int(when), commit)
    return {experiment: commit for experiment, (_, commit) in found.items()}


def parse_queue_status(text: str) -> dict[str, str]:
    """Experiment name -> status (``Queued``, ``Running``, ``Success``, ``Failed``...) from ``dvc queue status``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] != "Task" and re.fullmatch(r"[0-9a-f]{7,40}", parts[0]):
            out[parts[1]] = parts[-1]
    return out


def queue_statuses() -> dict[str, str]:
    """``dvc queue status`` of this repository, or {} when DVC cannot say."""
    try:
        result = subprocess.run(["dvc", "queue", "status"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_queue_status(result.stdout) if result.returncode == 0 else {}


def git_file(commit: str, path: str) -> str | None:
    """A file's text at a commit, or None when the commit has no such file."""
    result = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True)
    return None if result.returncode else result.stdout


# ---------------------------------------------------------------------------------------------------- metrics

def lookup(data: object, dotted: str) -> object:
    """``data["a"]["b.c"]...`` along a dotted path whose keys may themselves contain dots or slashes."""
    if dotted == "":
        return data
    if not isinstance(data, dict):
        raise KeyError(dotted)
    for key in sorted(data, key=len, reverse=True):  # the longest key that prefixes the path
        if dotted == key:
            return data[key]
        if dotted.startswith(key + "."):
            return lookup(data[key], dotted[len(key) + 1:])
    raise KeyError(dotted)


def parse_file(path: str, text: str | None) -> dict | None:
    """A metrics file as nested dicts: JSON as it is; a CSV keyed by its leading text columns (e.g.
    ``reports/recognition/table.csv`` -> ``{model: {variant: {column: value}}}``). None when absent or unreadable."""
    if text is None:
        return None
    try:
        if not path.endswith(".csv"):
            data = json.loads(text)
            return data if isinstance(data, dict) else None
        frame = pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError):
        return None
    keys = []
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            break
        keys.append(column)
    out: dict = {}
    for record in frame.to_dict("records"):
        node = out
        for key in keys:
            node = node.setdefault(str(record[key]), {})
        node.update({k: (None if pd.isna(v) else v) for k, v in record.items() if k not in keys})
    return out


def split_spec(spec: str, default_file: str | None) -> tuple[str, str]:
    """``file:path`` -> (file, path); a bare path uses the table's ``file``."""
    if ":" in spec:
        file, path = spec.split(":", 1)
        return file, path
    if not default_file:
        raise UserError(f"metric {spec!r} names no file (write file:path, or give the table a file)")
    return default_file, spec


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _not_computed(data: dict, path: str) -> str | None:
    """The ``reason`` of the nearest block along ``path`` marked ``computed: false`` (e.g. FVD without I3D)."""
    parts = path.split(".")
    for k in range(len(parts) - 1, -1, -1):
        try:
            block = lookup(data, ".".join(parts[:k]))
        except KeyError:
            continue
        if isinstance(block, dict) and block.get("computed") is False:
            return str(block.get("reason", "not computed"))
    return None


def read_metric(data: dict, path: str) -> dict:
    """One metric: value, and where its block carries them sd, interval and N. Raises KeyError if absent."""
    value = lookup(data, path)
    parent_path, _, leaf = path.rpartition(".")
    parent = lookup(data, parent_path) if parent_path else data
    parent = parent if isinstance(parent, dict) else {}
    interval = parent.get(f"{leaf}_interval")
    if interval is None and _number(parent.get(f"{leaf}_low")) is not None:
        interval = [parent[f"{leaf}_low"], parent[f"{leaf}_high"]]
    n = next((parent[k.format(leaf=leaf)] for k in N_KEYS if _number(parent.get(k.format(leaf=leaf))) is not None),
             None)
    return {"value": _number(value), "sd": _number(parent.get(f"{leaf}_sd")),
            "low": _number(interval[0]) if isinstance(interval, list) and len(interval) == 2 else None,
            "high": _number(interval[1]) if isinstance(interval, list) and len(interval) == 2 else None,
            "n": int(n) if n is not None else None, "raw": value}


def _num(value: float, percent: bool) -> str:
    if percent:
        return f"{100 * value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def format_cell(metric: dict, percent: bool, delta: float | None = None) -> str:
    """``value ± sd [low, high] N=n (Δ delta)``, each part where known."""
    if metric.get("value") is None:
        return "n/a"
    text = _num(metric["value"], percent)
    if metric.get("sd") is not None:
        text += f" ± {_num(metric['sd'], percent)}"
    if metric.get("low") is not None:
        text += f" [{_num(metric['low'], percent)}, {_num(metric['high'], percent)}]"
    if metric.get("n") is not None:
        text += f" N={metric['n']}"
    if delta is not None:
        text += f" (Δ {'+' if delta >= 0 else '-'}{_num(abs(delta), percent)})"
    return text


def row_status(config: dict, experiment: str, revisions: dict[str, str], statuses: dict[str, str]) -> str:
    """``done`` when its experiment ref exists, else ``failed``, ``queued``, ``running`` or ``not run``."""
    name = experiment_name(config, experiment)
    if canonical(config)[experiment] in revisions:
        return "done"
    status = statuses.get(name, "").lower()
    if status == "failed":
        return "failed"
    if status in ("queued", "running"):
        return status
    return "not run"


def reference_row(table: dict) -> int | None:
    """The row the differences are taken against: ``reference: true``, else the ``full`` experiment's ARGen row."""
    rows = table["rows"]
    marked = [k for k, row in enumerate(rows) if row.get("reference")]
    if marked:
        return marked[0]
    full = [k for k, row in enumerate(rows) if row["experiment"] == "full" and row.get("variant", "argen") == "argen"]
    return full[0] if full else None


def comparison_tables(config: dict, revisions: dict[str, str], read: FileReader,
                      statuses: dict[str, str] | None = None) -> tuple[str, pd.DataFrame]:
    """The Markdown of every configured table and one long frame of their values (the CSV).

    Args:
        revisions: canonical experiment -> commit of its finished run.
        read: (commit, path) -> the file's text or None.
        statuses: experiment name -> ``dvc queue status`` status, for the rows without a finished run.
    """
    statuses = statuses or {}
    alias = canonical(config)
    parts, records = [], []
    for table in config["tables"]:
        metrics, percent = table["metrics"], bool(table.get("percent"))
        header = ["ablation"] + list(metrics)
        body: list[list[str]] = []
        notes: list[str] = []
        missing: dict[str, list[str]] = {}  # what is missing -> the rows it is missing from
        cache: dict[tuple[str, str], dict | None] = {}
        values: list[dict[str, dict] | None] = []
        for row in table["rows"]:
            experiment, name = row["experiment"], experiment_name(config, row["experiment"])
            status = row_status(config, experiment, revisions, statuses)
            if status != "done":
                values.append(None)
                continue
            commit = revisions[alias[experiment]]
            found = {}
            for label, specs in metrics.items():
                specs = [specs] if isinstance(specs, str) else list(specs)
                tried, metric = [], None
                for spec in specs:
                    file, path = split_spec(spec.format(variant=row.get("variant", "argen")), table.get("file"))
                    if (commit, file) not in cache:
                        cache[commit, file] = parse_file(file, read(commit, file))
                    data = cache[commit, file]
                    if data is None:
                        tried.append(f"no {file} (absent or unreadable)")
                        continue
                    try:
                        metric = read_metric(data, path) | {"file": file, "path": path}
                        break
                    except KeyError:
                        reason = _not_computed(data, path)
                        tried.append(f"not computed ({reason})" if reason else f"no key `{path}` in {file}")
                if metric is None:
                    metric = {"value": None, "file": file, "path": path}
                    said = next((t for t in tried if t.startswith("not computed")), " or ".join(tried))
                    missing.setdefault(f"{label}: {said}", []).append(name)
                elif metric["value"] is None:
                    missing.setdefault(f"{label}: `{metric['path']}` in {metric['file']} is "
                                       f"{json.dumps(metric['raw'])[:40]}, not a number", []).append(name)
                found[label] = metric
            values.append(found)
        ref = reference_row(table)
        reference = values[ref] if ref is not None else None
        for k, (row, found) in enumerate(zip(table["rows"], values)):
            name = experiment_name(config, row["experiment"])
            if found is None:
                status = row_status(config, row["experiment"], revisions, statuses)
                body.append([row["label"], *[status] * len(metrics)])
                said = {"not run": "has not run", "failed": "failed (dvc queue logs " + name + ")"}.get(status, f"is {status}")
                notes.append(f"{row['label']}: experiment {name} {said}; to run it: "
                             f"`{shell_text(queue_command(config, row['experiment']))}`")
                for label in metrics:
                    records.append({"table": table["title"], "paper": table.get("paper"), "ablation": row["label"],
                                    "experiment": name, "status": status, "metric": label})
                continue
            cells = []
            for label, metric in found.items():
                base = (reference or {}).get(label, {}).get("value")
                delta = metric["value"] - base if k != ref and base is not None and metric["value"] is not None \
                    else None
                cells.append(format_cell(metric, percent, delta))
                records.append({"table": table["title"], "paper": table.get("paper"), "ablation": row["label"],
                                "experiment": name, "status": "done", "metric": label,
                                "source": f"{metric['file']}:{metric['path']}", "value": metric["value"],
                                "sd": metric.get("sd"), "low": metric.get("low"), "high": metric.get("high"),
                                "n": metric.get("n"), "delta_vs_full": delta})
            body.append([row["label"], *cells])
        lines = [f"### {table['title']}", "", *markdown_table(header, body, "The table names no rows.")]
        against = table["rows"][ref]["label"] if ref is not None else None
        lines += ["", "Value ± sd [95 % interval] N=count where the metrics carry them"
                  + (f"; (Δ) the difference against {against} (`{experiment_name(config, 'full')}`)"
                     + (" in percentage points" if percent else "") if against else "") + "."]
        if table.get("note"):
            lines += ["", str(table["note"]).strip()]
        lines += [f"- n/a {what} ({', '.join(dict.fromkeys(names))})" for what, names in missing.items()]
        lines += [f"- {note}" for note in dict.fromkeys(notes)]
        parts.append("\n".join(lines) + "\n")
    columns = ["table", "paper", "ablation", "experiment", "status", "metric", "source", "value", "sd", "low", "high",
               "n", "delta_vs_full"]
    return "\n".join(parts), pd.DataFrame(records, columns=columns)


# ------------------------------------------------------------------------------------------------------- cost

def lock_stages(text: str | None) -> dict[str, dict]:
    """Stage name -> its ``dvc.lock`` entry (``<stage>@<key>`` for foreach/matrix stages)."""
    if not text:
        return {}
    return (yaml.safe_load(text) or {}).get("stages", {}) or {}


def _hashes(entries: list | None) -> dict[str, object]:
    return {e.get("path"): e.get("md5", e.get("etag", e.get("checksum"))) for e in entries or []}


def pipeline_order(dvc_yaml: str | None) -> list[str]:
    """Stage names in ``dvc.yaml`` order (foreach/matrix stages by their base name)."""
    if not dvc_yaml:
        return []
    return list(((yaml.safe_load(dvc_yaml) or {}).get("stages") or {}))


def stages_rerun(reference_lock: str | None, lock: str | None, order: list[str] | None = None
                 ) -> tuple[list[str], list[str]]:
    """The stages of ``lock`` that re-ran against ``reference_lock``, and those of them whose outputs differ.

    A stage re-ran when the reference has no such stage or its command, dependencies' hashes, parameters
    or outputs' hashes differ (DVC runs a stage whose inputs changed: its entry then records them).
    Returns both lists in pipeline order (``order``: dvc.yaml's stage names), then lock order.
    """
    reference, mine = lock_stages(reference_lock), lock_stages(lock)
    rerun, changed = [], []
    for name, entry in mine.items():
        old = reference.get(name)
        outs_differ = old is None or _hashes(old.get("outs")) != _hashes(entry.get("outs"))
        inputs_differ = old is None or old.get("cmd") != entry.get("cmd") \
            or _hashes(old.get("deps")) != _hashes(entry.get("deps")) or old.get("params") != entry.get("params")
        if outs_differ or inputs_differ:
            rerun.append(name)
        if outs_differ:
            changed.append(name)
    position = {name: k for k, name in enumerate(order or [])}
    lock_order = {name: k for k, name in enumerate(mine)}

    def key(name: str) -> tuple[int, int]:
        return position.get(name.split("@")[0], len(position)), lock_order[name]

    return sorted(rerun, key=key), sorted(changed, key=key)


def log_wall_time(text: str) -> float | None:
    """Seconds from the first to the last ``HH:MM:SS`` time stamp opening a line (stages log ``%(asctime)s``)."""
    stamps = re.findall(r"^(?:\d{4}-\d\d-\d\d[ T])?(\d\d):(\d\d):(\d\d)\b", text, flags=re.M)
    if len(stamps) < 2:
        return None
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in stamps]
    return float(sum((b - a) % 86400 for a, b in zip(seconds, seconds[1:])))  # across midnight too


def queue_wall_time(name: str) -> float | None:
    """The wall time of an experiment from ``dvc queue logs <name>``, or None."""
    try:
        result = subprocess.run(["dvc", "queue", "logs", name], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return log_wall_time(result.stdout) if result.returncode == 0 else None


def cost_table(config: dict, revisions: dict[str, str], read: FileReader,
               wall_time: Callable[[str], float | None], statuses: dict[str, str] | None = None) -> pd.DataFrame:
    """Per distinct experiment: status, the stages it re-ran against ``full`` (and which changed outputs), wall time."""
    statuses = statuses or {}
    reference = read(revisions["full"], "dvc.lock") if "full" in revisions else None
    order = pipeline_order(read(revisions["full"], "dvc.yaml") if "full" in revisions else None) \
        or pipeline_order(Path("dvc.yaml").read_text() if Path("dvc.yaml").is_file() else None)
    rows = []
    for experiment in dict.fromkeys(canonical(config).values()):
        name = experiment_name(config, experiment)
        status = row_status(config, experiment, revisions, statuses)
        row = {"experiment": name, "status": status, "stages_rerun": None, "outputs_changed": None,
               "n_stages": None, "wall_s": None}
        if status == "done":
            if experiment == "full":
                row.update(stages_rerun="(reference)", outputs_changed="(reference)")
            elif reference is None:
                row.update(stages_rerun="n/a (full has not run)", outputs_changed="n/a")
            else:
                rerun, changed = stages_rerun(reference, read(revisions[experiment], "dvc.lock"), order)
                row.update(stages_rerun=", ".join(rerun) or "none", outputs_changed=", ".join(changed) or "none",
                           n_stages=len(rerun))
            row["wall_s"] = wall_time(name)
        rows.append(row)
    return pd.DataFrame(rows, columns=["experiment", "status", "stages_rerun", "outputs_changed", "n_stages", "wall_s"])


def cost_markdown(cost: pd.DataFrame) -> str:
    body = []
    for row in cost.itertuples(index=False):
        wall = "n/a" if row.wall_s is None or pd.isna(row.wall_s) else f"{row.wall_s / 60:.1f} min"
        text = [v if isinstance(v, str) else "" for v in (row.stages_rerun, row.outputs_changed)]
        body.append([row.experiment, row.status, wall, *text])
    header = ["experiment", "status", "wall time", "stages re-run against `full`", "of them, with other outputs"]
    lines = ["### What each ablation cost", "", *markdown_table(header, body, "No experiment is configured."), "", "Stages re-run: the experiment's `dvc.lock` entry differs from the `full` experiment's (a changed "
                  "command, dependency, parameter or output, or a stage `full` lacks), in pipeline order; the last "
                  "column keeps those whose outputs' hashes differ. Wall time: first to last time stamp of the "
                  "experiment's `dvc queue logs` (the stages that ran; n/a when the log is gone)."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ report

def ablation_report(config: dict, revisions: dict[str, str], read: FileReader = git_file,
                    wall_time: Callable[[str], float | None] = queue_wall_time,
                    statuses: dict[str, str] | None = None, out_dir: Path = OUT) -> str:
    """Write ``comparison.md``, ``comparison.csv`` and ``cost.csv`` under ``out_dir``; return the Markdown."""
    tables, values = comparison_tables(config, revisions, read, statuses)
    cost = cost_table(config, revisions, read, wall_time, statuses)
    shared = ", ".join(f"`{k}={yaml_value(v)}`" for k, v in (config.get("set") or {}).items()) or "none"
    distinct = list(dict.fromkeys(canonical(config).values()))
    aliases = [f"`{e}` = `{a}`" for e, a in canonical(config).items() if e != a]
    text = (f"# Ablations (paper tables 3, 4, 5)\n\nExperiments `{config['name']}-<experiment>` of "
            f"`configs/ablations.yaml`, each with the shared overrides {shared}"
            + (f" (same overrides, run once: {', '.join(aliases)})" if aliases else "")
            + f"; {sum(e in revisions for e in distinct)} of {len(distinct)} have finished.\n\n"
            + tables + "\n" + cost_markdown(cost))
    with staged_outputs() as out:
        out.path(out_dir / "comparison.md").write_text(text)
        values.to_csv(out.path(out_dir / "comparison.csv"), index=False)
        cost.to_csv(out.path(out_dir / "cost.csv"), index=False)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["queue", "commands", "table"])
    parser.add_argument("--table", type=int, nargs="+", action="extend", choices=[3, 4, 5],
                        help="only the experiments of these paper tables (default: all)")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--out", type=Path, default=OUT, help="table: the output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = read_config(args.config)
        if args.action == "table":
            print(ablation_report(config, experiment_revisions(config), statuses=queue_statuses(), out_dir=args.out))
            return
        print_or_queue((queue_command(config, e) for e in wanted_experiments(config, args.table)),
                       run=args.action == "queue")
    except (UserError, subprocess.CalledProcessError) as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The paper's ablations (tables 3, 4, 5) as queued DVC experiments, and the tables that compare them.

``configs/ablations.yaml`` names the experiments (each a set of ``-S`` overrides on top of a shared ``set``)
and the tables (rows = experiments, columns = metrics read from the experiments' metrics files). Usage::

    python -m argen.ablations queue          # one `dvc exp run --queue -n <name>-<experiment>` per experiment
    ARGEN_CACHE=$PWD/data/cache dvc queue start -j 1
    python -m argen.ablations table          # reports/ablations/comparison.md, comparison.csv, cost.csv

``table`` finds the finished experiments among the repository's experiment refs, reads each one's
metrics files from its commit, and writes one Markdown table per paper table, with each value's interval
and the difference against the table's first row. It also says what each experiment cost against ``full``:
which stages re-ran (their ``dvc.lock`` entry differs from the full run's: a changed param, dependency or
output) and, from ``dvc queue logs``, its wall time. An experiment not run yet gets a row saying so, with
the command that runs it; a metric missing from a file gets ``n/a`` and a note naming the key.
"""

from __future__ import annotations

import argparse
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
from argen.recognize.evidence import yaml_value

CONFIG = Path("configs/ablations.yaml")
OUT = Path("reports/ablations")

log = logging.getLogger("argen.ablations")

#: Reads a file of an experiment: (experiment commit, path) -> text, or None when it has no such file.
FileReader = Callable[[str, str], "str | None"]


def read_config(path: Path = CONFIG) -> dict:
    """The ablation configuration, checked: every table row names a defined experiment."""
    if not path.is_file():
        raise UserError(f"{path}: not found (run from the project root)")
    config = yaml.safe_load(path.read_text()) or {}
    for key in ("name", "experiments", "tables"):
        if key not in config:
            raise UserError(f"{path}: missing key {key!r}")
    if "full" not in config["experiments"]:
        raise UserError(f"{path}: experiments need a 'full' reference (ARGen as configured)")
    for table in config["tables"]:
        for row in table["rows"]:
            if row["experiment"] not in config["experiments"]:
                raise UserError(f"{path}: table {table['title']!r} names experiment {row['experiment']!r}, "
                                f"not one of {sorted(config['experiments'])}")
    return config


def experiment_name(config: dict, experiment: str) -> str:
    return f"{config['name']}-{experiment}"


def queue_command(config: dict, experiment: str) -> list[str]:
    """``dvc exp run --queue`` for one experiment: the shared ``set``, then its own overrides."""
    overrides = {**(config.get("set") or {}), **(config["experiments"][experiment] or {})}
    command = ["dvc", "exp", "run", "--queue", "-n", experiment_name(config, experiment)]
    for key, value in overrides.items():
        command += ["-S", f"{key}={yaml_value(value)}"]
    return command


def wanted_experiments(config: dict, tables: list[int] | None = None) -> list[str]:
    """The experiments the chosen tables (the paper's numbers; None = all) need, ``full`` first, each once."""
    chosen = [t for t in config["tables"] if tables is None or t.get("paper") in tables]
    names = ["full"] + [row["experiment"] for table in chosen for row in table["rows"]]
    return list(dict.fromkeys(names))


def experiment_revisions(config: dict) -> dict[str, str]:
    """Experiment (config name) -> commit, for every finished experiment ref of this configuration."""
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    by_name = {experiment_name(config, e): e for e in config["experiments"]}
    found = {}
    for line in filter(None, refs):
        ref, commit = line.split()
        name = ref.rsplit("/", 1)[-1]
        if name in by_name:
            found[by_name[name]] = commit
    return found


def git_file(commit: str, path: str) -> str | None:
    """A file's text at a commit, or None when the commit has no such file."""
    result = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True)
    return None if result.returncode else result.stdout


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


def _cell(value: float | None, interval: list | None, percent: bool) -> str:
    if value is None:
        return "n/a"
    scale = 100.0 if percent else 1.0
    text = f"{scale * value:.1f}" if percent else f"{value:.2f}"
    if interval:
        lo, hi = (scale * interval[0], scale * interval[1])
        text += f" [{lo:.1f}, {hi:.1f}]" if percent else f" [{lo:.2f}, {hi:.2f}]"
    return text


def comparison_tables(config: dict, revisions: dict[str, str], read: FileReader) -> tuple[str, pd.DataFrame]:
    """The Markdown of every configured table and one long CSV frame of their values."""
    parts, records = [], []
    for table in config["tables"]:
        metrics, percent = table["metrics"], bool(table.get("percent"))
        header = ["ablation"] + list(metrics)
        lines = [f"### {table['title']}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        notes, reference = [], None
        for k, row in enumerate(table["rows"]):
            commit = revisions.get(row["experiment"])
            name = experiment_name(config, row["experiment"])
            if commit is None:
                lines.append(f"| {row['label']} | " + " | ".join(["not run"] * len(metrics)) + " |")
                notes.append(f"{row['label']}: experiment {name} has not run "
                             f"(`{' '.join(queue_command(config, row['experiment']))}`)")
                continue
            text = read(commit, table["file"])
            data = json.loads(text) if text else None
            if data is None:
                notes.append(f"{row['label']}: {name} has no {table['file']}")
            values = {}
            for label, path in metrics.items():
                path = path.format(variant=row.get("variant", "argen"))
                try:
                    value = lookup(data, path) if data is not None else None
                except KeyError:
                    value = None
                    notes.append(f"{row['label']}: {table['file']} of {name} has no key {path}")
                try:
                    interval = lookup(data, path + "_interval") if data is not None else None
                except KeyError:
                    interval = None
                values[label] = (value if isinstance(value, (int, float)) else None, interval)
                records.append({"table": table["title"], "ablation": row["label"], "experiment": name,
                                "metric": label, "value": values[label][0],
                                "low": interval[0] if interval else None, "high": interval[1] if interval else None})
            cells = []
            for label, (value, interval) in values.items():
                cell = _cell(value, interval, percent)
                base = reference[label][0] if reference else None
                if k > 0 and reference is not None and value is not None and base is not None:
                    delta = (value - base) * (100.0 if percent else 1.0)
                    cell += f" ({delta:+.1f})" if percent else f" ({delta:+.2f})"
                cells.append(cell)
            if k == 0:
                reference = values
            lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
        first = table["rows"][0]["label"]
        lines += ["", f"Values [95 % interval where the metrics carry one]; in brackets after them the difference "
                      f"against the first row ({first}). Metrics from `{table['file']}` of each experiment."]
        lines += [f"- {note}" for note in notes]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts), pd.DataFrame(records)


def lock_stages(text: str | None) -> dict[str, dict]:
    """Stage name -> its ``dvc.lock`` entry (``<stage>@<key>`` for foreach/matrix stages)."""
    if not text:
        return {}
    return (yaml.safe_load(text) or {}).get("stages", {})


def stages_rerun(reference_lock: str | None, lock: str | None) -> list[str]:
    """Stages whose lock entry (command, dependencies, params, outputs) differs from the reference's, in order."""
    reference, mine = lock_stages(reference_lock), lock_stages(lock)
    return [name for name, entry in mine.items() if reference.get(name) != entry]


def queue_wall_time(name: str) -> float | None:
    """Seconds between the first and last time stamp of an experiment's ``dvc queue logs``, or None."""
    result = subprocess.run(["dvc", "queue", "logs", name], capture_output=True, text=True)
    stamps = re.findall(r"^(\d\d):(\d\d):(\d\d) ", result.stdout, flags=re.M) if result.returncode == 0 else []
    if len(stamps) < 2:
        return None
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in stamps]
    span = seconds[-1] - seconds[0]
    return float(span + 86400 if span < 0 else span)


def cost_table(config: dict, revisions: dict[str, str], read: FileReader,
               wall_time: Callable[[str], float | None]) -> pd.DataFrame:
    """Per experiment: the stages it re-ran against ``full``, how many, and its measured wall time."""
    reference = read(revisions["full"], "dvc.lock") if "full" in revisions else None
    rows = []
    for experiment in config["experiments"]:
        commit, name = revisions.get(experiment), experiment_name(config, experiment)
        if commit is None:
            rows.append({"experiment": name, "stages_rerun": "not run", "n_stages": None, "wall_s": None})
            continue
        rerun = stages_rerun(reference, read(commit, "dvc.lock")) if experiment != "full" else []
        rows.append({"experiment": name, "stages_rerun": ", ".join(rerun) if experiment != "full" else "(reference)",
                     "n_stages": len(rerun), "wall_s": wall_time(name)})
    return pd.DataFrame(rows, columns=["experiment", "stages_rerun", "n_stages", "wall_s"])


def cost_markdown(cost: pd.DataFrame) -> str:
    lines = ["### What each ablation cost", "", "| experiment | wall time | stages re-run against `full` |",
             "|---|---|---|"]
    for row in cost.itertuples(index=False):
        wall = "n/a" if row.wall_s is None or pd.isna(row.wall_s) else f"{row.wall_s / 60:.1f} min"
        lines.append(f"| {row.experiment} | {wall} | {row.stages_rerun} |")
    lines += ["", "Wall time: first to last log line of the experiment's `dvc queue logs` (its whole pipeline "
                  "run, the stages DVC restored from the run-cache included)."]
    return "\n".join(lines) + "\n"


def ablation_report(config: dict, revisions: dict[str, str], read: FileReader = git_file,
                    wall_time: Callable[[str], float | None] = queue_wall_time) -> str:
    """Write ``reports/ablations/`` and return its Markdown."""
    tables, values = comparison_tables(config, revisions, read)
    cost = cost_table(config, revisions, read, wall_time)
    shared = ", ".join(f"`{k}={yaml_value(v)}`" for k, v in (config.get("set") or {}).items()) or "none"
    text = (f"# Ablations (paper tables 3, 4, 5)\n\nExperiments `{config['name']}-<name>` of "
            f"`configs/ablations.yaml`, each with the shared overrides {shared}; {len(revisions)} of "
            f"{len(config['experiments'])} have run.\n\n" + tables + "\n" + cost_markdown(cost))
    with staged_outputs() as out:
        out.path(OUT / "comparison.md").write_text(text)
        values.to_csv(out.path(OUT / "comparison.csv"), index=False)
        cost.to_csv(out.path(OUT / "cost.csv"), index=False)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["queue", "commands", "table"])
    parser.add_argument("--table", type=int, action="append", help="only the experiments of this paper table (3, 4 or 5; repeatable)")
    parser.add_argument("--config", type=Path, default=CONFIG)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = read_config(args.config)
        if args.action == "table":
            print(ablation_report(config, experiment_revisions(config)))
            return
        for experiment in wanted_experiments(config, args.table):
            command = queue_command(config, experiment)
            print(" ".join(f"'{c}'" if any(ch in c for ch in " [{,") else c for c in command))
            if args.action == "queue":
                subprocess.run(command, check=True)
    except (UserError, subprocess.CalledProcessError) as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()

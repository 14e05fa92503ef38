"""The recognition evidence run: one DVC experiment per fold, pooled into one table.

``configs/evidence.yaml`` holds the configuration (a demo large enough for >= 30 test clips of every scarce
class pooled over five folds, three seeds, the oracle control). Usage::

    python -m argen.experiments.evidence queue          # dvc exp run --queue, one experiment per fold
    ARGEN_CACHE=$PWD/data/cache dvc queue start -j 1  # run them; the cache is shared across experiments
    dvc queue status                                  # until every experiment has succeeded
    python -m argen.experiments.evidence table          # reports/evidence/table.md, table.csv, deltas.csv

Each experiment re-runs ARGen on its fold's training split, so no identity frame or generated clip comes
from that fold's test clips. ``table`` finds the finished experiments by name (``<name>-fold<k>``) among
the repository's experiment refs, reads each one's predictions from its commit, and pools them with
:mod:`argen.recognize.summary`: WAR, UAR and recalls over all folds' test clips (every clip of the dataset
once), mean ± sd over the 15 runs, paired differences over (fold, seed), and ARGen's share of the
oracle's gain.
"""

from __future__ import annotations

import argparse
import io
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from argen.errors import UserError
from argen.experiments.queue import print_or_queue, yaml_value
from argen.io import staged_outputs
from argen.params import parse_params_yaml, validate_params
from argen.paths import report_dir
from argen.recognize.judge import judge_markdown
from argen.recognize.summary import markdown, recognition_tables, stage_tables
from argen.stats import wilson_interval

CONFIG = Path("configs/evidence.yaml")
OUT = report_dir("evidence")

log = logging.getLogger("argen.experiments.evidence")


def read_config(path: Path = CONFIG) -> dict:
    """The evidence configuration: ``name``, ``folds`` and the ``set`` overrides."""
    if not path.is_file():
        raise UserError(f"{path}: not found (run from the project root)")
    config = yaml.safe_load(path.read_text())
    for key in ("name", "folds", "set"):
        if key not in (config or {}):
            raise UserError(f"{path}: missing key {key!r}")
    return config


def queue_commands(config: dict) -> list[list[str]]:
    """One ``dvc exp run --queue`` command per fold, with the configuration's overrides."""
    commands = []
    for fold in config["folds"]:
        command = ["dvc", "exp", "run", "--queue", "-n", f"{config['name']}-fold{fold}", "-S", f"data.fold={fold}"]
        for key, value in config["set"].items():
            command += ["-S", f"{key}={yaml_value(value)}"]
        commands.append(command)
    return commands


def experiment_revisions(name: str) -> dict[str, str]:
    """Experiment name -> commit of every experiment ref whose name starts with ``name``."""
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


def collect_predictions(revisions: dict[str, str]) -> tuple[pd.DataFrame, dict]:
    """Every run's predictions of every experiment, with model, variant and fold; and the params of the first."""
    parts, params = [], None
    for exp, commit in sorted(revisions.items()):
        source = f"{exp}:params.yaml"
        params = validate_params(parse_params_yaml(git_show(commit, "params.yaml"), source), source)
        for model in params.recognize.models:
            for variant in params.recognize.variants:
                table = pd.read_csv(io.StringIO(git_show(commit, f"reports/recognize/{model}-{variant}/predictions.csv")),
                                    dtype={"clip_id": str})
                parts.append(table[["clip_id", "seed", "label", "predicted"]].assign(
                    model=model, variant=variant, fold=params.data.fold))
    return pd.concat(parts, ignore_index=True), params


def pooled_judge(revisions: dict[str, str]) -> pd.DataFrame:
    """The judge's shares pooled over the experiments: hits and clips summed per model, set and emotion."""
    parts = [pd.read_csv(io.StringIO(git_show(commit, "reports/recognition/judge.csv"))) for commit in revisions.values()]
    judged = pd.concat(parts, ignore_index=True)
    if judged.empty:
        return judged
    pooled = judged.groupby(["model", "set", "emotion"], sort=False)[["clips", "hits"]].sum().reset_index()
    pooled["share"] = pooled.hits / pooled.clips
    intervals = [wilson_interval(int(round(h)), int(n)) for h, n in zip(pooled.hits, pooled.clips)]
    pooled["low"], pooled["high"] = [i[0] for i in intervals], [i[1] for i in intervals]
    pooled["most_confused_with"] = ""
    return pooled


def evidence_source(predictions: pd.DataFrame, n_clips: int, seeds: list[int], revisions: dict[str, str]) -> str:
    """The table's provenance line: clips, the folds pooled (plain ints), seeds and the experiments."""
    folds = ", ".join(str(int(f)) for f in sorted(predictions.fold.unique()))
    return (f"demo of {n_clips} clips, folds [{folds}] pooled, seeds {list(seeds)}; "
            f"experiments {', '.join(sorted(revisions))}")


def evidence_table(config: dict, resamples: int = 2000) -> str:
    """Pool the finished experiments into ``reports/evidence/`` and return the Markdown."""
    revisions = experiment_revisions(config["name"])
    if not revisions:
        raise UserError(f"no finished experiment named {config['name']}-fold<k> (dvc exp show lists them; "
                        f"queue them with: python -m argen.experiments.evidence queue)")
    predictions, params = collect_predictions(revisions)
    table, deltas, shares, shown = recognition_tables(predictions, params.decompose.scarce_classes, resamples, 0)
    source = evidence_source(predictions, params.demo.n_clips, params.recognize.seeds, revisions)
    judged = pooled_judge(revisions)
    text = "# Recognition evidence\n\n" + markdown(table, deltas, shares, shown, source) + judge_markdown(judged)
    with staged_outputs() as out:
        stage_tables(out, OUT, text, table, deltas, judged)
        out.json({"experiments": revisions, "config": config}, OUT / "sources.json")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["queue", "table", "commands"])
    parser.add_argument("--config", type=Path, default=CONFIG)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = read_config(args.config)
        if args.action == "table":
            print(evidence_table(config))
            return
        print_or_queue(queue_commands(config), run=args.action == "queue")
    except (UserError, subprocess.CalledProcessError) as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()

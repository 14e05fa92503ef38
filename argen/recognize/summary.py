"""The recognition table (paper table 2) with the uncertainty the paper leaves out.

Input: the test predictions of every run, one row per (model, variant, fold, seed, clip) with the true
and predicted class. The same code summarises one ``dvc repro`` (one fold) and the evidence run (five
folds from ``dvc exp`` experiments, :mod:`argen.experiments.evidence`).

Per model and variant:

* **mean ± sd over runs** (folds x seeds) of WAR, UAR and each class's recall;
* **pooled over folds**: every fold's test clips together (over five folds, every clip of the dataset once),
  with the figure averaged over seeds; the recall's 95 % **Wilson interval** on the pooled support (hits
  averaged over seeds), and for WAR and UAR a 95 % **bootstrap interval** resampling the pooled clips;
* the **support** (pooled test clips) of each class.

Per model and added variant (``argen``, ``oracle``) against ``original``:

* the **paired difference** over runs matched by fold and seed, with a t interval (needs two pairs);
* the **paired bootstrap** of the pooled difference: clips resampled with both variants' predictions
  together, so the interval reflects the test set's size even for a single run;
* with an oracle: **ARGen's share of the oracle's gain**, (argen - original) / (oracle - original), only
  where the oracle gained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from argen.emotions import EMOTIONS
from argen.intervals import flag_intervals
from argen.markdown import markdown_table
from argen.recognize.metrics import paper_name
from argen.stats import bootstrap, paired_difference, wilson_interval

#: Columns a predictions table needs.
PREDICTION_COLUMNS: tuple[str, ...] = ("model", "variant", "fold", "seed", "clip_id", "label", "predicted")
#: Figures of the table: WAR, UAR, then one recall per class (filled in by :func:`figure_names`).
HEAD_FIGURES: tuple[str, ...] = ("WAR", "UAR")


def figure_names(classes: list[str]) -> list[str]:
    """WAR, UAR and the paper's recall names of ``classes`` (AR-HA ... AR-FE)."""
    return [*HEAD_FIGURES, *[paper_name(c) for c in classes]]


def figures(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """[WAR, UAR, recall per class] of one prediction vector (NaN recall: no support; UAR over the rest)."""
    support = np.bincount(truth, minlength=n_classes)
    hits = np.bincount(truth[truth == predicted], minlength=n_classes)
    recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    war = float(hits.sum() / support.sum()) if support.sum() else np.nan
    uar = float(np.nanmean(recall)) if np.isfinite(recall).any() else np.nan
    return np.concatenate([[war, uar], recall])


def seed_averaged(truth: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """:func:`figures` averaged over the rows (seeds) of ``predictions`` (S, n)."""
    return np.mean([figures(truth, p, n_classes) for p in predictions], axis=0)


def _pooled(runs: pd.DataFrame, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(truth (n,), predictions (S, n)) with every fold's test clips pooled, one row per seed."""
    table = runs.pivot_table(index=["fold", "clip_id"], columns="seed", values="predicted", aggfunc="first")
    truth = runs.drop_duplicates(["fold", "clip_id"]).set_index(["fold", "clip_id"]).label.reindex(table.index)
    return truth.to_numpy(int), table[seeds].to_numpy(int).T


def summary_table(predictions: pd.DataFrame, classes: list[str], resamples: int = 2000, seed: int = 0
                  ) -> pd.DataFrame:
    """One row per (model, variant): runs, folds, seeds, pooled test clips, and for each figure its mean and sd
    over runs, the pooled value with its interval (low, high) and, for recalls, the pooled support."""
    n_classes, names = len(classes), figure_names(classes)
    rows = []
    for (model, variant), runs in predictions.groupby(["model", "variant"], sort=False):
        seeds = sorted(runs.seed.unique())
        per_run = np.stack([figures(r.label.to_numpy(int), r.predicted.to_numpy(int), n_classes)
                            for _, r in runs.groupby(["fold", "seed"])])
        truth, predicted = _pooled(runs, seeds)
        pooled = seed_averaged(truth, predicted, n_classes)
        low, high = bootstrap(truth, lambda pick: seed_averaged(truth[pick], predicted[:, pick], n_classes)[:2],
                              resamples, seed) if resamples else (np.full(2, np.nan), np.full(2, np.nan))
        support = np.bincount(truth, minlength=n_classes)
        row = {"model": model, "variant": variant, "runs": len(per_run), "folds": runs.fold.nunique(),
               "seeds": len(seeds), "test_clips": int(truth.size)}
        for j, name in enumerate(names):
            values = per_run[:, j][np.isfinite(per_run[:, j])]
            row[f"{name}_mean"] = float(values.mean()) if values.size else np.nan
            row[f"{name}_sd"] = float(values.std(ddof=1)) if values.size > 1 else np.nan
            row[name] = pooled[j]
            if j < 2:
                row[f"{name}_low"], row[f"{name}_high"] = float(low[j]), float(high[j])
            else:
                k = j - 2
                hits = np.mean([np.sum((truth == k) & (p == k)) for p in predicted])
                interval = wilson_interval(int(round(hits)), int(support[k]))
                row[f"{name}_low"], row[f"{name}_high"] = interval if interval else (np.nan, np.nan)
                row[f"{name}_support"] = int(support[k])
        rows.append(row)
    return pd.DataFrame(rows)


def delta_table(predictions: pd.DataFrame, classes: list[str], resamples: int = 2000, seed: int = 0,
                baseline: str = "original") -> pd.DataFrame:
    """One row per (model, added variant): per figure the paired difference over runs (mean, t interval,
    pairs) and the pooled paired-bootstrap difference (value, low, high)."""
    n_classes, names = len(classes), figure_names(classes)
    rows = []
    for model, of_model in predictions.groupby("model", sort=False):
        base = of_model[of_model.variant == baseline]
        if base.empty:
            continue
        for variant, runs in of_model[of_model.variant != baseline].groupby("variant", sort=False):
            pairs = sorted(set(base[["fold", "seed"]].itertuples(index=False, name=None))
                           & set(runs[["fold", "seed"]].itertuples(index=False, name=None)))
            if not pairs:
                continue
            key = pd.MultiIndex.from_tuples(pairs, names=["fold", "seed"])
            a = base.set_index(["fold", "seed"]).loc[key].reset_index()
            b = runs.set_index(["fold", "seed"]).loc[key].reset_index()
            fa = {p: figures(r.label.to_numpy(int), r.predicted.to_numpy(int), n_classes)
                  for p, r in a.groupby(["fold", "seed"])}
            fb = {p: figures(r.label.to_numpy(int), r.predicted.to_numpy(int), n_classes)
                  for p, r in b.groupby(["fold", "seed"])}
            seeds = sorted({s for _, s in pairs})
            truth, pa = _pooled(a, seeds)
            truth_b, pb = _pooled(b, seeds)
            if not np.array_equal(truth, truth_b):
                raise ValueError(f"{model}: variants {baseline} and {variant} were tested on different clips")

            def diff(pick: np.ndarray) -> np.ndarray:
                return seed_averaged(truth[pick], pb[:, pick], n_classes) - seed_averaged(truth[pick], pa[:, pick],
                                                                                        n_classes)
            point = diff(np.arange(truth.size))
            low, high = bootstrap(truth, diff, resamples, seed) if resamples else \
                (np.full(point.size, np.nan), np.full(point.size, np.nan))
            row = {"model": model, "variant": variant, "versus": baseline, "pairs": len(pairs)}
            for j, name in enumerate(names):
                runs_a = [fa[p][j] for p in pairs if np.isfinite(fa[p][j]) and np.isfinite(fb[p][j])]
                runs_b = [fb[p][j] for p in pairs if np.isfinite(fa[p][j]) and np.isfinite(fb[p][j])]
                paired = paired_difference(runs_a, runs_b) if runs_a else \
                    {"mean": np.nan, "low": np.nan, "high": np.nan, "pairs": 0}
                row[f"d_{name}_runs"] = paired["mean"]
                row[f"d_{name}_runs_low"], row[f"d_{name}_runs_high"] = paired["low"], paired["high"]
                row[f"d_{name}"], row[f"d_{name}_low"], row[f"d_{name}_high"] = point[j], low[j], high[j]
            rows.append(row)
    return pd.DataFrame(rows)


def oracle_shares(deltas: pd.DataFrame, names: list[str], variant: str = "argen", oracle: str = "oracle"
                  ) -> pd.DataFrame:
    """Per model and figure: ARGen's pooled gain as a share of the oracle's; NaN where the oracle did not gain."""
    rows = []
    for model, of_model in deltas.groupby("model", sort=False):
        mine, best = of_model[of_model.variant == variant], of_model[of_model.variant == oracle]
        if mine.empty or best.empty:
            continue
        row = {"model": model}
        for name in names:
            gain, ceiling = float(mine[f"d_{name}"].iloc[0]), float(best[f"d_{name}"].iloc[0])
            row[f"share_{name}"] = gain / ceiling if ceiling > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _pct(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.1f}"


def _signed(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:+.1f}"


def markdown(table: pd.DataFrame, deltas: pd.DataFrame, shares: pd.DataFrame, shown: list[str],
             provenance: str) -> str:
    """The table in the shape of the paper's table 2 (percentages), then the deltas and the oracle shares."""
    lines = [f"Recognition on the test split ({provenance}). Cells: pooled value over folds, averaged over seeds, "
             "with its 95 % interval (bootstrap over test clips for WAR/UAR, Wilson for a class recall); "
             "below it mean ± sd over the runs (folds x seeds). Support: test clips of the class, pooled.", ""]
    rows = []
    for row in table.to_dict("records"):
        cells = []
        for name in shown:
            cell = f"{_pct(row[name])} [{_pct(row[f'{name}_low'])}, {_pct(row[f'{name}_high'])}]"
            if row["runs"] > 1:
                cell += f"<br>{_pct(row[f'{name}_mean'])} ± {_pct(row[f'{name}_sd'])}"
            cells.append(cell)
        rows.append([row["model"], row["variant"], row["runs"], *cells])
    if len(table):
        rows.append(["support", "", "", *[f"n = {int(table[f'{n}_support'].iloc[0])}" if n.startswith("AR-") else
                                          f"n = {int(table.test_clips.iloc[0])}" for n in shown]])
    lines += markdown_table(["model", "training split", "runs", *shown], rows, "No run was evaluated.")
    if not deltas.empty:
        several_baselines = "versus" in deltas and deltas.versus.nunique() > 1
        against = "the training split in column `against`" if several_baselines else "the original training split"
        lines += ["", f"Differences against {against}, in points: pooled paired bootstrap "
                  "[95 % interval]; then the mean over runs paired by fold and seed with its t interval "
                  "(needs two pairs).", ""]
        rows = []
        for row in deltas.to_dict("records"):
            cells = []
            for name in shown:
                cell = f"{_signed(row[f'd_{name}'])} [{_signed(row[f'd_{name}_low'])}, {_signed(row[f'd_{name}_high'])}]"
                if row["pairs"] > 1:
                    cell += (f"<br>{_signed(row[f'd_{name}_runs'])} [{_signed(row[f'd_{name}_runs_low'])}, "
                             f"{_signed(row[f'd_{name}_runs_high'])}]")
                cells.append(cell)
            against = [row.get("versus", "original")] if several_baselines else []
            rows.append([row["model"], row["variant"], *against, row["pairs"], *cells])
        lines += markdown_table(["model", "added", *(["against"] if several_baselines else []), "pairs",
                                 *[f"Δ {n}" for n in shown]], rows, "No paired run.")
    if not shares.empty:
        lines += ["", "ARGen's gain as a share of the oracle's (demo renderer's own clips, same counts): "
                  "(argen − original) / (oracle − original), pooled; n/a where the oracle did not gain. A negative "
                  "share: ARGen's clips lowered the figure while the oracle's raised it (−43 % = ARGen lost 43 % "
                  "of what the oracle gained).", ""]
        rows = [[row["model"], *[_pct(row[f"share_{n}"]) + (" %" if np.isfinite(row[f"share_{n}"]) else "")
                                 for n in shown]] for row in shares.to_dict("records")]
        lines += markdown_table(["model", *shown], rows, "No oracle run.")
    return flag_intervals("\n".join(lines)) + "\n"


def recognition_tables(predictions: pd.DataFrame, scarce: list[str], resamples: int, seed: int
                       ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """(summary table, deltas, oracle shares, figures shown: WAR, UAR and the scarce recalls) of all classes."""
    classes = list(EMOTIONS)
    table = summary_table(predictions, classes, resamples, seed)
    deltas = delta_table(predictions, classes, resamples, seed)
    shares = oracle_shares(deltas, figure_names(classes))
    return table, deltas, shares, ["WAR", "UAR", *[paper_name(c) for c in scarce]]


def stage_tables(out, folder: Path, text: str, table: pd.DataFrame, deltas: pd.DataFrame,
                 judged: pd.DataFrame) -> None:
    """Stage ``table.md`` and the CSVs (table, deltas, judge) under ``folder`` with ``out`` (staged outputs)."""
    out.path(folder / "table.md").write_text(text)
    for name, frame in (("table", table), ("deltas", deltas), ("judge", judged)):
        frame.to_csv(out.path(folder / f"{name}.csv"), index=False, float_format="%.6g")

"""The report's first section: the outcome and what produced it.

The outcome is the recognition study's answer (paper table 2): per model, ARGen − original in UAR and in
AR-DI (the scarcest class's recall) with their paired 95 % intervals, the oracle's difference beside it (the
demo renderer's own clips: the ceiling any generator can reach), and the judge's share of ARGen's clips
classified as their target emotion. Both this run (``reports/recognition``, one fold) and, where it was
committed, the multi-fold evidence run (``reports/evidence``) are shown, each named. What produced it: the
AU backend, generator, prompts, policy and its chosen actions, and a digest of every setting's value (the report
holds no git state: the same inputs give the same bytes).
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from argen.intervals import with_interval
from argen.report.inputs import REPORTS, read_csv, read_json
from argen.report.pipeline_sections import dataset_name
from argen.report.result_sections import actions_words
from argen.report.section import Section, table_markdown

#: The figures of the outcome: (column of deltas.csv, words).
HEADLINE = (("UAR", "UAR"), ("AR-DI", "AR-DI (disgust recall)"))
RUNS = (("recognition", "this run"), ("evidence", "evidence run (folds pooled)"))


def delta_rows(deltas: pd.DataFrame, source: str) -> list[list[str]]:
    """Per model: ARGen − original and oracle − original of each headline figure, in points with intervals."""
    rows = []
    for model in dict.fromkeys(deltas.model.astype(str)):
        mine = deltas[deltas.model.astype(str) == model]
        row = [model, source]
        for variant in ("argen", "oracle"):
            found = mine[(mine.variant == variant) & (mine.versus == "original")]
            for column, _ in HEADLINE:
                if found.empty or f"d_{column}" not in found:
                    row.append("n/a" if variant == "argen" else "not run")
                    continue
                r = found.iloc[0]
                row.append(with_interval(r[f"d_{column}"], r.get(f"d_{column}_low"), r.get(f"d_{column}_high"),
                                         scale=100, signed=True))
        rows.append(row)
    return rows


def judge_rows(judge: pd.DataFrame, source: str) -> list[dict]:
    """Per model: the share of ARGen's clips the judge takes for their target emotion, per emotion (of N clips)."""
    argen = judge[judge.set.astype(str) == "argen"]
    rows = []
    for model, group in argen.groupby("model", sort=False):
        row = {"model": model, "run": source}
        for r in group.itertuples(index=False):
            row[str(r.emotion)] = f"{with_interval(r.share, r.low, r.high, scale=100)} of {int(r.clips)}"
        rows.append(row)
    return rows


def outcome_section(params, s: Section) -> None:
    """The outcome (ΔUAR, ΔAR-DI with intervals, the oracle's, the judge) and what produced it."""
    rows, judged = [], []

    def one_run(folder: str, source: str) -> None:
        rows.extend(delta_rows(read_csv(REPORTS / folder / "deltas.csv", columns=("model", "variant", "versus")),
                               source))
        judge = REPORTS / folder / "judge.csv"
        if judge.is_file():
            frame = read_csv(judge, columns=("model", "set", "emotion", "clips", "share", "low", "high"))
            judged.extend(judge_rows(frame, source))

    for folder, source in RUNS:
        if folder == "recognition" or (REPORTS / folder / "deltas.csv").is_file():
            s.attempt(lambda: one_run(folder, source))
    header = ["model", "run", *[f"ARGen Δ{w}" for _, w in HEADLINE], *[f"oracle Δ{w}" for _, w in HEADLINE]]
    s.text("**Outcome.** Recognition with ARGen's clips added minus without them (percentage points, paired "
           "95 % interval over the same test clips), and the same for the oracle's clips (the ceiling):", "",
           table_markdown(pd.DataFrame(rows, columns=header), "No recognition deltas: run `dvc repro recognition`."))
    if judged:
        frame = pd.DataFrame(judged)
        emotions = [*params.decompose.scarce_classes, *[c for c in frame.columns[2:]
                                                        if c not in params.decompose.scarce_classes]]
        frame = frame.reindex(columns=["model", "run", *emotions]).astype(object).fillna("n/a")
        s.text("**The judge:** the share (%, 95 % Wilson interval, of N clips) of ARGen's clips that the model "
               "trained without added clips classifies as their target emotion:", "",
               table_markdown(frame, "Nothing was judged."))
    produced(params, s)


def settings_digest(params) -> str:
    """SHA-256 (first 12 hex digits) of every validated setting, defaults filled in: the same for the same
    values however params.yaml is laid out or commented, different when any value differs."""
    values = json.dumps(params.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(values.encode()).hexdigest()[:12]


def produced(params, s: Section) -> None:
    """What produced the outcome: backends, generator, policy and its actions, the settings' digest."""
    ard, asi = params.ard, params.asi
    try:
        actions = actions_words(read_json(REPORTS / "generate/metrics.json").get("actions"))
    except Exception:  # noqa: BLE001  a missing or malformed file: the section says n/a
        actions = "n/a (reports/generate/metrics.json missing or unreadable)"
    rows = [("data", dataset_name(params)), ("AU backend", params.extract_aus.backend),
            ("generator", params.generator.generator), ("prompts", f"{asi.mode} ({asi.backend})"),
            ("policy", f"{params.generate.policy}, λ = {ard.lambda_:g}"), ("actions the policy took", actions),
            ("recognition", f"{', '.join(params.recognize.models)}; seeds {', '.join(map(str, params.recognize.seeds))}"),
            ("settings digest", f"`{settings_digest(params)}` (SHA-256 of every setting's value; each one: the run "
                                "summary below)")]
    s.text("**What produced it:**", "", table_markdown(pd.DataFrame(rows, columns=["", "value"]), "No settings."))

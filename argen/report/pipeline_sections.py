"""The report's sections on the pipeline's inputs and intermediate steps: the run, the dataset and its long tail
(fig. 1a), identities (fig. 6), the AU knowledge base (fig. 7), prompts and hallucinations (supp. G)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from argen.report.inputs import REPORTS, read_csv, read_json, read_markdown, read_parquet
from argen.report.section import Section, cell, table_markdown


def dataset_name(params) -> str:
    data = params.data
    fold = f", fold {data.fold}" if getattr(data, "fold", None) is not None and data.source in ("demo", "dfew") else ""
    return f"{data.source} at `{data.root}`{fold}"


def summary_section(params, s: Section) -> None:
    ard, asi, generator = params.ard, params.asi, params.generator
    rows = [("dataset", dataset_name(params)),
            ("scarce emotions", ", ".join(params.decompose.scarce_classes)),
            ("AU extraction (extract_aus.backend)", params.extract_aus.backend),
            ("prompts (asi.mode, asi.backend)", f"{asi.mode}, {asi.backend}; retrieval {asi.retrieval}, k = {asi.k}"),
            ("generator (generator.generator)",
             generator.generator + (f" (`{generator.t2v_path}`)" if generator.generator == "ti2v" else "")),
            ("policy (generate.policy)",
             f"{params.generate.policy}; λ = {ard.lambda_:g}, w_Q/w_F/w_E = {ard.weight_quality:g}/"
             f"{ard.weight_face:g}/{ard.weight_expression:g}, γ = {ard.gamma:g}, "
             f"top-k {ard.top_k}, advantage {ard.advantage}, guidance {generator.guidance_form}"),
            ("recognition", f"{', '.join(params.recognize.models)} × {', '.join(params.recognize.variants)}, "
                            f"seeds {', '.join(map(str, params.recognize.seeds))}"),
            ("FVD detector (evaluate.i3d_path)", f"`{params.evaluate.i3d_path}`" if params.evaluate.i3d_path
             else "none supplied"),
            ("seed", str(params.seed))]
    s.text("What produced this report, from `params.yaml`. The report carries no date and no git state: "
           "the same pipeline outputs give the same bytes.", "",
           table_markdown(pd.DataFrame(rows, columns=["setting", "value"]), "No settings."))


def dataset_section(params, s: Section) -> None:
    def counts() -> None:
        table = read_csv(REPORTS / "decompose/class_counts.csv", columns=("emotion",))
        metrics = read_json(REPORTS / "decompose/metrics.json")
        s.source(f"`reports/decompose/class_counts.csv`, `reports/decompose/metrics.json` ({dataset_name(params)})",
                 f"N = {metrics.get('n_clips', 'n/a')} usable clips of {metrics.get('n_subjects', 'n/a')} subjects",
                 f"{metrics.get('n_skipped', 'n/a')} items skipped (`data/interim/decompose_skipped.parquet` "
                 "lists them with reasons)")
        subsets = metrics.get("subsets") or {}
        if subsets:
            s.text(f"Scarce clips D_s: {subsets.get('D_s', 'n/a')}; non-scarce D_ns: {subsets.get('D_ns', 'n/a')} "
                   f"(neutral {subsets.get('D_ns_neutral', 'n/a')}); scarce share "
                   f"{cell(subsets.get('scarce_fraction'))}.")
        if metrics.get("warning"):
            s.text(f"> {metrics['warning']}")
        s.text("Clips per emotion and split:", "", table_markdown(table, "The split table has no clips."))

    s.attempt(counts)
    s.image(REPORTS / "decompose/class_distribution.png", "Clips per emotion: the long tail (fig. 1a)")


def identities_section(params, s: Section) -> None:
    def figures() -> None:
        metrics = read_json(REPORTS / "identities/metrics.json")
        s.source("`reports/identities/metrics.json`", f"landmarks by the `{params.extract_aus.backend}` AU backend",
                 f"N = {metrics.get('sources', 'n/a')} neutral source clips")
        rows = [("admitted", metrics.get("selected")), ("rejected", metrics.get("rejected")),
                ("mean AU intensity of the admitted frames", metrics.get("mean_au_of_selected")),
                ("mean admissible frames per clip", metrics.get("mean_admissible_frames"))]
        s.text(table_markdown(pd.DataFrame([(k, cell(v)) for k, v in rows], columns=["identity frames", "value"]),
                              "No identity metrics."))
        reasons = metrics.get("rejection_reasons") or {}
        if reasons:
            top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
            s.text("Rejected clips by reason (frames of the 16 failing each test):", "",
                   table_markdown(pd.DataFrame(top, columns=["reason", "clips"]), "No clip was rejected."))

    s.attempt(figures)
    s.image(REPORTS / "identities/grid.jpg", "Admitted identity frames with their quality figures (fig. 6)")


def knowledge_base_section(params, s: Section) -> None:
    def table() -> None:
        kb = read_parquet(Path("data/interim/au_kb.parquet"), ("emotion", "aus", "source", "kind"))
        metrics = read_json(REPORTS / "au_kb/metrics.json")
        clips = ", ".join(f"{e} {m.get('clips', 'n/a')}" for e, m in sorted(metrics.items()) if isinstance(m, dict))
        s.source("`data/interim/au_kb.parquet`, `reports/au_kb/metrics.json`",
                 f"AUs by the `{params.extract_aus.backend}` backend at threshold {params.au_kb.active_threshold:g}",
                 f"N = {len(kb)} entries; scarce training clips per emotion: {clips}")
        shown = pd.DataFrame({
            "emotion": kb.emotion, "kind": kb.kind, "source": kb.source,
            "AU combination": kb.aus.map(lambda a: " + ".join(f"AU{int(x):02d}" for x in a)),
            "intensities": kb.intensities.map(lambda v: ", ".join(f"{x:.1f}" for x in v))
            if "intensities" in kb else "",
            "support (clips)": kb.support if "support" in kb else np.nan,
            "support (share)": kb.support_fraction.astype(float).round(3) if "support_fraction" in kb else np.nan})
        s.text("K = {(A_i, c_i, d_i, r_i)}: EMFACS prototypes and their variants from the literature, and AU "
               "combinations seen in the dataset's scarce clips (support = clips of the emotion showing it).", "",
               table_markdown(shown.sort_values(["emotion", "source", "kind"], kind="stable"),
                              "The knowledge base has no entries."))

    s.attempt(table)
    s.image(REPORTS / "au_kb/au_distribution.png", "AU activation per scarce emotion in the dataset (fig. 7)")


def prompts_section(params, s: Section) -> None:
    def rates() -> None:
        metrics = read_json(REPORTS / "prompts/metrics.json")
        s.source("`reports/prompts/metrics.json`", f"mode `{metrics.get('mode')}`, backend `{metrics.get('backend')}`",
                 f"retrieval {params.asi.retrieval}, k = {params.asi.k}")
        rows = []
        for mode in ("vlm_rag", "vlm_only"):
            m = metrics.get(mode)
            if isinstance(m, dict):
                rows.append((mode, "yes" if mode == "vlm_rag" else "no", m.get("prompts"),
                             m.get("hallucination_rate"), m.get("hallucinated_au_rate"),
                             m.get("format_failure_rate"), m.get("au_f1")))
        if rows:
            s.text("First-attempt verification against the knowledge base, with retrieval and without "
                   "(hallucinated = cites an AU outside the FACS table or contradicting the emotion):", "",
                   table_markdown(pd.DataFrame(rows, columns=["mode", "retrieval", "N prompts", "hallucinated prompts",
                                                              "hallucinated AUs", "format failures", "AU F1"]),
                                  "No prompt was verified."))
        else:
            s.text("> Fixed prompts (`asi.mode: fixed`): nothing is composed, so nothing is verified.")

    def verification() -> None:
        prompts = read_parquet(Path("data/interim/prompts.parquet"), ("emotion", "identity_id", "prompt"))
        s.source(f"`data/interim/prompts.parquet`, N = {len(prompts)} prompts "
                 f"({prompts.identity_id.nunique()} identities × {prompts.emotion.nunique()} emotions)")
        agg = {"prompts": ("prompt", "size")}
        for name, column, how in (("first try hallucinated", "first_hallucinated", "mean"),
                                  ("mean tries", "tries", "mean"), ("AU F1", "f1", "mean")):
            if column in prompts:
                agg[name] = (column, how)
        per = prompts.groupby("emotion", sort=True).agg(**agg).reset_index()
        if "action" in prompts:
            per["outcome"] = [", ".join(f"{k} {v}" for k, v in sorted(g.action.value_counts().items()))
                              for _, g in prompts.groupby("emotion", sort=True)]
        s.text("Per emotion:", "", table_markdown(per, "No prompts were written."))

    s.attempt(rates)
    s.attempt(verification)
    s.attempt(lambda: s.text("#### Example prompts and their verification", "",
                             read_markdown(REPORTS / "prompts/examples.md", demote=3)))


"""Build the report from what the stages wrote: ``reports/report.md`` and ``reports/report.html``.

Sections follow the paper: the run, the dataset and its long tail (fig. 1a), identities (fig. 6), the AU
knowledge base (fig. 7), prompts and hallucinations (supp. G), the policy (fig. 8), generated clips (fig. 3),
recognition (table 2), generation metrics (tables 1, 4, 5, 8), ablations (tables 3, 4, 5). Each section is
built from its stage's files and names them, with the backends and N behind its tables. A section whose
input is missing or unreadable is kept, with a note in its place naming the file, why, and the command that
makes it: the report never stops on a missing or malformed input.

The report holds no time stamp and no git state: the same inputs give the same bytes. Images are linked by
relative path (from ``reports/``) in the Markdown and embedded as data URIs in the HTML, whose stylesheet is
inline: the page makes no request and needs no script.

Paths are relative to the working directory (the project root), as in every stage.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from argen.markdown import markdown_table
from argen.paths import REPORTS

log = logging.getLogger("argen.report")

#: Where the report and the figures it draws itself go (all paths in the Markdown are relative to REPORTS).
FIGURES = REPORTS / "report_figures"

#: Every file or folder the report reads, in the order of its sections: the dvc stage's deps (after the stage
#: script and this package). ``reports/evidence`` and ``reports/ablations`` are committed results written outside
#: ``dvc repro`` (the evidence run; ``python -m argen.experiments.ablations table``); a missing one is a note, not an error.
REPORT_INPUTS: tuple[str, ...] = (
    "reports/decompose",
    "reports/identities",
    "data/interim/au_kb.parquet",
    "reports/au_kb",
    "data/interim/prompts.parquet",
    "reports/prompts",
    "reports/rewards",
    "reports/policy",
    "reports/generate",
    "data/generated",
    "reports/recognition",
    "reports/recognize",
    "reports/evaluate",
    "reports/evidence",
    "reports/ablations",
)

#: The stage that writes a top-level folder or file the report reads: the hint of a missing input's note.
MAKERS = {"decompose": "decompose", "identities": "identities", "au_kb": "au_kb", "prompts": "prompts",
          "policy": "policy", "rewards": "rewards", "generate": "generate", "generated": "generate",
          "recognition": "recognition", "recognize": "recognize", "evaluate": "evaluate"}

#: Frames shown per generated clip (1-based; fig. 3).
SHOWN_FRAMES = (1, 6, 11, 16)


class MissingInput(Exception):
    """An input a section needs is not there (the stage that writes it has not run)."""

    def __init__(self, path: Path | str, hint: str = "") -> None:
        super().__init__(str(path))
        self.path, self.hint = str(path), hint


class UnreadableInput(Exception):
    """An input a section needs is there but does not parse or lacks what the section reads."""

    def __init__(self, path: Path | str, error: Exception | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        super().__init__(f"{path}: {text}")
        self.path, self.error = str(path), " ".join(str(text).split())[:300]


def stage_of(path: str) -> str:
    """The stage that writes ``path`` ("" when none of the pipeline's)."""
    for part in Path(path).parts[::-1]:
        stem = Path(part).stem
        if stem in MAKERS:
            return MAKERS[stem]
    return ""


def missing_note(path: str, hint: str = "") -> str:
    """The in-place note of a missing input: which file, why, and the command that makes it."""
    stage = stage_of(path)
    if hint:
        why = hint
    elif stage:
        why = f"stage `{stage}` has not run; run `dvc repro {stage}`"
    else:
        why = "it is not part of this run"
    return f"> **Missing input.** `{path}` is missing because {why}."


def unreadable_note(path: str, error: str) -> str:
    """The in-place note of a malformed input."""
    stage = stage_of(path)
    fix = f" Re-run `dvc repro -s {stage}` to rewrite it." if stage else ""
    return f"> **Unreadable input.** `{path}` could not be read ({error}).{fix}"


# --- Readers: each raises MissingInput or UnreadableInput, never a parser's error --------------------------

def read_json(path: Path) -> dict:
    if not path.is_file():
        raise MissingInput(path)
    try:
        value = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise UnreadableInput(path, err) from None
    if not isinstance(value, dict):
        raise UnreadableInput(path, f"a JSON object expected, found {type(value).__name__}")
    return value


def read_csv(path: Path, sep: str = ",", columns: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInput(path)
    try:
        frame = pd.read_csv(path, sep=sep)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UnreadableInput(path, err) from None
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise UnreadableInput(path, f"columns {lacking} missing")
    return frame


def read_parquet(path: Path, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.exists():
        raise MissingInput(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001  pyarrow raises several types for a damaged file
        raise UnreadableInput(path, err) from None
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise UnreadableInput(path, f"columns {lacking} missing")
    return frame


def read_markdown(path: Path, demote: int = 1) -> str:
    """A Markdown file of another stage, verbatim but for its first H1 (dropped) and headings (demoted)."""
    if not path.is_file():
        raise MissingInput(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise UnreadableInput(path, err) from None
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(("#" * demote + line) if line.startswith("#") else line for line in lines).strip()


# --- Markdown pieces ---------------------------------------------------------------------------------------

def cell(value) -> str:
    """One table cell: floats rounded, lists joined, pipes escaped."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            return "n/a"
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(cell(v) for v in value)
    if value is None:
        return "n/a"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table_markdown(frame: pd.DataFrame, empty: str) -> str:
    """A DataFrame as a Markdown table, numeric columns right-aligned; ``empty``, in italics, when it has no rows."""
    rule = ["---:" if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            else "---" for c in frame.columns]
    rows = ([cell(v) for v in row] for row in frame.itertuples(index=False))
    return "\n".join(markdown_table([cell(c) for c in frame.columns], rows, empty, rule))


def excerpt(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


@dataclass
class Section:
    """One section of the report: a title and Markdown blocks."""

    title: str
    blocks: list[str] = field(default_factory=list)
    notes: int = 0  # in-place notes of missing or unreadable inputs

    def text(self, *lines: str) -> None:
        self.blocks.append("\n".join(lines))

    def source(self, *parts: str) -> None:
        """The line naming what produced the section's tables: files, backends, N."""
        self.blocks.append("*Source:* " + "; ".join(p for p in parts if p) + ".")

    def note(self, text: str) -> None:
        self.blocks.append(text)
        self.notes += 1

    def attempt(self, build: Callable[[], None]) -> None:
        """Run one part of the section; a missing or malformed input becomes a note in its place."""
        try:
            build()
        except MissingInput as missing:
            self.note(missing_note(missing.path, missing.hint))
        except UnreadableInput as bad:
            self.note(unreadable_note(bad.path, bad.error))

    def image(self, path: Path, caption: str, link: Path | None = None) -> None:
        """An image at ``path`` (linked as ``link``, default ``path``, relative to ``reports/``) and its caption."""
        if not path.is_file():
            self.note(missing_note(str(link or path)))
            return
        target = (link or path).relative_to(REPORTS).as_posix()
        self.blocks.append(f"![{caption}]({target})\n\n*Figure: {caption}*")


# --- Sections ----------------------------------------------------------------------------------------------

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
                            f"seeds {params.recognize.seeds}"),
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


def policy_figure(path: Path) -> list[str]:
    """Fig. 8: every training curve the policy stage logged (DVCLive TSVs), one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    live = REPORTS / "policy/live/plots/metrics/train"
    files = sorted(live.glob("*.tsv")) if live.is_dir() else []
    if not files:
        raise MissingInput(live, "stage `policy` has not run; run `dvc repro policy`")
    curves = [(f, read_csv(f, sep="\t", columns=("step", f.stem))) for f in files]
    cols = min(3, len(curves))
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.8 * rows), squeeze=False)
    for ax, (f, frame) in zip(axes.flat, curves):
        ax.plot(frame.step, frame[f.stem], lw=0.9, color="#1f5fa8")
        ax.set_title(f.stem.replace("_", " "), fontsize=10)
        ax.set_xlabel("logged step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return [f"{f.stem} ({len(frame)} points)" for f, frame in curves]


def policy_section(params, figures: Path, s: Section) -> None:
    ard = params.ard

    def curves() -> None:
        names = policy_figure(figures / "policy_curves.png")
        s.source("`reports/policy/live/plots/metrics/train/*.tsv`", ", ".join(names))
        s.image(figures / "policy_curves.png", "Policy training curves (fig. 8), averaged per logged window",
                FIGURES / "policy_curves.png")

    def heldout() -> None:
        metrics = read_json(REPORTS / "policy/metrics.json")
        table = metrics.get("heldout")
        if not isinstance(table, dict) or not table:
            raise UnreadableInput(REPORTS / "policy/metrics.json", "no 'heldout' results")
        frame = pd.DataFrame(table).T.reset_index().rename(columns={"index": "policy"})
        keep = [c for c in ("policy", "reward", "reward_se", "R_S", "R_Q", "R_F", "R_E", "R_A", "model_calls")
                if c in frame]
        pairs = metrics.get("pairs")
        s.source("`reports/policy/metrics.json`", f"generator `{params.generator.generator}`",
                 f"λ = {ard.lambda_:g}, γ = {ard.gamma:g}, top-k {ard.top_k}, {ard.policy_steps} steps",
                 f"validation pairs: {json.dumps(pairs, sort_keys=True) if pairs is not None else 'n/a'}")
        s.text(f"Mean total reward per held-out pair for the learned policy and its references. Learned − best "
               f"fixed action ({metrics.get('best_fixed_action', 'n/a')}): "
               f"{json.dumps(metrics.get('learned_minus_best_fixed', 'n/a'), sort_keys=True)}; beats it beyond noise: "
               f"{metrics.get('learned_beats_best_fixed', 'n/a')}.", "",
               table_markdown(frame[keep], "No held-out pair was evaluated."))

    def rewards() -> None:
        metrics = read_json(REPORTS / "rewards/metrics.json")
        s.source("`reports/rewards/metrics.json`", f"generator `{metrics.get('generator', params.generator.generator)}`",
                 f"N = {metrics.get('pairs', 'n/a')} pairs ({metrics.get('train_pairs', 'n/a')} train, "
                 f"{metrics.get('val_pairs', 'n/a')} validation), {metrics.get('videos', 'n/a')} videos, "
                 f"{metrics.get('failed', 'n/a')} failed", f"a_max = {cell(metrics.get('a_max'))}")
        mean = metrics.get("mean") or {}
        if mean:
            s.text("Mean component rewards over the reward table:", "",
                   table_markdown(pd.DataFrame([mean]), "No rewards."))

    s.attempt(curves)
    s.attempt(heldout)
    s.image(REPORTS / "policy/comparison.png", "Held-out comparison of the learned policy with its references")
    s.attempt(rewards)
    s.image(REPORTS / "rewards/actions.png", "The reward table: each component reward per action (T, a, b)")


def identity_cue(prompt: str) -> str:
    """The prompt's identity description (``Identity: ...;``), or "" when it has none."""
    found = re.match(r"\s*Identity:\s*([^;]*)", str(prompt))
    return found.group(1).strip() if found else ""


def generated_rows(per_emotion: int) -> pd.DataFrame:
    index = read_parquet(Path("data/generated/index.parquet"),
                         ("clip_id", "frames_dir", "frames", "emotion", "identity_id", "prompt", "T", "a", "b",
                          "status"))
    ok = index[index.status.astype(str).str.startswith("ok")]
    return (ok.sort_values(["emotion", "clip_id"], kind="stable").groupby("emotion", sort=True)
            .head(per_emotion).reset_index(drop=True))


def generated_figure(shown: pd.DataFrame, path: Path) -> list[int]:
    """Fig. 3 as a grid: one row per clip, frames 1, 6, 11, 16, a caption above each row."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for clip in shown.itertuples(index=False):
        names = list(clip.frames)
        frames = []
        for f in SHOWN_FRAMES:
            file = Path(clip.frames_dir) / names[min(f, len(names)) - 1]
            image = cv2.imread(str(file))
            if image is None:
                raise UnreadableInput(file, "not a readable image") if file.exists() else MissingInput(file)
            frames.append(image[:, :, ::-1])
        rows.append((clip, frames))
    cols, image_in, caption_in = len(SHOWN_FRAMES), 2.0, 0.62
    height = len(rows) * (image_in + caption_in) + 0.1
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * image_in * 1.03 + 0.2, height), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.2 / height, top=1 - caption_in * 0.72 / height,
                        wspace=0.03, hspace=caption_in / image_in)
    for r, (clip, frames) in enumerate(rows):
        for c, (f, image) in enumerate(zip(SHOWN_FRAMES, frames)):
            ax = axes[r, c]
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"frame {f}", fontsize=7, labelpad=1)
        caption = (f"{clip.emotion} | identity {clip.identity_id}: {identity_cue(clip.prompt) or 'n/a'} | "
                   f"T*={clip.T}, (a*, b*)=({clip.a:g}, {clip.b:g})\n{excerpt(prompt_expression(clip.prompt), 110)}")
        axes[r, 0].set_title(caption, fontsize=7.5, loc="left", pad=3)
    fig.savefig(path, dpi=80, pil_kwargs={"quality": 90})  # JPEG: the photo grid stays well under 1 MB
    plt.close(fig)
    return list(SHOWN_FRAMES)


def prompt_expression(prompt: str) -> str:
    """The prompt without its identity part."""
    return re.sub(r"^\s*Identity:[^;]*;\s*", "", str(prompt))


def generated_section(params, figures: Path, s: Section) -> None:
    """Fig. 3: generated clips of each scarce emotion with identity cue, prompt and chosen action."""
    per_emotion = params.report.clips_per_emotion

    def summary() -> None:
        metrics = read_json(REPORTS / "generate/metrics.json")
        s.source("`reports/generate/metrics.json`, `data/generated/index.parquet`",
                 f"generator `{params.generator.generator}`, policy `{params.generate.policy}`, prompts `{params.asi.mode}`",
                 f"N = {metrics.get('clips', 'n/a')} clips ({metrics.get('failed', 'n/a')} failed), per emotion "
                 f"{json.dumps(metrics.get('per_class'), sort_keys=True)}",
                 f"actions chosen {json.dumps(metrics.get('actions'), sort_keys=True)}")

    def grid() -> None:
        shown = generated_rows(per_emotion)
        if shown.empty:
            s.text("> No generated clip has status ok: nothing to show.")
            return
        generated_figure(shown, figures / "generated.jpg")
        s.image(figures / "generated.jpg", f"Generated clips (fig. 3), frames {', '.join(map(str, SHOWN_FRAMES))}: "
                f"the first {per_emotion} clips per emotion, each captioned with its identity cue, prompt and "
                "the policy's action", FIGURES / "generated.jpg")
        table = pd.DataFrame({"clip": shown.clip_id, "emotion": shown.emotion, "identity": shown.identity_id,
                              "identity cue": shown.prompt.map(identity_cue), "T*": shown["T"],
                              "a*": shown.a.astype(float), "b*": shown.b.astype(float),
                              "prompt (excerpt)": shown.prompt.map(lambda p: excerpt(prompt_expression(p), 80))})
        s.text("The clips shown:", "", table_markdown(table, "No clips to show."))

    s.attempt(summary)
    s.attempt(grid)
    s.image(REPORTS / "generate/contact_sheet.jpg", "The generate stage's own contact sheet")


def recognition_section(params, s: Section) -> None:
    def table() -> None:
        text = read_markdown(REPORTS / "recognition/table.md", demote=2)
        metrics = read_json(REPORTS / "recognition/metrics.json")
        s.source("`reports/recognition/table.md` (+ `table.csv`, `deltas.csv`, `judge.csv`), "
                 "`reports/recognize/*/predictions.csv`",
                 f"{dataset_name(params)}, models {', '.join(sorted(metrics))}",
                 f"variants {', '.join(params.recognize.variants)}, seeds {params.recognize.seeds}")
        s.text(text)
        if "oracle" not in params.recognize.variants:
            s.text("> The oracle control (the demo renderer's own clips, the ceiling for any generator) did not run: "
                   "add `oracle` to `recognize.variants` to measure ARGen's share of its gain.")

    def judge() -> None:
        frame = read_csv(REPORTS / "recognition/judge.csv", columns=("model", "set", "emotion"))
        s.text(f"`reports/recognition/judge.csv`: {len(frame)} rows (model × added set × emotion).")

    s.attempt(table)
    s.attempt(judge)
    runs = sorted((REPORTS / "recognize").glob("*/confusion.png"))
    if not runs:
        s.note(missing_note("reports/recognize/*/confusion.png"))
    for path in runs:
        s.image(path, f"Confusion matrix (test split): {path.parent.name}")
    evidence = REPORTS / "evidence/table.md"
    if evidence.is_file():
        def multi() -> None:
            sources = REPORTS / "evidence/sources.json"
            s.text("### Multi-fold evidence", "", "*Source:* `reports/evidence/table.md` (committed; "
                   + ("provenance in `reports/evidence/sources.json`" if sources.is_file() else "no sources.json")
                   + ").", "", read_markdown(evidence, demote=2))
        s.attempt(multi)


WEIGHTS_HELP = ("Supply the weights in `params.yaml` and run `dvc repro evaluate`: `evaluate.i3d_path` for FVD, "
                "sFVD and tFVD (a local `i3d_pretrained_400.pt` state dict or StyleGAN-V's `i3d_torchscript.pt`), "
                "and for LPIPS `evaluate.lpips_alexnet_path` (torchvision's AlexNet ImageNet state dict) with "
                "`evaluate.lpips_heads_path` (the lpips package's `weights/v0.1/alex.pth`).")


def generation_section(params, s: Section) -> None:
    def metrics_part() -> None:
        metrics = read_json(REPORTS / "evaluate/metrics.json")
        s.source("`reports/evaluate/metrics.json`, `reports/evaluate/tables.md`",
                 f"{metrics.get('source', params.evaluate.source)}",
                 f"N = {metrics.get('clips', 'n/a')} clips ({metrics.get('skipped', 'n/a')} skipped)",
                 f"AU backend `{metrics.get('au_backend', params.extract_aus.backend)}`, generator "
                 f"`{metrics.get('generator', params.generator.generator)}`, "
                 f"policy `{metrics.get('policy', params.generate.policy)}`")
        fvd = metrics.get("fvd")
        if not isinstance(fvd, dict) or not fvd.get("computed", True) or "fvd" not in metrics:
            reason = fvd.get("reason") if isinstance(fvd, dict) else None
            s.text(f"> **FVD, sFVD and tFVD were not computed** (I3D weights not supplied): "
                   f"{reason or 'no I3D weights'}. {WEIGHTS_HELP}")
        lpips = metrics.get("lpips")
        if isinstance(lpips, dict) and not lpips.get("computed", True):
            s.text(f"> **LPIPS was not computed:** {lpips.get('reason') or 'no LPIPS weights'}.")

    s.attempt(metrics_part)
    s.attempt(lambda: s.text(read_markdown(REPORTS / "evaluate/tables.md", demote=1)))
    grid = REPORTS / "evaluate/grid.jpg"
    if grid.is_file():
        s.image(grid, "Ground truth: each real clip, ARGen's clip from its first frame and label, and the floor")


def ablations_section(params, s: Section) -> None:
    path = REPORTS / "ablations/comparison.md"
    if not path.is_file():
        s.note(missing_note(str(path), "the ablation experiments have not been tabulated: queue them with "
                                       "`python -m argen.experiments.ablations queue`, run them with `dvc queue start -j N`, "
                                       "then write the table with `python -m argen.experiments.ablations table`"))
        return
    s.source("`reports/ablations/comparison.md` (written by `python -m argen.experiments.ablations table` from the "
             "experiments of `configs/ablations.yaml`)")
    s.attempt(lambda: s.text(read_markdown(path, demote=1)))


#: The sections in reading order: (title, builder(params, figures, section)).
SECTIONS: list[tuple[str, Callable]] = [
    ("Run summary", lambda p, f, s: summary_section(p, s)),
    ("Dataset and class distribution (fig. 1a)", lambda p, f, s: dataset_section(p, s)),
    ("Identities (fig. 6)", lambda p, f, s: identities_section(p, s)),
    ("AU knowledge base and AU distributions (fig. 7)", lambda p, f, s: knowledge_base_section(p, s)),
    ("Prompts and hallucinations (supp. G)", lambda p, f, s: prompts_section(p, s)),
    ("Policy (fig. 8)", lambda p, f, s: policy_section(p, f, s)),
    ("Generated clips (fig. 3)", lambda p, f, s: generated_section(p, f, s)),
    ("Recognition (table 2)", lambda p, f, s: recognition_section(p, s)),
    ("Generation metrics (tables 1, 4, 5, 8)", lambda p, f, s: generation_section(p, s)),
    ("Ablations (tables 3, 4, 5)", lambda p, f, s: ablations_section(p, s)),
]
SECTION_TITLES = [title for title, _ in SECTIONS]


def build_sections(params, figures: Path) -> list[Section]:
    """Every section in order; a part whose input is missing or unreadable holds a note instead.

    Args:
        figures: folder to draw the report's own figures in (linked as ``reports/report_figures/``).
    """
    sections = []
    for title, make in SECTIONS:
        section = Section(title)
        try:
            make(params, figures, section)
        except Exception as err:  # noqa: BLE001  an input of an unexpected shape: a note, never a traceback
            log.warning("report section %r: %s: %s", title, type(err).__name__, err)
            section.note(f"> **Section incomplete.** Its inputs have an unexpected shape "
                         f"({type(err).__name__}: {excerpt(str(err), 200)}); re-run the stages it reads.")
        sections.append(section)
    return sections


def slug(title: str) -> str:
    from markdown.extensions.toc import slugify

    return slugify(title, "-")


def to_markdown(sections: list[Section], title: str) -> str:
    parts = [f"# {title}", "", "Contents:", ""]
    parts += [f"{k}. [{s.title}](#{slug(s.title)})" + (" (incomplete: see the notes)" if s.notes else "")
              for k, s in enumerate(sections, 1)]
    parts.append("")
    for section in sections:
        parts += [f"## {section.title}", ""] + [b + "\n" for b in section.blocks]
    return "\n".join(parts).rstrip() + "\n"


STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.86em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; vertical-align: top; }
th { background: #eef0f3; }
tr:nth-child(even) td { background: #f8f9fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.88em; color: #555; margin-top: 0.3em; }
blockquote { border-left: 4px solid #d9822b; margin: 0.8em 0; padding: 0.3em 0.8em; background: #fff8f0; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
code { background: #f3f3f3; padding: 0 0.2em; font-size: 0.92em; }
"""

NUMBER = re.compile(r"^[-+−]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?( ?%)?(\s*(\[|±|\().*)?$")


def _embed(match: re.Match, figures: Path) -> str:
    alt, src = html.unescape(match.group("alt")), html.unescape(match.group("src"))
    link = Path(src)
    path = figures / link.name if link.parent == FIGURES.relative_to(REPORTS) else REPORTS / link
    if src.startswith(("http:", "https:", "/")) or ".." in link.parts or not path.is_file():
        return f'<p class="missing">[image not embedded: {html.escape(src)} is missing]</p>'
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
            ".gif": "image/gif"}.get(path.suffix.lower(), "application/octet-stream")
    data = base64.b64encode(path.read_bytes()).decode()
    caption = match.group("caption")
    image = f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>" if caption else f"<figure>{image}</figure>"


def to_html(markdown_text: str, title: str, figures: Path) -> str:
    """The Markdown as one self-contained HTML page: tables as <table>, images as data URIs in <figure>s.

    Args:
        figures: where the report's own figures are now (their links name ``reports/report_figures/``).
    """
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "toc"], output_format="html")
    body = re.sub(r'<p><img alt="(?P<alt>[^"]*)" src="(?P<src>[^"]+)"\s*/?></p>'
                  r'(?:\s*<p><em>Figure: (?P<caption>.*?)</em></p>)?',
                  lambda m: _embed(m, figures), body, flags=re.S)
    body = re.sub(r'<img [^>]*src="(?!data:)[^"]*"[^>]*>', '<span class="missing">[image not embedded]</span>', body)

    def numeric(match: re.Match) -> str:
        attrs, content = match.group(1), match.group(2)
        if NUMBER.match(html.unescape(content).strip()) and "class=" not in attrs:
            attrs = re.sub(r'\s*style="text-align: right;"', "", attrs) + ' class="num"'
        return f"<td{attrs}>{content}</td>"

    body = re.sub(r"<td([^>]*)>(.*?)</td>", numeric, body, flags=re.S)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")

"""Build the report from what the stages wrote: ``reports/report.md`` and ``reports/report.html``.

Sections follow the paper: the dataset and its long tail (fig. 1a), identities (fig. 6), the AU knowledge
base (fig. 7), prompts and hallucinations (supp. G), the policy (fig. 8), generated clips (fig. 3),
recognition (table 2), generation metrics (tables 1, 8), ablations (tables 3, 4, 5). Each section is built
from its stage's files; a section whose input is missing or unreadable is kept, with a note in its place
saying which file, why, and the command that makes it. The report holds no time stamp: the same inputs give
the same bytes. Images are linked by relative path in the Markdown and embedded as data URIs in the HTML.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Where the report and the figures it draws itself go (all paths in the Markdown are relative to REPORTS).
REPORTS = Path("reports")
FIGURES = REPORTS / "report_figures"

#: Which stage writes what the report reads: the hint of a missing input's note.
MAKERS = {"decompose": "decompose", "identities": "identities", "au_kb": "au_kb", "prompts": "prompts",
          "policy": "policy", "rewards": "rewards", "generate": "generate", "generated": "generate",
          "recognition": "recognition", "recognize": "recognize", "evaluate": "evaluate"}


class MissingInput(Exception):
    """An input the section needs is not there (the stage that writes it has not run)."""


@dataclass
class Section:
    """One section of the report: a title and Markdown blocks."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, *lines: str) -> None:
        self.blocks.append("\n".join(lines))

    def image(self, path: Path, caption: str, link: Path | None = None) -> None:
        """An image at ``path``, linked as ``link`` (default: ``path``) relative to ``reports/``."""
        if not path.is_file():
            self.blocks.append(missing_note(str(path)))
            return
        self.blocks.append(f"![{caption}]({(link or path).relative_to(REPORTS).as_posix()})\n\n*{caption}*")


def _maker(path: str) -> str:
    for part in Path(path).parts[::-1]:
        stem = Path(part).stem
        if stem in MAKERS:
            return MAKERS[stem]
    return ""


def missing_note(path: str) -> str:
    """The in-place note of a missing input."""
    stage = _maker(path)
    hint = f": stage `{stage}` has not run (`dvc repro {stage}`)" if stage else ""
    return f"> **Not available.** `{path}` is missing{hint}."


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise MissingInput(str(path))
    return json.loads(path.read_text())


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInput(str(path))
    return pd.read_csv(path)


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists():
        raise MissingInput(str(path))
    return pd.read_parquet(path, columns=columns)


def included_markdown(path: Path, demote: int = 1) -> str:
    """A Markdown file of another stage, its first H1 dropped and its headings demoted by ``demote``."""
    if not path.is_file():
        raise MissingInput(str(path))
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(("#" * demote + line) if line.startswith("#") else line for line in lines).strip()


def table_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (floats rounded)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "n/a" if not np.isfinite(value) else f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
        if isinstance(value, (list, tuple, np.ndarray)):
            return ", ".join(str(v) for v in value)
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


# --- Sections ---------------------------------------------------------------------------------------------

def summary_section(params) -> Section:
    s = Section("Run")
    data, ard = params.data, params.ard
    rows = [("dataset", f"{data.source} at `{data.root}`" + (f", fold {data.fold}" if data.source in ("demo", "dfew")
                                                              else "")),
            ("scarce emotions", ", ".join(params.decompose.scarce_classes)),
            ("AU backend", params.extract_aus.backend),
            ("prompts", f"{params.asi.mode} ({params.asi.backend})"),
            ("generator", ard.generator + (f" (`{ard.t2v_path}`)" if ard.generator == "ti2v" else "")),
            ("policy", f"{ard.policy}; λ = {ard.lambda_:g}, w_Q/w_F/w_E = {ard.weight_quality:g}/{ard.weight_face:g}/"
                       f"{ard.weight_expression:g}, guidance {ard.guidance_form}"),
            ("recognition", f"{', '.join(params.recognize.models)} × {', '.join(params.recognize.variants)}, "
                            f"seeds {params.recognize.seeds}"),
            ("FVD detector", params.evaluate.i3d_path or "none supplied (evaluate.i3d_path)"),
            ("seed", str(params.seed))]
    s.text("What produced this report (from `params.yaml`).", "",
           table_markdown(pd.DataFrame(rows, columns=["setting", "value"])))
    return s


def dataset_section() -> Section:
    s = Section("Dataset and its long tail (fig. 1a)")
    counts = read_csv(REPORTS / "decompose/class_counts.csv")
    metrics = read_json(REPORTS / "decompose/metrics.json")
    s.text(f"{metrics.get('n_clips', 'n/a')} usable clips, {metrics.get('n_skipped', 'n/a')} items skipped "
           f"(`data/interim/decompose_skipped.parquet` lists them with reasons). Clips per emotion and split:", "",
           table_markdown(counts))
    s.image(REPORTS / "decompose/class_distribution.png", "Clips per emotion (the scarce classes marked)")
    return s


def identities_section() -> Section:
    s = Section("Identity frames (fig. 6)")
    metrics = read_json(REPORTS / "identities/metrics.json")
    reasons = metrics.get("rejection_reasons", {})
    s.text(f"{metrics.get('selected', 'n/a')} identity frames selected from {metrics.get('sources', 'n/a')} neutral "
           f"clips; {metrics.get('rejected', 'n/a')} rejected. Mean AU intensity of the selected frames: "
           f"{metrics.get('mean_au_of_selected', 'n/a')}.")
    if reasons:
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        s.text("Most common rejection reasons:", "",
               table_markdown(pd.DataFrame(top, columns=["reason (frames of the clip)", "clips"])))
    s.image(REPORTS / "identities/grid.png", "Selected identity frames with their quality figures")
    return s


def knowledge_base_section() -> Section:
    s = Section("AU knowledge base (fig. 7)")
    kb = read_parquet(Path("data/interim/au_kb.parquet"))
    shown = kb.assign(aus=kb.aus.map(lambda a: " + ".join(f"AU{int(x):02d}" for x in a)),
                      support=kb.support_fraction.round(2))[["emotion", "kind", "source", "aus", "support"]]
    s.text(f"{len(kb)} entries for {kb.emotion.nunique()} scarce emotions: EMFACS prototypes and their variants "
           "from the literature, and AU combinations seen in the dataset's scarce clips (support = share of the "
           "emotion's clips).", "", table_markdown(shown))
    s.image(REPORTS / "au_kb/au_distribution.png", "AU activation per scarce emotion in the dataset")
    return s


def prompts_section() -> Section:
    s = Section("Prompts and hallucinations (supp. G)")
    metrics = read_json(REPORTS / "prompts/metrics.json")
    rows = []
    for mode in ("vlm_rag", "vlm_only"):
        m = metrics.get(mode)
        if m:
            rows.append((mode, m.get("prompts"), m.get("hallucination_rate"), m.get("hallucinated_au_rate"),
                         m.get("format_failure_rate"), m.get("au_f1")))
    s.text(f"Mode `{metrics.get('mode')}`, backend `{metrics.get('backend')}`. First-attempt verification against "
           "the knowledge base, with retrieval (`vlm_rag`) and without (`vlm_only`):")
    if rows:
        s.text("", table_markdown(pd.DataFrame(rows, columns=["mode", "prompts", "hallucinated prompts",
                                                               "hallucinated AUs", "format failures", "AU F1"])))
    else:
        s.text("", "> Fixed prompts: nothing is composed, so nothing is verified.")
    s.text("", included_markdown(REPORTS / "prompts/examples.md", demote=2))
    return s


def policy_figure(path: Path) -> None:
    """Fig. 8: the policy's loss and rewards per step, from the DVCLive logs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    live = REPORTS / "policy/live/plots/metrics/train"
    curves = {name: read_csv_tsv(live / f"{name}.tsv") for name in ("loss", "raw_reward", "shaped_reward")}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, (name, frame) in zip(axes, curves.items()):
        ax.plot(frame.step, frame[name], lw=0.8)
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)


def read_csv_tsv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise MissingInput(str(path))
    return pd.read_csv(path, sep="\t")


def policy_section(figures: Path) -> Section:
    s = Section("The policy (fig. 8) and its held-out comparison")
    metrics = read_json(REPORTS / "policy/metrics.json")
    heldout = pd.DataFrame(metrics.get("heldout", {})).T.reset_index().rename(columns={"index": "policy"})
    keep = [c for c in ("policy", "reward", "reward_se", "R_S", "R_Q", "R_F", "R_E", "R_A", "model_calls")
            if c in heldout]
    verdict = metrics.get("learned_minus_best_fixed", {})
    s.text(f"Mean total reward on the validation pairs ({metrics.get('pairs', {})}) for the learned policy and "
           f"its references. Learned − best fixed action ({metrics.get('best_fixed_action')}): {verdict}; "
           f"beats it beyond noise: {metrics.get('learned_beats_best_fixed')}.", "", table_markdown(heldout[keep]))
    policy_figure(figures / "policy_curves.png")
    s.image(figures / "policy_curves.png", "Policy training: loss, raw and shaped reward per step (fig. 8)",
            FIGURES / "policy_curves.png")
    s.image(REPORTS / "policy/comparison.png", "Held-out comparison of policies")
    s.image(REPORTS / "rewards/actions.png", "The reward table: each component per action")
    return s


def generated_section(per_emotion: int, figures: Path) -> Section:
    """Fig. 3: generated clips of each scarce emotion with identity cue, prompt and action."""
    import cv2

    from argen.ard.preview import contact_sheet

    s = Section("Generated clips (fig. 3)")
    index = read_parquet(Path("data/generated/index.parquet"))
    metrics = read_json(REPORTS / "generate/metrics.json")
    ok = index[index.status.str.startswith("ok")]
    s.text(f"{metrics.get('clips')} clips generated ({metrics.get('failed')} failed), per emotion "
           f"{metrics.get('per_class')}; actions chosen {metrics.get('actions')}.")
    rows = []
    for _, group in ok.groupby("emotion", sort=True):
        for clip in group.head(per_emotion).itertuples(index=False):
            frames = np.stack([cv2.imread(str(Path(clip.frames_dir) / name)) for name in clip.frames])
            rows.append((f"{clip.emotion} | {clip.identity_id} | T*={clip.T} (a*,b*)=({clip.a:g},{clip.b:g}) | "
                         f"{clip.prompt}", frames))
    if rows:
        n = len(rows[0][1])
        shown = sorted({int(round(f)) for f in np.linspace(1, n, 4)})
        contact_sheet(rows, shown, figures / "generated.png")
        s.image(figures / "generated.png", f"Generated clips, frames {', '.join(map(str, shown))}: emotion, identity, "
                                           "chosen action and the prompt (its identity cue first)",
                FIGURES / "generated.png")
    return s


def recognition_section() -> Section:
    s = Section("Recognition (table 2)")
    s.text(included_markdown(REPORTS / "recognition/table.md", demote=2))
    for path in sorted((REPORTS / "recognize").glob("*/confusion.png")):
        s.image(path, f"Confusion matrix: {path.parent.name}")
    evidence = REPORTS / "evidence/table.md"
    if evidence.is_file():
        s.text("", "### Multi-fold evidence (`configs/evidence.yaml`)", "", included_markdown(evidence, demote=2))
    return s


def generation_section(params) -> Section:
    s = Section("Generation metrics (tables 1, 8)")
    metrics = read_json(REPORTS / "evaluate/metrics.json")
    fvd = metrics.get("fvd", {})
    if not fvd.get("computed"):
        s.text(f"> **FVD, sFVD and tFVD not computed.** {fvd.get('reason', 'no I3D weights')}. Supply them in "
               "`params.yaml` (`evaluate.i3d_path`) and run `dvc repro evaluate`.")
    s.text("", included_markdown(REPORTS / "evaluate/tables.md", demote=2))
    s.image(REPORTS / "evaluate/grid.png", "Ground truth: the real clip, ARGen's clip from its first frame and label, "
                                           "and the floor (fig. 9)")
    return s


def ablations_section() -> Section:
    s = Section("Ablations (tables 3, 4, 5)")
    path = REPORTS / "ablations/comparison.md"
    if not path.is_file():
        s.text("> **Not run.** `reports/ablations/comparison.md` is missing: queue the experiments with "
               "`python -m argen.ablations queue`, run them with `dvc queue start -j N`, then "
               "`python -m argen.ablations table`.")
        return s
    s.text(included_markdown(path, demote=1))
    return s


def build_sections(params, figures: Path) -> list[Section]:
    """Every section; one whose input is missing or unreadable holds a note instead.

    Args:
        figures: folder to draw the report's own figures in (linked as ``reports/report_figures/``).
    """
    makers: list[tuple[str, Callable[[], Section]]] = [
        ("Run", lambda: summary_section(params)),
        ("Dataset and its long tail (fig. 1a)", dataset_section),
        ("Identity frames (fig. 6)", identities_section),
        ("AU knowledge base (fig. 7)", knowledge_base_section),
        ("Prompts and hallucinations (supp. G)", prompts_section),
        ("The policy (fig. 8) and its held-out comparison", lambda: policy_section(figures)),
        ("Generated clips (fig. 3)", lambda: generated_section(params.report.clips_per_emotion, figures)),
        ("Recognition (table 2)", recognition_section),
        ("Generation metrics (tables 1, 8)", lambda: generation_section(params)),
        ("Ablations (tables 3, 4, 5)", ablations_section),
    ]
    sections = []
    for title, make in makers:
        try:
            sections.append(make())
        except MissingInput as missing:
            sections.append(Section(title, [missing_note(str(missing))]))
        except (ValueError, KeyError, OSError) as err:  # json/csv/parquet that does not parse
            sections.append(Section(title, [f"> **Unreadable input.** {type(err).__name__}: {err}"]))
    return sections


def to_markdown(sections: list[Section], title: str) -> str:
    parts = [f"# {title}", "", "Contents: " + " · ".join(s.title for s in sections), ""]
    for section in sections:
        parts += [f"## {section.title}", ""] + [b + "\n" for b in section.blocks]
    return "\n".join(parts).rstrip() + "\n"


STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.55em; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; }
blockquote { border-left: 4px solid #d9822b; margin: 0.8em 0; padding: 0.3em 0.8em; background: #fff8f0; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
em { color: #555; }
"""


def to_html(markdown_text: str, title: str, figures: Path) -> str:
    """The Markdown as one self-contained HTML page: tables as <table>, images as data URIs.

    Args:
        figures: where the report's own figures are now (their links name ``reports/report_figures/``).
    """
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")

    def embed(match: re.Match) -> str:
        link = Path(match.group(2))
        path = figures / link.name if link.parent == FIGURES.relative_to(REPORTS) else REPORTS / link
        data = base64.b64encode(path.read_bytes()).decode()
        return f'{match.group(1)}"data:image/png;base64,{data}"'

    body = re.sub(r'(<img [^>]*src=)"([^"]+\.png)"', embed, body)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")

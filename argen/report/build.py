"""Build the report from what the stages wrote: ``reports/report.md`` and ``reports/report.html``.

Sections follow the paper after the outcome: the outcome and what produced it (:mod:`argen.report.outcome`),
the run, the dataset and its long tail (fig. 1a), identities (fig. 6), the AU knowledge base (fig. 7),
prompts and hallucinations (supp. G) (:mod:`argen.report.pipeline_sections`); the policy and the training
curves (fig. 8), generated clips beside real and oracle clips (fig. 3), recognition (table 2), generation
metrics (tables 1, 4, 5, 8), ablations (tables 3, 4, 5) (:mod:`argen.report.result_sections`). Each section
is built from its stage's files and names them, with the backends and N behind its tables. A section whose
input is missing or unreadable is kept, with a note in its place naming the file, why, and the command that
makes it (:mod:`argen.report.inputs`): the report never stops on a missing or malformed input.

The report holds no time stamp and no git state: the same inputs give the same bytes. Its own figures are
JPEGs at display size (:mod:`argen.report.figures`); the HTML embeds every image as a data URI, re-encoded
as a JPEG at display size where the stage's PNG is larger (:mod:`argen.report.page`), so the page makes
no request, needs no script, and stays small.

Paths are relative to the working directory (the project root), as in every stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from argen.report.inputs import FIGURES, REPORTS
from argen.report.outcome import outcome_section
from argen.report.page import to_html
from argen.report.pipeline_sections import dataset_section, identities_section, knowledge_base_section, \
    prompts_section, summary_section
from argen.report.result_sections import ablations_section, generated_section, generation_section, \
    policy_section, recognition_section
from argen.report.section import Section, excerpt

__all__ = ["FIGURES", "REPORTS", "REPORT_INPUTS", "SECTIONS", "SECTION_TITLES", "build_sections", "to_html",
           "to_markdown"]

log = logging.getLogger("argen.report")

#: Every file or folder the report reads, in the order of its sections: the dvc stage's deps (after the stage
#: script and this package). ``reports/evidence`` and ``reports/ablations`` are committed results written outside
#: ``dvc repro`` (the evidence run; ``python -m argen.ablations table``); a missing one is a note, not an error.
REPORT_INPUTS: tuple[str, ...] = (
    "reports/decompose",
    "data/interim/clips.parquet",
    "reports/identities",
    "data/interim/au_kb.parquet",
    "reports/au_kb",
    "data/interim/prompts.parquet",
    "reports/prompts",
    "reports/motion_model",
    "reports/generator",
    "reports/rewards",
    "reports/policy",
    "reports/generate",
    "data/generated",
    "data/oracle",
    "reports/recognition",
    "reports/recognize",
    "reports/evaluate",
    "reports/evidence",
    "reports/ablations",
)


#: The sections in reading order: (title, builder(params, figures, section)).
SECTIONS: list[tuple[str, Callable]] = [
    ("Outcome", lambda p, f, s: outcome_section(p, s)),
    ("Run summary", lambda p, f, s: summary_section(p, s)),
    ("Dataset and class distribution (fig. 1a)", lambda p, f, s: dataset_section(p, s)),
    ("Identities (fig. 6)", lambda p, f, s: identities_section(p, s)),
    ("AU knowledge base and AU distributions (fig. 7)", lambda p, f, s: knowledge_base_section(p, s)),
    ("Prompts and hallucinations (supp. G)", lambda p, f, s: prompts_section(p, s)),
    ("Policy (fig. 8)", lambda p, f, s: policy_section(p, f, s)),
    ("Generated clips (fig. 3)", lambda p, f, s: generated_section(p, f, s)),
    ("Recognition (table 2)", lambda p, f, s: recognition_section(p, f, s)),
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
    """The title, the first section (the outcome: on the first screen), the contents, then the other sections."""
    def body(section: Section) -> list[str]:
        return [f"## {section.title}", ""] + [b + "\n" for b in section.blocks]

    parts = [f"# {title}", ""] + body(sections[0]) + ["Contents:", ""]
    parts += [f"{k}. [{s.title}](#{slug(s.title)})" + (" (incomplete: see the notes)" if s.notes else "")
              for k, s in enumerate(sections, 1)]
    parts.append("")
    for section in sections[1:]:
        parts += body(section)
    return "\n".join(parts).rstrip() + "\n"


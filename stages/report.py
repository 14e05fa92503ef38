"""Stage ``report``: ``reports/report.md`` and the self-contained ``reports/report.html``.

Reads every stage's report files, ``data/interim/au_kb.parquet``, ``data/interim/prompts.parquet`` and
``data/generated`` (see :data:`argen.report.build.REPORT_INPUTS`), the committed ``reports/evidence/`` (the
multi-fold recognition run) and the committed ``reports/ablations/comparison.md`` (written outside ``dvc repro``
by ``python -m argen.experiments.ablations table``; both are dvc deps because they are in git, and read only if present). Draws
its own figures into ``reports/report_figures/`` (the policy's curves, the generated-clip grid of fig. 3).
A section whose input is missing or malformed says so in place; the same inputs give the same bytes. See
:mod:`argen.report.build`.
"""

import logging

from argen.io import staged_outputs
from argen.params import Params
from argen.report.build import FIGURES, REPORTS, build_sections, to_html, to_markdown
from argen.stage import run_stage

log = logging.getLogger("argen.stages.report")


def main(params: Params) -> None:
    with staged_outputs() as out:
        figures = out.path(FIGURES)
        figures.mkdir()
        sections = build_sections(params, figures)
        text = to_markdown(sections, params.report.title)
        out.path(REPORTS / "report.md").write_text(text)
        out.path(REPORTS / "report.html").write_text(to_html(text, params.report.title, figures))
    incomplete = [s.title for s in sections if s.notes]
    log.info("report: %d sections%s", len(sections),
             f"; with notes of missing or unreadable inputs: {incomplete}" if incomplete else ", all complete")


if __name__ == "__main__":
    run_stage(main)

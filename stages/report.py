"""Stage ``report``: ``reports/report.md`` and the self-contained ``reports/report.html``.

Reads every stage's report files (and ``data/interim/au_kb.parquet``, ``data/generated``), plus the committed
``reports/evidence/`` (the multi-fold recognition run) and ``reports/ablations/`` (the ablation experiments'
comparison, ``python -m argen.ablations table``). Draws its own figures into ``reports/report_figures/``
(the policy's curves, the generated-clip grid). A section whose input is missing says so in place; see
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
    missing = [s.title for s in sections if any(b.startswith("> **Not available") or b.startswith("> **Unreadable")
                                                for b in s.blocks)]
    log.info("report: %d sections, %s", len(sections), f"incomplete: {missing}" if missing else "all complete")


if __name__ == "__main__":
    run_stage(main)

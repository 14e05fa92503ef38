"""Markdown tables for the stages' reports, one builder for all of them.

A Markdown table with a header and no rows renders as an empty table (python-markdown even draws one blank
row), which a reader takes for a broken report. Every table goes through :func:`markdown_table`, which
writes the caller's note saying why there is nothing to show instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], empty: str,
          align: Sequence[str] | None = None) -> list[str]:
    """The lines of a Markdown table, or the single italic line ``empty`` when there are no rows.

    Args:
        header: the column names.
        rows: the cells of each row (``str()`` is applied; the caller formats numbers and escapes pipes).
        empty: why there are no rows, written in place of the table (required: say it, do not leave a gap).
        align: one rule per column (``"---"``, ``"---:"``); left-aligned when omitted.
    """
    if not empty.strip():
        raise ValueError("an empty table needs a note saying why it is empty")
    align = list(align) if align is not None else ["---"] * len(header)
    if len(align) != len(header):
        raise ValueError(f"{len(align)} alignment rules for {len(header)} columns")
    body = []
    for row in rows:
        cells = [str(c) for c in row]
        if len(cells) != len(header):
            raise ValueError(f"a row of {len(cells)} cells under {len(header)} columns: {cells}")
        body.append("| " + " | ".join(cells) + " |")
    if not body:
        return [f"_{empty.strip()}_"]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |", *body]

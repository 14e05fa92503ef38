"""A report section as Markdown blocks, and the Markdown pieces the sections are written with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from argen.markdown import markdown_table
from argen.report.inputs import REPORTS, MissingInput, UnreadableInput, missing_note, unreadable_note

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



def is_empty(value) -> bool:
    """No value: None, NaN, "" or "n/a"."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not np.isfinite(value)
    return str(value).strip() in ("", "n/a", "nan", "None")


def drop_empty_columns(frame: pd.DataFrame, keep: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """The frame without its columns that hold no value in any row (``keep`` stays); and the dropped names."""
    empty = [c for c in frame.columns if c not in keep and all(is_empty(v) for v in frame[c])]
    return frame.drop(columns=empty), empty


def mark_identical_rows(frame: pd.DataFrame, label: str, what: str = "") -> pd.DataFrame:
    """Rows whose values equal an earlier row's are said to be the same instead of repeated.

    The first value cell of such a row reads "same as <label of the first>" (+ ``what``, e.g. ": the same
    clips") and the rest are left blank, so the reader sees at once which rows do not differ.
    """
    values = [c for c in frame.columns if c != label]
    if not values:
        return frame
    out = frame.astype(object).copy()
    seen: dict[tuple, str] = {}
    for index, row in frame.iterrows():
        key = tuple(cell(row[c]) for c in values)
        if key in seen:
            out.loc[index, values] = [f"same as {seen[key]}{what}"] + [""] * (len(values) - 1)
        else:
            seen[key] = str(row[label])
    return out

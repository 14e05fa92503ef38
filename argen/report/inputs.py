"""What the report reads: its input paths, readers that never raise a parser's error, and the in-place notes.

Every reader raises :class:`MissingInput` or :class:`UnreadableInput`; a section turns either into a note
naming the file, why, and the command that makes it (:meth:`argen.report.section.Section.attempt`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from argen.intervals import flag_intervals
from argen.paths import REPORTS

#: Where the report and the figures it draws itself go (all paths in the Markdown are relative to REPORTS).
FIGURES = REPORTS / "report_figures"

#: The stage that writes a top-level folder or file the report reads: the hint of a missing input's note.
MAKERS = {"decompose": "decompose", "identities": "identities", "au_kb": "au_kb", "prompts": "prompts",
          "policy": "policy", "rewards": "rewards", "generate": "generate", "generated": "generate",
          "recognition": "recognition", "recognize": "recognize", "evaluate": "evaluate", "clips": "decompose",
          "oracle": "oracle", "motion_model": "motion_model", "generator": "preview"}


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


#: A numpy scalar's repr (``np.int64(1)``), as tables committed by older code print lists of numpy values.
NUMPY_SCALAR = re.compile(r"\bnp\.(?:u?int|float|bool_|str_)\w*\(([^()]*)\)")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def drop_empty_table_columns(lines: list[str]) -> list[str]:
    """Markdown tables without their columns whose body cells are all empty (or n/a)."""
    out, k = [], 0
    while k < len(lines):
        if not (lines[k].startswith("|") and k + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[k + 1])):
            out.append(lines[k])
            k += 1
            continue
        end = k + 2
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        rows = [_cells(line) for line in lines[k:end]]
        width = len(rows[0])
        keep = [j for j in range(width) if any(len(r) != width or r[j] not in ("", "n/a") for r in rows[2:])]
        if len(keep) == width or not keep or any(len(r) != width for r in rows):
            out += lines[k:end]
        else:
            out += ["| " + " | ".join(r[j] for j in keep) + " |" for r in rows]
        k = end
    return out


def read_markdown(path: Path, demote: int = 1) -> str:
    """A Markdown file of another stage, verbatim but for its first H1 (dropped), headings (demoted), numpy
    scalar reprs (``np.int64(1)`` -> ``1``), table columns without a value, and intervals that are degenerate or miss their point (flagged:
    :func:`argen.intervals.flag_intervals`), as committed tables of older code print them."""
    if not path.is_file():
        raise MissingInput(path)
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise UnreadableInput(path, err) from None
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    lines = drop_empty_table_columns([flag_intervals(NUMPY_SCALAR.sub(r"\1", line)) for line in lines])
    return "\n".join(("#" * demote + line) if line.startswith("#") else line for line in lines).strip()


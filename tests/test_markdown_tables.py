"""Every report table goes through one builder, which never writes a table without rows."""

from __future__ import annotations

import markdown
import numpy as np
import pandas as pd
import pytest

from argen.evaluate.results import au_f1_table, distance_table, diversity_table
from argen.markdown import markdown_table
from argen.recognize.summary import markdown as recognition_markdown
from argen.report.section import table_markdown


def html_tables(lines: list[str] | str) -> list[int]:
    """Rows (header included) of each table the Markdown renders to, as the report's HTML would."""
    text = lines if isinstance(lines, str) else "\n".join(lines)
    html = markdown.markdown(text, extensions=["tables"])
    return [table.count("<tr") for table in html.split("<table>")[1:]]


def test_rows_give_a_table_and_no_rows_give_the_note() -> None:
    assert markdown_table(["a", "b"], [[1, "x"]], "none", ["---:", "---"]) == \
        ["| a | b |", "| ---: | --- |", "| 1 | x |"]
    assert markdown_table(["a", "b"], [], "Nothing to show.") == ["_Nothing to show._"]
    assert html_tables(markdown_table(["a", "b"], [], "Nothing to show.")) == []


def test_a_missing_note_or_a_ragged_row_is_an_error() -> None:
    with pytest.raises(ValueError, match="note"):
        markdown_table(["a"], [], " ")
    with pytest.raises(ValueError, match="2 cells under 1 columns"):
        markdown_table(["a"], [[1, 2]], "none")
    with pytest.raises(ValueError, match="alignment"):
        markdown_table(["a"], [[1]], "none", ["---", "---"])


def test_the_au_f1_table_of_fixed_prompts_is_a_note_not_an_empty_table() -> None:
    """The CI failure: fixed prompts cite no AU, so there are no F1 rows and no judge."""
    lines = au_f1_table(pd.DataFrame(columns=["set", "clip_id", "emotion", "f1"]), None, "caption")
    assert html_tables(lines) == []
    assert any("no prompt cites an Action Unit" in line for line in lines)


def test_the_judges_emotions_are_shown_without_f1_rows() -> None:
    judge = pd.DataFrame({"emotion": ["fear"], "share": [0.5], "low": [0.2], "high": [0.8], "clips": [4]})
    lines = au_f1_table(pd.DataFrame(columns=["set", "clip_id", "emotion", "f1"]), judge, "caption")
    assert html_tables(lines) == [2]
    assert "| fear | n/a | n/a | n/a | 50.0 % [20.0, 80.0] (4) |" in lines


def test_every_table_builder_writes_a_note_for_no_rows() -> None:
    empty_builders = {
        "distance": distance_table("FD", {}, {}, {}, ("tfd",), "caption"),
        "diversity": diversity_table({"au": "AU FD"}, {"argen": {}}, "caption"),
        "report frame": table_markdown(pd.DataFrame(columns=["x", "y"]), "No rows here."),
        "recognition": recognition_markdown(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ["WAR"], "demo"),
    }
    for name, lines in empty_builders.items():
        assert html_tables(lines) == [], name


def test_report_frames_right_align_numbers() -> None:
    text = table_markdown(pd.DataFrame({"name": ["a"], "value": [np.float64(1.5)]}), "none")
    assert text.splitlines()[1] == "| --- | ---: |"

"""Pieces of the evaluation protocol (argen.evaluate.protocol) on hand-made rows, without DVC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.evaluate.protocol import au_f1_rows, aus_by_clip


def frames(clip_id: str, intensities: list[dict[int, float]], success: list[bool]) -> pd.DataFrame:
    rows = []
    for m, (values, ok) in enumerate(zip(intensities, success)):
        row = {"clip_id": clip_id, "frame": m, "success": ok}
        row.update({column: values.get(au, 0.0) for au, column in zip(INTENSITY_AUS, INTENSITY_COLUMNS)})
        rows.append(row)
    return pd.DataFrame(rows)


def test_aus_by_clip_orders_frames_and_blanks_those_without_a_face() -> None:
    table = frames("c", [{12: 1.0}, {12: 2.0}, {12: 3.0}], [True, False, True]).iloc[[2, 0, 1]]
    aus = aus_by_clip(table)["c"]
    column = INTENSITY_AUS.index(12)
    assert aus.shape == (3, len(INTENSITY_AUS))
    assert aus[0, column] == 1.0 and np.isnan(aus[1]).all() and aus[2, column] == 3.0


def test_au_f1_rows_score_the_prompts_aus_and_leave_out_prompts_citing_none() -> None:
    table = pd.concat([frames("smile", [{12: 3.0, 6: 2.5}] * 2, [True, True]),
                       frames("blank", [{}] * 2, [True, True])])
    rows = au_f1_rows("argen", ["smile", "blank", "none"], ["happy", "happy", "happy"],
                      ["cheeks raised (AU6), lips pulled (AU12)", "lips pulled (AU12)", "a happy face"], table, 1.5)
    assert [r["clip_id"] for r in rows] == ["smile", "blank"]  # "none" cites no AU
    assert rows[0]["f1"] == pytest.approx(1.0) and rows[1]["f1"] == pytest.approx(0.0)

"""Paper-fidelity details of issue 21 item 5: table 5's reinforce-only row and the evidence table's text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from argen.experiments.ablations import read_config
from argen.experiments.evidence import evidence_source

ROOT = Path(__file__).resolve().parents[1]


def test_reinforce_only_chooses_on_step_count_and_quality_rewards_without_a_curve() -> None:
    """Paper sec. 4.4: "Reinforce-only, lacking a guidance curve, selected step strategies solely based on
    rewards for step count and quality"."""
    shipped = read_config(ROOT / "configs/ablations.yaml")
    overrides = shipped["experiments"]["reinforce_only_no_asi"]
    assert overrides["generator.guidance_form"] == "constant"
    assert overrides["ard.weight_face"] == 0 and overrides["ard.weight_expression"] == 0
    assert overrides.get("ard.weight_quality", 1) != 0 and overrides.get("ard.weight_au", 0) == 0
    table5 = next(t for t in shipped["tables"] if t["paper"] == 5)
    assert "reinforce_only_no_asi" in [row["experiment"] for row in table5["rows"]]


def test_evidence_source_prints_plain_fold_numbers() -> None:
    predictions = pd.DataFrame({"fold": np.array([3, 1, 2, 1], dtype=np.int64)})
    text = evidence_source(predictions, 400, [0, 1], {"ev-fold2": "b", "ev-fold1": "a"})
    assert "folds [1, 2, 3] pooled" in text and "np.int64" not in text
    assert text.endswith("seeds [0, 1]; experiments ev-fold1, ev-fold2")

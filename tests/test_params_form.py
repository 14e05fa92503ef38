"""``params.yaml`` is kept in the form ``dvc exp run -S`` writes it, so an experiment changes only its values.

DVC applies ``-S`` overrides with ``dvc.utils.hydra.apply_overrides``: it loads the file with ruamel (comments
kept), merges the new values and dumps every list in block style. A file already in that form comes back
byte for byte; an experiment's ``params.yaml`` then differs from the committed one only where a value changed.
To put an edited params.yaml back in that form::

    python -c "from dvc.utils.hydra import apply_overrides; apply_overrides('params.yaml', [])"

(then end each section with a scalar key, not a list, or DVC drops the blank line before the next section).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dvc.utils.hydra import apply_overrides

ROOT = Path(__file__).resolve().parents[1]


def dvc_dump(tmp_path: Path, overrides: list[str]) -> tuple[list[str], list[str]]:
    """The committed params.yaml's lines, and those of a copy after DVC applied ``overrides``."""
    copy = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", copy)
    apply_overrides(copy, overrides)
    return (ROOT / "params.yaml").read_text().splitlines(), copy.read_text().splitlines()


def test_dvcs_own_dump_of_params_yaml_changes_nothing(tmp_path: Path) -> None:
    before, after = dvc_dump(tmp_path, [])
    assert after == before, "params.yaml is not in DVC's form: see this module's docstring"


def test_an_experiment_changes_only_the_lines_of_its_values(tmp_path: Path) -> None:
    before, after = dvc_dump(tmp_path, ["seed=7", "ard.lambda=1.0", "generate.fixed_action=[5,2.0,3.0]"])
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after), "an experiment moved lines"
    assert [b.split("#")[0].strip() for _, b in changed] == ["seed: 7", "lambda: 1.0", "- 5", "- 3.0"], changed
    assert all(("#" in a) == ("#" in b) for a, b in changed)  # each comment stays on its key

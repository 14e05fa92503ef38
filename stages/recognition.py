"""Stage ``recognition``: the table of every recognize run (paper table 2) and the recogniser as a judge.

Reads ``recognize`` (models, variants), ``data.fold``, ``decompose.scarce_classes``, every run's
``reports/recognize/<model>-<variant>/predictions.csv``, the ``original`` runs' weights
(``models/recognize/<model>-original``) and the generated sets (``data/interim/tracks``). Writes
``reports/recognition/``:

* ``table.md``: the table in the paper's shape with intervals and support, the differences against
  ``original`` with their intervals, ARGen's share of the oracle's gain (when the oracle ran), and the judge;
* ``table.csv`` (one row per model and variant), ``deltas.csv`` (one row per model and added variant),
  ``judge.csv`` (per model, set and emotion: share of generated clips classified as their target);
* ``metrics.json``: the headline figures for ``dvc metrics diff``.

See :mod:`argen.recognize.summary` for what each figure is.
"""

from argen.params import Params
from argen.recognize.study import run_recognition_stage
from argen.stage import run_stage


def main(params: Params) -> None:
    run_recognition_stage(params)


if __name__ == "__main__":
    run_stage(main)

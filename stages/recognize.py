"""Stage ``recognize@<model>-<variant>``: train one DFER baseline on one training split, test it.

``python stages/recognize.py <model> <variant>``, one cell of the DVC matrix ``recognize.models`` x
``recognize.variants`` (paper sec. 4.1-4.2, table 2). The training split is the dataset's (from
``data/interim/tracks/original.parquet``) plus, for ``argen`` and ``oracle``, every clip of that set; the
test split is always the dataset's. One training run per seed of ``recognize.seeds``.

Writes, for run ``<model>-<variant>``:

* ``models/recognize/<run>/seed_<s>.safetensors`` and ``config.json`` (what the evaluation's judge loads);
* ``reports/recognize/<run>/metrics.json``: WAR, UAR and every class's recall under the paper's names
  (AR-SU, AR-DI, AR-FE ...), each the mean over seeds with its sd, and per seed the support, hits, Wilson
  interval of each recall and the bootstrap intervals of WAR and UAR;
* ``reports/recognize/<run>/predictions.csv`` (clip, seed, label, prediction, probabilities), from which
  the summary pairs variants clip by clip, and ``confusion.png`` (summed over seeds);
* training curves through DVCLive in ``reports/recognize/<run>/live``.
"""

import sys

from argen.params import Params
from argen.recognize.run import run_recognize_stage
from argen.stage import run_stage


def main(params: Params, model_name: str, variant: str) -> None:
    run_recognize_stage(params, model_name, variant)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python stages/recognize.py <model> <variant>")
    run_stage(lambda params: main(params, sys.argv[1], sys.argv[2]))

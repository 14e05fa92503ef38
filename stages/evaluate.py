"""Stage ``evaluate`` (paper tables 1, 4, 5, 8; supp. D): how close ARGen's clips are to real ones.

Reads ``seed``, ``evaluate``, ``asi``, ``generator``, ``generate.policy`` and ``generate.fixed_action``,
``extract_aus``, ``rewards.active_threshold``, ``demo`` and
``data``; the clip table, the knowledge base, the policy and the generator's model; the tracks of the
original, generated (D3) and oracle sets; and the recognition judge. Writes:

* ``data/evaluate/generated/``: one clip per evaluation clip, from its first frame and label
  (:mod:`argen.evaluate.ground_truth`); ``data/evaluate/floor/`` (demo: the renderer's own clips of the same
  subjects and labels); ``data/evaluate/clips.parquet`` (every evaluated clip with its prompt, action and
  the reason it was left out, if it was); ``data/evaluate/features.parquet`` (every feature vector).
  Nothing reads these for training.
* ``reports/evaluate/metrics.json``: per comparison (``ground_truth``, ``augmentation``) and feature space,
  FD / sFD / tFD with N, intervals and warnings, ARGen's and the floor's; ``fvd`` (I3D, or why not);
  ``diversity``; ``au_f1``; the judge.
* ``reports/evaluate/tables.md`` (the report includes it) and ``reports/evaluate/grid.jpg`` (real, ARGen
  and floor clips, frames 1, 6, 11, 16: the paper's fig. 9).
"""

from argen.evaluate.protocol import run_evaluate_stage
from argen.params import Params
from argen.stage import run_stage


def main(params: Params) -> None:
    run_evaluate_stage(params)


if __name__ == "__main__":
    run_stage(main)

"""Stage ``generate`` (Algorithm 1 stage 2): the augmentation set D3.

Reads ``seed``, ``generate`` (with ``generate.policy``: learned, random or fixed), ``generator``, the
identities and prompts, the trained policy (``models/policy``) and the generator's model. Writes
``data/generated/<clip_id>/00001.jpg``... (full-length clips, ``generator.n_frames`` frames at ``generator.size``),
``data/generated/index.parquet`` (one row per clip: the clip table's columns plus identity, prompt,
action, seed, generator, steps run, model calls, policy, status), ``reports/generate/metrics.json`` and
``reports/generate/contact_sheet.jpg``.

Each process generates into ``data/cache/generate/rank_<r>/``; the clips are then moved into place together.
On several GPUs: ``torchrun --nproc_per_node N stages/generate.py`` (rank r makes clips r, r + N, ...;
rank 0 assembles them in the single-process order).
"""

from argen.params import Params
from argen.policy.generate import run_generate_stage
from argen.stage import run_stage


def main(params: Params) -> None:
    run_generate_stage(params)


if __name__ == "__main__":
    run_stage(main)

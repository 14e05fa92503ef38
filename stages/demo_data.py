"""Stage ``demo``: write the synthetic demo dataset (the embedded default) in DFEW's on-disk layout.

Reads ``seed`` and ``demo`` from params.yaml; writes ``data/raw/demo``.
"""


from argen.demo.dataset import write_demo_dataset
from argen.params import Params
from argen.paths import DEMO as OUT
from argen.stage import run_stage



def main(params: Params) -> None:
    write_demo_dataset(OUT, params.demo, params.seed)


if __name__ == "__main__":
    run_stage(main)

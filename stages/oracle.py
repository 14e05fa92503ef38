"""Stage ``oracle``: the recognition study's ceiling, extra scarce clips from the demo's own renderer.

Reads ``seed``, ``demo``, ``data.source`` and ``data/generated/counts.json`` (how many clips per emotion
the ``argen`` variant adds; only the counts, so a generated set with the same counts does not re-run it). Writes ``data/oracle/<clip_id>/1.jpg...`` and ``data/oracle/index.parquet``
(the clip table's columns), one new subject per clip (see :mod:`argen.demo.oracle`). On a real dataset
there is no data-generating process to draw from: the stage writes an empty set and says so, and a
``recognize`` variant ``oracle`` then stops with that message.
"""

import logging

from argen.counts import read_generated_counts
from argen.demo.oracle import render_oracle_set
from argen.io import staged_outputs, write_parquet
from argen.params import Params
from argen.paths import GENERATED_COUNTS, ORACLE as OUT
from argen.stage import provenance, run_stage


log = logging.getLogger("argen.stages.oracle")


def main(params: Params) -> None:
    counts = read_generated_counts(GENERATED_COUNTS) if params.data.source == "demo" else {}
    with staged_outputs() as out:
        folder = out.path(OUT)
        folder.mkdir(parents=True)
        table = render_oracle_set(counts, params.demo, params.seed, folder, OUT)
        meta = provenance("oracle", params, "demo", source=params.data.source, generator="demo renderer")
        write_parquet(table, folder / "index.parquet", metadata=meta)
    if params.data.source != "demo":
        log.warning("data.source is %s: the oracle exists only for the demo (its renderer is the true "
                    "data-generating process); data/oracle is empty. Leave 'oracle' out of recognize.variants",
                    params.data.source)
    else:
        log.info("oracle: %d clips rendered for new subjects, per emotion %s", len(table), counts)


if __name__ == "__main__":
    run_stage(main)

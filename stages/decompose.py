"""Stage ``decompose`` (paper sec. 3.2): index the dataset and split it into D_ns, D_s and D*_ns.

Reads ``seed``, ``data`` and ``decompose`` from params.yaml. Writes
``data/interim/clips.parquet`` (the clip table every later stage reads),
``data/interim/decompose_skipped.parquet`` (every frame or clip left out, with the reason) and
``reports/decompose/`` (class counts as DVC metrics, the counts as a plot table, the distribution figure).
"""

import logging
from pathlib import Path

from argen.datasets import DatasetLayoutError, index_dataset
from argen.decompose import CLIPS_SCHEMA, SKIPS_SCHEMA, class_counts, clip_table, plot_class_distribution, \
    skip_table, summary_metrics
from argen.io import atomic_path, write_json, write_parquet
from argen.params import Params
from argen.stage import provenance, run_stage

CLIPS = Path("data/interim/clips.parquet")
SKIPPED = Path("data/interim/decompose_skipped.parquet")
REPORTS = Path("reports/decompose")

log = logging.getLogger("argen.stages.decompose")


def main(params: Params) -> None:
    index = index_dataset(params.data, params.seed)
    table = clip_table(index, params.data, params.decompose)
    skips = skip_table(index)
    if table.empty:
        raise DatasetLayoutError(f"no usable clip in {params.data.root}; see the skip reasons: "
                         f"{skips.reason.value_counts().head(3).to_dict()}")
    meta = provenance("decompose", params, "data", "decompose", source=params.data.source, root=params.data.root)
    write_parquet(table, CLIPS, CLIPS_SCHEMA, meta)
    write_parquet(skips, SKIPPED, SKIPS_SCHEMA, meta)

    REPORTS.mkdir(parents=True, exist_ok=True)
    write_json(summary_metrics(table, len(skips), params.decompose.scarce_classes), REPORTS / "metrics.json")
    with atomic_path(REPORTS / "class_counts.csv") as tmp:
        class_counts(table).reset_index().to_csv(tmp, index=False)
    with atomic_path(REPORTS / "class_distribution.png") as tmp:
        plot_class_distribution(table, params.decompose.scarce_classes, tmp,
                                f"{params.data.source} (fold {params.data.fold})" if params.data.source in
                                ("demo", "dfew") else params.data.source)
    log.info("%d clips indexed (%d scarce, %d identity sources), %d items skipped", len(table),
             int(table.scarce.sum()), int(table.identity_source.sum()), len(skips))
    for reason, n in skips.reason.str.split(":").str[0].value_counts().items():
        log.info("  skipped %d: %s", n, reason)


if __name__ == "__main__":
    run_stage(main)

"""Stage ``decompose`` (paper sec. 3.2): index the dataset and split it into D_ns, D_s and D*_ns.

Reads ``seed``, ``data`` and ``decompose`` from params.yaml. Writes
``data/interim/clips.parquet`` (the clip table every later stage reads),
``data/interim/decompose_skipped.parquet`` (every entry, frame, line or clip left out, with the reason) and
``reports/decompose/`` (class counts as DVC metrics, the counts as a plot table, the distribution figure).
A configuration without identity sources is logged as a warning and noted in the metrics.
"""

import logging

from argen.datasets import DatasetLayoutError, index_dataset
from argen.decompose import CLIPS_SCHEMA, SKIPS_SCHEMA, class_counts, clip_table, identity_source_warning, \
    plot_class_distribution, skip_table, summary_metrics
from argen.io import staged_outputs
from argen.params import Params
from argen.paths import CLIPS, DECOMPOSE_SKIPPED as SKIPPED, report_dir
from argen.stage import provenance, run_stage

REPORTS = report_dir("decompose")

log = logging.getLogger("argen.stages.decompose")


def main(params: Params) -> None:
    index = index_dataset(params.data, params.seed)
    table = clip_table(index, params.data, params.decompose)
    skips = skip_table(index)
    kinds = skips.reason.str.split(":").str[0].value_counts()
    if table.empty:
        raise DatasetLayoutError(f"no usable clip in {params.data.root}; skip reasons: "
                                 + "; ".join(f"{n} x {reason}" for reason, n in kinds.head(3).items()))
    warning = identity_source_warning(table, params.decompose)
    if warning:
        log.warning("%s", warning)
    metrics = summary_metrics(table, len(skips), params.decompose.scarce_classes) | {"warning": warning or ""}
    meta = provenance("decompose", params, "data", "decompose", source=params.data.source, root=params.data.root)
    title = (f"{params.data.source} (fold {params.data.fold})" if params.data.source in ("demo", "dfew")
             else params.data.source)
    with staged_outputs() as out:
        out.parquet(table, CLIPS, CLIPS_SCHEMA, meta)
        out.parquet(skips, SKIPPED, SKIPS_SCHEMA, meta)
        out.json(metrics, REPORTS / "metrics.json")
        class_counts(table).reset_index().to_csv(out.path(REPORTS / "class_counts.csv"), index=False)
        plot_class_distribution(table, params.decompose.scarce_classes, out.path(REPORTS / "class_distribution.png"),
                                title)
    log.info("%d clips indexed (%d scarce, %d identity sources), %d items skipped", len(table),
             int(table.scarce.sum()), int(table.identity_source.sum()), len(skips))
    for reason, n in kinds.items():
        log.info("  skipped %d: %s", n, reason)


if __name__ == "__main__":
    run_stage(main)

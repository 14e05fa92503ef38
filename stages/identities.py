"""Stage ``identities`` (paper eq. 6, supp. C eq. 22-26): one identity frame per neutral clip of D*_ns.

Reads ``identities``, ``data/interim/clips.parquet`` and ``data/interim/aus.parquet``. Writes
``data/interim/identities/<clip>.png`` (the selected frames, lossless), ``data/interim/identities.parquet``
(per identity: the frame, the figures that admitted it, its AUs and landmarks),
``data/interim/identities_rejected.parquet`` (clips with no admissible frame, with the reason),
``reports/identities/grid.jpg`` and ``reports/identities/metrics.json``.
"""

import logging

from argen.decompose import CLIPS_SCHEMA
from argen.errors import InputError, UserError
from argen.extract import FRAME_COLUMNS
from argen.extract.run import QUALITY_COLUMNS
from argen.identities import identity_grid, select_identities, write_identity_images
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.params import Params
from argen.paths import (
    CLIPS, FRAMES, IDENTITIES as TABLE, IDENTITIES_REJECTED as REJECTED, IDENTITY_IMAGES as IMAGES, report_dir,
)
from argen.stage import provenance, run_stage

REPORTS = report_dir("identities")

log = logging.getLogger("argen.stages.identities")


def main(params: Params) -> None:
    clips = read_table(CLIPS, CLIPS_SCHEMA.names, "decompose")
    sources = clips[clips.identity_source]
    if sources.empty:
        raise InputError(f"{CLIPS} has no identity source (a neutral clip of decompose.identity_splits): "
                         f"see the warning in reports/decompose/metrics.json")
    frames = read_table(FRAMES, [*FRAME_COLUMNS, *QUALITY_COLUMNS], "extract_aus")
    frames = frames[frames.clip_id.isin(sources.clip_id)]
    if frames.empty:
        raise InputError(f"none of the {len(sources)} identity sources has rows in {FRAMES}: extract_aus skipped "
                         f"them all (see data/interim/extract_aus_skipped.parquet)")
    selected, rejected = select_identities(frames, sources, params.identities)
    if selected.empty:
        raise UserError(f"no identity frame admissible in {len(sources)} neutral clips; first reasons: "
                        f"{rejected.reason.head(3).tolist()} (the thresholds are the identities.* params)")
    meta = provenance("identities", params, "identities", au_backend=read_parquet_metadata(FRAMES).get("backend", ""))
    with staged_outputs() as out:
        images = out.path(IMAGES)
        selected["image_file"] = write_identity_images(selected, images)
        out.parquet(selected, TABLE, metadata=meta)
        out.parquet(rejected, REJECTED, metadata=meta)
        identity_grid(selected, images, out.path(REPORTS / "grid.jpg"), params.identities.grid_size)
        reasons = rejected.reason.str.extract(r"among \d+: (.*)")[0].fillna(rejected.reason)
        out.json({"sources": len(sources), "selected": len(selected), "rejected": len(rejected),
                  "mean_au_of_selected": round(float(selected.mean_au.mean()), 4),
                  "mean_admissible_frames": round(float(selected.n_admissible.mean()), 2),
                  "rejection_reasons": reasons.value_counts().head(10).to_dict()}, REPORTS / "metrics.json")
    log.info("%d identities selected from %d neutral clips; %d rejected", len(selected), len(sources), len(rejected))
    for reason, n in rejected.reason.value_counts().head(5).items():
        log.info("  rejected %d: %s", n, reason)


if __name__ == "__main__":
    run_stage(main)

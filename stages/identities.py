"""Stage ``identities`` (paper eq. 6, supp. C eq. 22-26): one identity frame per neutral clip of D*_ns.

Reads ``identities``, ``data/interim/clips.parquet`` and ``data/interim/aus.parquet``. Writes
``data/interim/identities/<clip>.png`` (the selected frames, lossless), ``data/interim/identities.parquet``
(per identity: the frame, the figures that admitted it, its AUs and landmarks),
``data/interim/identities_rejected.parquet`` (clips with no admissible frame, with the reason),
``reports/identities/grid.png`` and ``reports/identities/metrics.json``.
"""

import logging
from pathlib import Path

import pandas as pd

from argen.identities import identity_grid, select_identities, write_identity_images
from argen.io import atomic_path, read_parquet_metadata, write_json, write_parquet
from argen.params import Params
from argen.stage import provenance, run_stage

CLIPS = Path("data/interim/clips.parquet")
FRAMES = Path("data/interim/aus.parquet")
IMAGES = Path("data/interim/identities")
TABLE = Path("data/interim/identities.parquet")
REJECTED = Path("data/interim/identities_rejected.parquet")
REPORTS = Path("reports/identities")

log = logging.getLogger("argen.stages.identities")


def main(params: Params) -> None:
    clips = pd.read_parquet(CLIPS)
    sources = clips[clips.identity_source]
    frames = pd.read_parquet(FRAMES)
    selected, rejected = select_identities(frames[frames.clip_id.isin(sources.clip_id)], sources, params.identities)
    if selected.empty:
        raise FileNotFoundError(f"no identity frame admissible in {len(sources)} neutral clips; reasons: "
                                f"{rejected.reason.head(3).tolist()} (loosen the identities thresholds)")
    with atomic_path(IMAGES) as tmp:
        selected["image_file"] = write_identity_images(selected, tmp)
    meta = provenance("identities", params, "identities", au_backend=read_parquet_metadata(FRAMES).get("backend", ""))
    write_parquet(selected, TABLE, metadata=meta)
    write_parquet(rejected, REJECTED, metadata=meta)
    REPORTS.mkdir(parents=True, exist_ok=True)
    with atomic_path(REPORTS / "grid.png") as tmp:
        identity_grid(selected, IMAGES, tmp, params.identities.grid_size)
    reasons = rejected.reason.str.extract(r"among \d+: (.*)")[0].fillna(rejected.reason)
    write_json({"sources": len(sources), "selected": len(selected), "rejected": len(rejected),
                "mean_au_of_selected": round(float(selected.mean_au.mean()), 4),
                "mean_admissible_frames": round(float(selected.n_admissible.mean()), 2),
                "rejection_reasons": reasons.value_counts().head(10).to_dict()}, REPORTS / "metrics.json")
    log.info("%d identities selected from %d neutral clips; %d rejected", len(selected), len(sources), len(rejected))
    for reason, n in rejected.reason.value_counts().head(5).items():
        log.info("  rejected %d: %s", n, reason)


if __name__ == "__main__":
    run_stage(main)

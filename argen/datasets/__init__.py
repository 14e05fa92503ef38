"""Dataset adapters: DFEW, FERV39k, CK+, a generic folder CSV and the synthetic demo.

:func:`index_dataset` is the one entry point: it runs the adapter named by ``data.source``, then lists and
checks every clip's frames the same way for all of them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from argen.datasets.base import Clip, ClipSource, DatasetIndex, DatasetLayoutError, Skip, collect_frames, \
    read_label_csv, require_path
from argen.datasets.ckplus import find_ckplus
from argen.datasets.dfew import find_dfew
from argen.datasets.ferv39k import find_ferv39k
from argen.datasets.folder import find_folder
from argen.params import DataParams

__all__ = ["Clip", "ClipSource", "DatasetIndex", "DatasetLayoutError", "Skip", "find_demo", "find_sources",
           "index_dataset"]


def find_demo(root: Path, fold: int) -> tuple[list[ClipSource], list[Skip]]:
    """The demo dataset: read through the DFEW adapter, plus the subject ids the demo records.

    Subjects come from ``demo_meta/clips.csv``; DFEW itself has none.
    """
    sources, skips = find_dfew(root, fold, "clip_224x224")
    meta_path = require_path(root / "demo_meta" / "clips.csv", "demo clip table",
                             "rebuild the demo with `dvc repro demo`")
    _, rows, meta_skips = read_label_csv(meta_path, "demo_meta/clips.csv", ("video_name", "subject"),
                                         "rebuild the demo with `dvc repro demo`")
    subjects = {row["video_name"]: row["subject"] for _, row in rows}
    missing = [s.clip_id for s in sources if not subjects.get(s.clip_id)]
    if missing:
        raise DatasetLayoutError(f"{meta_path}: no subject for clip(s) {', '.join(missing[:5])}"
                                 + (" ..." if len(missing) > 5 else ""))
    return [replace(s, subject=subjects[s.clip_id]) for s in sources], skips + meta_skips


def find_sources(data: DataParams, seed: int) -> tuple[list[ClipSource], list[Skip]]:
    """Run the adapter that ``data.source`` names on ``data.root``."""
    root = require_path(Path(data.root), f"data.root for source '{data.source}'",
                        "set data.root in params.yaml to the dataset's top folder")
    if not root.is_dir():
        raise DatasetLayoutError(f"data.root {root} is a file: set it to the dataset's top folder")
    if data.source == "demo":
        return find_demo(root, data.fold)
    if data.source == "dfew":
        return find_dfew(root, data.fold, data.dfew_frames)
    if data.source == "ferv39k":
        return find_ferv39k(root)
    if data.source == "ckplus":
        return find_ckplus(root)
    return find_folder(root, data.folder_csv, data.folder_test_fraction, seed)


def index_dataset(data: DataParams, seed: int, workers: int = 2) -> DatasetIndex:
    """Index the configured dataset: clips with their checked, naturally sorted frames, and every skip."""
    sources, skips = find_sources(data, seed)
    index = collect_frames(sources, verify=data.verify_frames, min_frames=data.min_frames, workers=workers)
    index.skips[:0] = skips
    return index

"""decompose: the clip table, the partition, the skips, the metrics and the figure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from argen.datasets import index_dataset
from argen.decompose import CLIPS_SCHEMA, class_counts, clip_table, plot_class_distribution, skip_table, \
    summary_metrics
from argen.io import read_parquet_metadata, write_parquet
from argen.params import DataParams, DecomposeParams
from tests.conftest import TINY_DEMO


@pytest.fixture(scope="module")
def table(tiny_demo: Path) -> pd.DataFrame:
    data = DataParams(root=str(tiny_demo), fold=1)
    return clip_table(index_dataset(data, seed=0), data, DecomposeParams())


def test_partition(table: pd.DataFrame, tiny_demo: Path) -> None:
    meta = pd.read_csv(tiny_demo / "demo_meta" / "clips.csv", dtype={"video_name": str}).set_index("video_name")
    assert len(table) == TINY_DEMO.n_clips
    assert (table.label == meta.loc[table.clip_id, "label"].to_numpy()).all()
    assert table.scarce.tolist() == table.label.isin(["surprise", "disgust", "fear"]).tolist()
    sources = table[table.identity_source]
    assert (sources.label == "neutral").all() and (sources.split == "train").all()
    assert len(sources) == ((table.label == "neutral") & (table.split == "train")).sum() > 0
    assert (table.n_frames == TINY_DEMO.n_frames).all()
    assert list(table.frames.iloc[0][:3]) == ["1.jpg", "2.jpg", "3.jpg"]
    assert table.fold.eq(1).all() and table.subject.notna().all()


def test_scarce_classes_are_a_parameter(tiny_demo: Path) -> None:
    data = DataParams(root=str(tiny_demo))
    custom = clip_table(index_dataset(data, seed=0), data,
                        DecomposeParams(scarce_classes=["disgust"], identity_splits=["train", "test"]))
    assert set(custom[custom.scarce].label) == {"disgust"}
    assert set(custom[custom.identity_source].split) == {"train", "test"}


def test_parquet_round_trip_keeps_schema_and_provenance(table: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "clips.parquet"
    write_parquet(table, path, CLIPS_SCHEMA, {"stage": "decompose", "source": "demo"})
    assert pq.read_schema(path).remove_metadata() == CLIPS_SCHEMA
    back = pd.read_parquet(path)
    assert back.clip_id.tolist() == table.clip_id.tolist()
    assert list(back.frames.iloc[0]) == list(table.frames.iloc[0])
    assert read_parquet_metadata(path) == {"stage": "decompose", "source": "demo"}
    assert [p.name for p in tmp_path.iterdir()] == ["clips.parquet"], "no temporary file left behind"


def test_bad_frames_and_clips_are_recorded(tiny_demo: Path, tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(tiny_demo, root)
    clips = root / "Clip" / "clip_224x224"
    (clips / "00002" / "3.jpg").write_bytes(b"")                       # empty frame
    data = (clips / "00003" / "1.jpg").read_bytes()
    (clips / "00003" / "1.jpg").write_bytes(data[: len(data) // 2])      # truncated frame
    shutil.rmtree(clips / "00004")                                       # missing clip folder
    params = DataParams(root=str(root), min_frames=8)
    index = index_dataset(params, seed=0)
    skips = skip_table(index)
    reasons = dict(zip(skips.item, skips.reason))
    assert reasons["00002/3.jpg"] == "frame dropped: empty file"
    assert reasons["00003/1.jpg"] == "frame dropped: damaged JPEG data (decoder: Premature end of JPEG file)"
    assert reasons["00004"].startswith("frames folder missing")
    assert reasons["00002"] == "only 7 usable frames (< min_frames 8)"
    kept = {c.clip_id for c in index.clips}
    assert not {"00002", "00003", "00004"} & kept and len(kept) == TINY_DEMO.n_clips - 3
    lenient = index_dataset(DataParams(root=str(root), min_frames=4), seed=0)
    assert {c.clip_id: len(c.frames) for c in lenient.clips}["00002"] == 7


def test_metrics_and_figure(table: pd.DataFrame, tmp_path: Path) -> None:
    counts = class_counts(table)
    assert counts["all"].sum() == len(table) and (counts["train"] + counts["test"] == counts["all"]).all()
    metrics = summary_metrics(table, n_skipped=3, scarce=["surprise", "disgust", "fear"])
    assert sum(metrics["train"].values()) + sum(metrics["test"].values()) == len(table)
    assert metrics["subsets"]["D_s"] + metrics["subsets"]["D_ns"] == len(table)
    assert metrics["n_skipped"] == 3
    png = tmp_path / "dist.png"
    plot_class_distribution(table, ["surprise", "disgust", "fear"], png, "demo")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

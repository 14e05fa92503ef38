"""Bad input, stage by stage: a clear error or a recorded skip, never a traceback, a silent drop or a wrong result.

Every test breaks one input of a small project (the tiny demo, run through every stage once) and runs the
stage it feeds in-process with :func:`argen.stage.run_stage`; an unexpected exception fails the test. It
then checks the exit code, that the message names the file, key or line, that a failed stage left its
previous outputs as they were (no temporary files either), and that every dropped entry, frame, line or
clip is in the stage's ``*_skipped.parquet`` with its reason. Two tests run a stage script for real to
show the exit code and the absence of a traceback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from argen.counts import generated_counts
from argen.extract.run import ClipJob, make_backend, process_clip
from argen.params import ExtractAUsParams
from argen.stage import run_stage
from tests.conftest import ROOT

DEMO = Path("data/raw/demo")
CLIPS = Path("data/raw/demo/Clip/clip_224x224")
AU_CSVS = Path("data/raw/demo/demo_meta/aus")
OUTPUT_FOLDERS = ("data/interim", "reports", "models")


def load_stage(name: str) -> ModuleType:
    """The stage script ``stages/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STAGES = {name: load_stage(name) for name in ("decompose", "extract_aus", "identities", "au_kb", "prompts",
                                              "motion_model", "preview", "rewards", "policy", "generate",
                                              "oracle")}


def run_in(path: Path, stage: str) -> int:
    """Run a stage in-process in the project at ``path``, as its script would; its exit code."""
    cwd = os.getcwd()
    os.chdir(path)
    try:
        run_stage(STAGES[stage].main, "params.yaml")
        return 0
    except SystemExit as exit_:
        return int(exit_.code)
    finally:
        os.chdir(cwd)


@dataclass
class Outcome:
    """Exit code, logged errors and whole log of one stage run."""

    code: int
    errors: list[str]
    log: str


class Project:
    """A copy of the project's working files (params, demo data, outputs) to break and run stages in."""

    def __init__(self, path: Path, caplog: pytest.LogCaptureFixture) -> None:
        self.path = path
        self.caplog = caplog

    def params(self, **sections: dict) -> None:
        """Update sections of params.yaml (``data={"root": ""}``)."""
        params = yaml.safe_load((self.path / "params.yaml").read_text())
        for name, values in sections.items():
            params[name].update(values)
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def run(self, stage: str) -> Outcome:
        """Run a stage in-process (:func:`run_in`) and collect what it logged."""
        self.caplog.clear()
        code = run_in(self.path, stage)
        errors = [r.getMessage() for r in self.caplog.records if r.levelno >= logging.ERROR]
        return Outcome(code, errors, self.caplog.text)

    def table(self, relative: str) -> pd.DataFrame:
        """A Parquet table of the project."""
        return pd.read_parquet(self.path / relative)

    def write_table(self, relative: str, frame: pd.DataFrame) -> None:
        """Replace a Parquet table of the project (to break an upstream output)."""
        frame.to_parquet(self.path / relative, index=False)

    def skipped(self, stage: str) -> dict[str, str]:
        """The stage's skip record, reason by item."""
        table = self.table(f"data/interim/{stage}_skipped.parquet")
        return dict(zip(table.item, table.reason))

    def outputs(self) -> dict[str, str]:
        """Digest of every file under the output folders, temporary ones included."""
        files = [p for folder in OUTPUT_FOLDERS for p in sorted((self.path / folder).rglob("*")) if p.is_file()]
        return {str(p.relative_to(self.path)): hashlib.md5(p.read_bytes()).hexdigest() for p in files}


def failed(outcome: Outcome, *named: str) -> None:
    """The stage exited 1 with a logged error naming every string in ``named``, and no traceback."""
    assert outcome.code == 1 and len(outcome.errors) == 1, outcome.log
    for name in named:
        assert name in outcome.errors[0], f"{name!r} not in {outcome.errors[0]!r}"
    assert "Traceback" not in outcome.log


def frames_accounted(project: Project) -> None:
    """Every entry of every demo clip folder is a kept frame or is recorded (itself or its clip) as skipped."""
    clips = project.table("data/interim/clips.parquet")
    kept = {(c, f) for c, frames in zip(clips.clip_id, clips.frames) for f in frames}
    skipped = project.skipped("decompose")
    for folder in (project.path / CLIPS).iterdir():
        for name in os.listdir(folder):
            assert ((folder.name, name) in kept or f"{folder.name}/{name}" in skipped
                    or folder.name in skipped), f"{folder.name}/{name} silently dropped"


def extraction_accounted(project: Project) -> None:
    """Every frame of every clip chosen by extract_aus has a row or a recorded skip; rows keep their index."""
    clips = project.table("data/interim/clips.parquet").set_index("clip_id")
    rows = project.table("data/interim/aus.parquet")
    skipped = project.skipped("extract_aus")
    for clip_id, part in rows.groupby("clip_id"):
        frames = list(clips.loc[clip_id, "frames"])
        assert [frames[i] for i in part.frame] == part.frame_file.tolist(), "row frame is the index in frames"
        dropped = {i for i, name in enumerate(frames) if f"{clip_id}/{name}" in skipped}
        assert set(part.frame) | dropped == set(range(len(frames))), f"{clip_id}: a frame silently dropped"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_demo: Path) -> Path:
    """A project in which every stage ran once on the tiny demo (AUs from the demo's OpenFace CSVs)."""
    path = tmp_path_factory.mktemp("bad-input") / "project"
    shutil.copytree(tiny_demo, path / DEMO)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["min_frames"] = 4  # a clip of the tiny demo (8 frames) survives a dropped frame
    params["extract_aus"].update(backend="csv", csv_dir=str(AU_CSVS), sample_per_class=1, workers=1)
    params["motion_model"].update(steps=5, d_model=16, n_layers=1, n_heads=2, min_tracks=1, n_frames=8, min_frames=4)
    params["generator"].update(size=64, n_frames=8)
    params["preview"].update(identities=1, real_face=False, action=[5, 2.0, 2.0], frames=[1, 4, 8])
    params["ard"].update(policy_steps=5, policy_batch=4)
    params["rewards"].update(frames=3, max_identities=2, workers=1)
    params["generate"].update(per_class={"surprise": 1, "disgust": 2, "fear": 1}, contact_sheet=1)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert [run_in(path, stage) for stage in STAGES] == [0] * len(STAGES)
    return path


@pytest.fixture
def project(built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Project:
    """A fresh copy of the built project."""
    caplog.set_level(logging.INFO)
    shutil.copytree(built, tmp_path / "project", symlinks=True)
    return Project(tmp_path / "project", caplog)


# --- params ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "values", "key"), [
    ("data", {"root": ""}, "'data.root'"),
    ("data", {"root": "   "}, "'data.root'"),
    ("data", {"folder_csv": ""}, "'data.folder_csv'"),
])
def test_blank_paths_in_params_are_refused(project: Project, section: str, values: dict, key: str) -> None:
    before = project.outputs()
    project.params(**{section: values})
    failed(project.run("decompose"), key, "working directory")
    assert project.outputs() == before


def test_data_root_that_is_a_file(project: Project) -> None:
    project.params(data={"root": "params.yaml"})
    failed(project.run("decompose"), "data.root params.yaml is a file")


# --- decompose: frames ----------------------------------------------------------------------------------

def jpeg(project: Project, clip: str, name: str) -> Path:
    """A frame of the project's demo."""
    return project.path / CLIPS / clip / name


def scrambled_scan(data: bytes) -> bytes:
    """A JPEG whose entropy-coded data is scrambled in the middle; its end-of-image marker is intact."""
    start, stop = len(data) // 2, len(data) * 6 // 10
    return data[:start] + bytes(b ^ 0x5A if 0xFF not in (b, b ^ 0x5A) else b for b in data[start:stop]) + data[stop:]


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda data: data[: len(data) // 2], "damaged JPEG data (decoder: Premature end of JPEG file)"),
    (lambda data: data[:-2], "damaged JPEG data (decoder: Premature end of JPEG file)"),
    (lambda data: data[: len(data) // 2] + bytes(len(data) - len(data) // 2),
     "damaged JPEG data (decoder: Premature end of JPEG file)"),
    (scrambled_scan, "damaged JPEG data (decoder: Corrupt JPEG data: premature end of data segment)"),
    (lambda data: b"", "empty file"),
    (lambda data: b"<html>not a frame</html>", "not a decodable image"),
])
def test_damaged_frames_are_dropped_with_the_decoders_reason(project: Project, damage, reason: str) -> None:
    path = jpeg(project, "00002", "3.jpg")
    path.write_bytes(damage(path.read_bytes()))
    assert project.run("decompose").code == 0
    assert project.skipped("decompose")["00002/3.jpg"].startswith(f"frame dropped: {reason}")
    clips = project.table("data/interim/clips.parquet").set_index("clip_id")
    assert "3.jpg" not in clips.loc["00002", "frames"]
    frames_accounted(project)


def test_valid_frames_the_old_check_dropped_are_kept(project: Project) -> None:
    padded = jpeg(project, "00002", "3.jpg")
    padded.write_bytes(padded.read_bytes() + b"\x00" * 700)
    png_named_jpg = jpeg(project, "00002", "4.jpg")
    png_named_jpg.write_bytes(cv2.imencode(".png", cv2.imread(str(png_named_jpg)))[1].tobytes())
    assert project.run("decompose").code == 0
    assert not any(item.startswith("00002") for item in project.skipped("decompose"))
    clips = project.table("data/interim/clips.parquet").set_index("clip_id")
    assert {"3.jpg", "4.jpg"} <= set(clips.loc["00002", "frames"])


def test_entries_that_are_not_frames_are_recorded(project: Project) -> None:
    folder = project.path / CLIPS / "00003"
    (folder / "9.jpg").symlink_to(folder / "no-such-frame.jpg")
    (folder / ".DS_Store").write_bytes(b"\x00\x00")
    (folder / "Thumbs.db").write_bytes(b"\x00\x00")
    (folder / "extra").mkdir()
    assert project.run("decompose").code == 0
    skipped = project.skipped("decompose")
    assert skipped["00003/9.jpg"].startswith("not a frame: broken symbolic link")
    assert skipped["00003/.DS_Store"] == "not a frame: hidden file"
    assert skipped["00003/Thumbs.db"].startswith("not a frame: not an image suffix (.db")
    assert skipped["00003/extra"] == "not a frame: a folder"
    frames_accounted(project)


def test_missing_and_short_clips_are_recorded(project: Project) -> None:
    shutil.rmtree(project.path / CLIPS / "00004")
    for name in ("1.jpg", "2.jpg"):
        (project.path / CLIPS / "00005" / name).unlink()
    project.params(data={"min_frames": 7})
    assert project.run("decompose").code == 0
    skipped = project.skipped("decompose")
    assert skipped["00004"].startswith("frames folder missing") and "00004" in skipped["00004"]
    assert skipped["00005"] == "only 6 usable frames (< min_frames 7)"
    assert not {"00004", "00005"} & set(project.table("data/interim/clips.parquet").clip_id)


# --- decompose: label and list files --------------------------------------------------------------------

def split_file(project: Project, split: str, fold: int = 1) -> Path:
    """A DFEW split file of the project's demo."""
    return project.path / DEMO / "EmoLabel_DataSplit" / f"{split}(single-labeled)" / f"set_{fold}.csv"


@pytest.mark.parametrize(("encoding", "header", "newline"), [
    ("utf-16", "video_name,label", "\r\n"), ("utf-16-be", "video_name,label", "\n"),
    ("utf-32", "video_name,label", "\n"), ("utf-8-sig", " Video_Name , Label ", "\r\n"),
    ("utf-8", "VIDEO_NAME;LABEL", "\n"), ("utf-16-le", "video_name\tlabel", "\n"),
    ("utf-8", '"video_name","label"', "\r"),
])
def test_label_files_in_any_encoding_and_header_style(project: Project, encoding: str, header: str,
                                                      newline: str) -> None:
    expected = project.table("data/interim/clips.parquet").clip_id.tolist()
    path = split_file(project, "train")
    delimiter = ";" if ";" in header else ("\t" if "\t" in header else ",")
    rows = path.read_text().splitlines()[1:]
    path.write_bytes(newline.join([header, *(r.replace(",", delimiter) for r in rows)]).encode(encoding))
    assert project.run("decompose").code == 0
    assert project.table("data/interim/clips.parquet").clip_id.tolist() == expected


def test_undecodable_and_cp1252_lines(project: Project) -> None:
    path = split_file(project, "train")
    path.write_bytes(path.read_bytes() + b"41,caf\xe9\n42,\x81\x8d\n")
    outcome = project.run("decompose")
    assert outcome.code == 0
    assert f"{path.relative_to(project.path)} is not UTF-8: read line(s)" in outcome.log
    skipped = project.skipped("decompose")
    where = "EmoLabel_DataSplit/train(single-labeled)/set_1.csv"
    lines = len(path.read_bytes().splitlines())
    assert skipped["00041"] == f"unknown label 'café' in {where}, line {lines - 1} (DFEW labels are 1..7)"
    assert skipped[f"{where}:{lines}"] == f"line {lines} of {where} cannot be read: neither UTF-8 nor cp1252"


def test_malformed_label_rows_are_recorded(project: Project) -> None:
    path = split_file(project, "train")
    path.write_text(path.read_text() + "7,3,extra\n\"unclosed,1\nabc,2\n")
    assert project.run("decompose").code == 0
    skipped = project.skipped("decompose")
    where = "EmoLabel_DataSplit/train(single-labeled)/set_1.csv"
    n = len(path.read_text().splitlines())
    assert skipped[f"{where}:{n - 2}"].startswith(f"line {n - 2} of {where} has 3 fields, the header 2")
    assert f"line {n}" in skipped[f"{where}:{n}"] and "'abc'" in skipped[f"{where}:{n}"]
    assert any(f"line {n - 1}" in reason for reason in skipped.values())


def test_split_file_found_under_the_other_spelling(project: Project) -> None:
    expected = project.table("data/interim/clips.parquet").clip_id.tolist()
    splits = project.path / DEMO / "EmoLabel_DataSplit"
    (splits / "train(single_labeled)").mkdir()
    split_file(project, "train").rename(splits / "train(single_labeled)" / "set_1.csv")
    assert project.run("decompose").code == 0
    assert project.table("data/interim/clips.parquet").clip_id.tolist() == expected
    (splits / "train(single_labeled)" / "set_1.csv").unlink()
    before = project.outputs()
    failed(project.run("decompose"), "train(single-labeled)/set_1.csv", "train(single_labeled)/set_1.csv",
           "neither")
    assert project.outputs() == before


def test_label_file_without_its_columns(project: Project) -> None:
    split_file(project, "test").write_text("name,emotion\n1,2\n")
    failed(project.run("decompose"), "test(single-labeled)/set_1.csv", "missing column(s) video_name, label",
           "'name,emotion'")


def test_no_usable_clip_names_the_reasons(project: Project) -> None:
    before = project.outputs()
    shutil.rmtree(project.path / CLIPS)
    (project.path / CLIPS).mkdir()
    failed(project.run("decompose"), "no usable clip in data/raw/demo", "frames folder missing")
    assert project.outputs() == before


def test_folder_csv_duplicates_by_another_spelling_and_no_identity_source(project: Project) -> None:
    root = project.path / "data/raw/mine"
    for clip in ("00001", "00002", "00003"):
        shutil.copytree(project.path / CLIPS / clip, root / "clips" / clip)
    lines = ["frames_dir;label;split", "clips/00001;happy;train", "./clips/00001/;sad;test", "clips/00002;Anger;train",
             "clips/00003;fear;test"]
    (root / "clips.csv").write_bytes("\n".join(lines).encode("utf-8-sig"))
    project.params(data={"source": "folder", "root": "data/raw/mine"})
    outcome = project.run("decompose")
    assert outcome.code == 0
    assert "WARNING" in outcome.log and "no identity source" in outcome.log
    clips = project.table("data/interim/clips.parquet")
    assert clips.clip_id.tolist() == ["clips/00001", "clips/00002", "clips/00003"]
    assert project.skipped("decompose")["clips/00001"] == "listed again in clips.csv, line 3 (first at line 2)"
    metrics = yaml.safe_load((project.path / "reports/decompose/metrics.json").read_text())
    assert "no identity source" in metrics["warning"] and metrics["subsets"]["identity_sources"] == 0


def test_ckplus_label_files_in_utf16_and_a_bad_facs_line(project: Project) -> None:
    root = project.path / "data/raw/ckplus"
    for subject, clip, code in (("S005", "00001", "3"), ("S006", "00002", "0")):
        shutil.copytree(project.path / CLIPS / clip, root / "cohn-kanade-images" / subject / "001")
        emotion = root / "Emotion" / subject / "001" / f"{subject}_001_00000008_emotion.txt"
        emotion.parent.mkdir(parents=True)
        emotion.write_bytes(f"   {code}.0000000e+00\r\n".encode("utf-16"))
    facs = root / "FACS" / "S005" / "001" / "S005_001_00000008_facs.txt"
    facs.parent.mkdir(parents=True)
    facs.write_text("   1.0000000e+00   2.0000000e+00\n   1.5000000e+00   1.0000000e+00\n")
    project.params(data={"source": "ckplus", "root": "data/raw/ckplus"})
    outcome = project.run("decompose")
    assert outcome.code == 0 and "no identity source: every neutral clip is in test" in outcome.log
    assert project.table("data/interim/clips.parquet").clip_id.tolist() == ["S006/001"]
    reason = project.skipped("decompose")["S005/001"]
    assert "line 2 of S005_001_00000008_facs.txt is not 'AU intensity'" in reason


def test_ferv39k_list_in_cp1252_with_an_undecodable_line(project: Project) -> None:
    root = project.path / "data/raw/ferv39k"
    shutil.copytree(project.path / CLIPS / "00001", root / "2_ClipsforFaceCrop" / "Scène" / "Happy" / "0001")
    shutil.copytree(project.path / CLIPS / "00002", root / "2_ClipsforFaceCrop" / "Scène" / "Neutral" / "0002")
    setups = root / "4_setups" / "All_scenes"
    setups.mkdir(parents=True)
    (setups / "train_All.csv").write_bytes("Scène/Happy/0001 Happy\nScène/Neutral/0002 neutral\n".encode("cp1252")
                                           + b"Sc\x81ne/Sad/0003 Sad\n")
    (setups / "test_All.csv").write_text("")
    project.params(data={"source": "ferv39k", "root": "data/raw/ferv39k"})
    outcome = project.run("decompose")
    assert outcome.code == 0 and "train_All.csv is not UTF-8" in outcome.log
    assert project.table("data/interim/clips.parquet").clip_id.tolist() == ["Scène/Happy/0001", "Scène/Neutral/0002"]
    where = "4_setups/All_scenes/train_All.csv"
    assert project.skipped("decompose")[f"{where}:3"] == f"line 3 of {where} cannot be read: neither UTF-8 nor cp1252"


def test_a_failure_while_writing_leaves_the_previous_outputs(project: Project, monkeypatch) -> None:
    before = project.outputs()
    project.params(data={"min_frames": 2})

    def broken_plot(*args, **kwargs) -> None:
        raise FileNotFoundError("disk gone while plotting")

    monkeypatch.setattr(STAGES["decompose"], "plot_class_distribution", broken_plot)
    failed(project.run("decompose"), "disk gone while plotting")
    assert project.outputs() == before, "old outputs intact, no new or temporary file beside them"


# --- extract_aus ----------------------------------------------------------------------------------------

def chosen_clip(project: Project) -> str:
    """A clip extract_aus processes in the built project."""
    return project.table("data/interim/aus_clips.parquet").clip_id.iloc[0]


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("frame", "x", "frame is 'x', expected a frame number (an integer >= 1)"),
    ("frame", "2.5", "frame is '2.5', expected a frame number (an integer >= 1)"),
    ("success", "yes", "success is 'yes', expected 0 or 1"),
    ("AU12_r", "high", "AU12_r is 'high', expected an intensity from 0 to 5"),
    ("AU01_r", "7.5", "AU01_r is '7.5', expected an intensity from 0 to 5"),
    ("x_3", "", "x_3 is empty, expected a finite coordinate"),
])
def test_malformed_openface_csv_is_a_recorded_clip_skip(project: Project, column: str, value: str,
                                                        expected: str) -> None:
    clip = chosen_clip(project)
    path = project.path / AU_CSVS / f"{clip}.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[2, column] = value
    table.to_csv(path, index=False)
    assert project.run("extract_aus").code == 0
    assert project.skipped("extract_aus")[clip] == f"{AU_CSVS / clip}.csv, line 4: {expected}"
    assert clip not in set(project.table("data/interim/aus.parquet").clip_id)
    assert len(project.table("data/interim/aus_clips.parquet")) > 1, "the other clips were processed"


def test_openface_csv_that_cannot_be_parsed_or_read(project: Project) -> None:
    first, second = project.table("data/interim/aus_clips.parquet").clip_id.iloc[:2]
    ragged = project.path / AU_CSVS / f"{first}.csv"
    ragged.write_text(ragged.read_text() + "1,2,3\n" + "9," * 400 + "\n")
    (project.path / AU_CSVS / f"{second}.csv").write_text("")
    assert project.run("extract_aus").code == 0
    skipped = project.skipped("extract_aus")
    assert skipped[first].startswith(f"cannot read OpenFace CSV {AU_CSVS / first}.csv: Error tokenizing data")
    assert skipped[second] == f"cannot read OpenFace CSV {AU_CSVS / second}.csv: No columns to parse from file"


def test_openface_csv_in_utf16_is_read(project: Project) -> None:
    clip = chosen_clip(project)
    path = project.path / AU_CSVS / f"{clip}.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    assert project.run("extract_aus").code == 0
    assert clip not in project.skipped("extract_aus")
    assert clip in set(project.table("data/interim/aus.parquet").clip_id)


def test_frames_damaged_or_gone_after_decompose(project: Project) -> None:
    first, second = project.table("data/interim/aus_clips.parquet").clip_id.iloc[:2]
    damaged = project.path / CLIPS / first / "3.jpg"
    damaged.write_bytes(damaged.read_bytes()[:-200])
    shutil.rmtree(project.path / CLIPS / second)
    assert project.run("extract_aus").code == 0
    skipped = project.skipped("extract_aus")
    assert skipped[f"{first}/3.jpg"] == "frame dropped: damaged JPEG data (decoder: Premature end of JPEG file)"
    assert skipped[f"{second}/1.jpg"] == "frame dropped: unreadable file (No such file or directory)"
    assert skipped[second] == "no usable frame"
    extraction_accounted(project)


def test_mixed_frame_sizes_drop_the_odd_frame_and_keep_the_aus(project: Project) -> None:
    clip = chosen_clip(project)
    source = project.path / CLIPS / clip
    without = project.path / "without"
    shutil.copytree(source, without)
    (without / "4.jpg").unlink()
    odd = cv2.imread(str(source / "4.jpg"))
    cv2.imwrite(str(source / "4.jpg"), cv2.resize(odd, (odd.shape[1] + 24, odd.shape[0] + 24)))
    frames = [f"{k}.jpg" for k in range(1, 9)]
    backend = make_backend(ExtractAUsParams(backend="landmarks"))
    rows, skips = process_clip(ClipJob(clip, str(source), tuple(frames)), backend)
    alone, _ = process_clip(ClipJob(clip, str(without), tuple(f for f in frames if f != "4.jpg")), backend)
    size = f"{odd.shape[1]}x{odd.shape[0]}"
    assert skips == [(f"{clip}/4.jpg", f"frame dropped: {odd.shape[1] + 24}x{odd.shape[0] + 24} px where the "
                                       f"clip's frames are {size} px")]
    assert rows.frame.tolist() == [0, 1, 2, 4, 5, 6, 7], "rows keep the frame's index in the clip's list"
    columns = [c for c in rows.columns if c.startswith(("AU", "x_", "y_"))]
    np.testing.assert_allclose(backend.finalize(rows)[columns].to_numpy(float),
                               backend.finalize(alone)[columns].to_numpy(float))


def test_extract_with_nothing_selected(project: Project) -> None:
    clips = project.table("data/interim/clips.parquet")
    project.write_table("data/interim/clips.parquet", clips.assign(identity_source=False)[clips.split == "train"])
    project.params(extract_aus={"splits": ["test"], "sample_per_class": 0})
    before = project.outputs()
    failed(project.run("extract_aus"), "no clip of data/interim/clips.parquet is selected",
           "0 identity sources", "0 clips in extract_aus.splits ['test']")
    assert project.outputs() == before


def test_extract_where_every_clip_fails(project: Project) -> None:
    for csv in (project.path / AU_CSVS).iterdir():
        csv.unlink()
    before = project.outputs()
    failed(project.run("extract_aus"), "could be processed by the csv backend", "no OpenFace CSV for clip")
    assert project.outputs() == before


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda path: path.unlink(), "not found: run the decompose stage first"),
    (lambda path: path.write_bytes(b"PAR1 this is not parquet"), "is not a readable Parquet file"),
    (lambda path: pd.read_parquet(path).drop(columns=["frames"]).to_parquet(path), "lacks column(s) frames"),
])
def test_unusable_upstream_table(project: Project, damage, expected: str) -> None:
    damage(project.path / "data/interim/clips.parquet")
    failed(project.run("extract_aus"), "data/interim/clips.parquet", expected)


# --- identities, au_kb, prompts -------------------------------------------------------------------------

def test_identities_without_identity_sources(project: Project) -> None:
    clips = project.table("data/interim/clips.parquet")
    project.write_table("data/interim/clips.parquet", clips.assign(identity_source=False))
    before = project.outputs()
    failed(project.run("identities"), "has no identity source", "reports/decompose/metrics.json")
    assert "loosen" not in project.caplog.text
    assert project.outputs() == before


def test_identities_without_extract_rows(project: Project) -> None:
    clips = project.table("data/interim/clips.parquet")
    rows = project.table("data/interim/aus.parquet")
    project.write_table("data/interim/aus.parquet", rows[~rows.clip_id.isin(clips.clip_id[clips.identity_source])])
    failed(project.run("identities"), "has rows in data/interim/aus.parquet", "extract_aus_skipped.parquet")
    assert "loosen" not in project.caplog.text


def test_knowledge_clip_without_a_face_is_recorded(project: Project) -> None:
    processed = project.table("data/interim/aus_clips.parquet")
    clip = processed.clip_id[processed.purposes.map(lambda p: "knowledge" in p)].iloc[0]
    rows = project.table("data/interim/aus.parquet")
    rows.loc[rows.clip_id == clip, "success"] = False
    project.write_table("data/interim/aus.parquet", rows)
    assert project.run("au_kb").code == 0
    assert project.skipped("au_kb") == {clip: "no face found in any frame by extract_aus, so no apex frame"}


def test_au_kb_leaves_out_entries_the_training_clips_contradict(project: Project) -> None:
    """The stage checks entries on the training clips of every emotion and writes only those that pass; an
    emotion left without entries gets prompts that cite no AU."""
    processed = project.table("data/interim/aus_clips.parquet")
    labels = processed.set_index("clip_id").label
    rows = project.table("data/interim/aus.parquet")
    emotion = labels.reindex(rows.clip_id).to_numpy()
    for au in ("AU01_r", "AU02_r", "AU05_r"):  # brows and lids raised in every surprise clip, never in fear
        rows[au] = np.where(emotion == "surprise", 5.0, np.where(emotion == "fear", 0.0, rows[au]))
    project.write_table("data/interim/aus.parquet", rows)
    assert project.run("au_kb").code == 0
    kb = project.table("data/interim/au_kb.parquet")
    check = pd.read_csv(project.path / "reports/au_kb/data_check.csv").set_index("entry_id")
    assert {f"score_{e}" for e in labels.unique()} <= set(check.columns), "scored on every emotion's clips"
    assert check.closest_emotion["fear-00"] == "surprise" and not check.kept["fear-00"]
    assert set(kb.entry_id) == set(check.index[check.kept]) and not (kb.emotion == "fear").any()
    outcome = project.run("prompts")  # fear has no entry left: its prompts name the emotion, no AU
    assert outcome.code == 0 and "fear: no knowledge-base entry" in outcome.log, outcome.log
    prompts = project.table("data/interim/prompts.parquet")
    fear = prompts[prompts.emotion == "fear"]
    assert len(fear) and (fear.action == "emotion_only").all() and not fear.cited_aus.map(len).any()
    assert fear.prompt.str.endswith("Expression: fear.").all()
    assert not (prompts[prompts.emotion != "fear"].action == "emotion_only").any()
    project.params(au_kb={"data_check": False})
    assert project.run("au_kb").code == 0
    assert set(project.table("data/interim/au_kb.parquet").entry_id) == set(check.index)


def test_prompts_without_identities(project: Project) -> None:
    project.write_table("data/interim/identities.parquet", project.table("data/interim/identities.parquet").head(0))
    failed(project.run("prompts"), "data/interim/identities.parquet holds no identity")


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda path: path.unlink(), "unreadable file (No such file or directory)"),
    (lambda path: path.write_bytes(path.read_bytes()[:-500]), "damaged PNG data (decoder: libpng error: Read Error)"),
])
def test_prompts_with_an_unusable_identity_image(project: Project, damage, expected: str) -> None:
    image = project.table("data/interim/identities.parquet").image_file.iloc[0]
    damage(project.path / "data/interim/identities" / image)
    before = project.outputs()
    failed(project.run("prompts"), f"identity image data/interim/identities/{image}: {expected}")
    assert project.outputs() == before


@pytest.mark.parametrize(("change", "expected"), [
    (lambda kb: kb[kb.emotion != "fear"], "no entry for fear (decompose.scarce_classes lists it)"),
    (lambda kb: kb.assign(aus=[[99, *aus[1:]] for aus in kb.aus]), "AU(s) 99 not in the FACS table"),
])
def test_prompts_with_an_unusable_knowledge_base(project: Project, change, expected: str) -> None:
    project.write_table("data/interim/au_kb.parquet", change(project.table("data/interim/au_kb.parquet")))
    failed(project.run("prompts"), "data/interim/au_kb.parquet", expected)


def test_oracle_renders_the_counts_generate_wrote(project: Project) -> None:
    """The oracle reads data/generated/counts.json alone: generate's ok clips per emotion."""
    counts_file = project.path / "data/generated/counts.json"
    counts = json.loads(counts_file.read_text())
    assert counts == generated_counts(project.table("data/generated/index.parquet")) and sum(counts.values())
    assert project.table("data/oracle/index.parquet").label.value_counts().to_dict() == counts
    counts_file.write_text('{"fear": 1}')
    assert project.run("oracle").code == 0
    assert project.table("data/oracle/index.parquet").label.tolist() == ["fear"]
    for text, expected in (('{"fear": 1', "is not JSON"), ('{"fear": -1}', "whole numbers >= 0"),
                           ('["fear"]', "whole numbers >= 0")):
        counts_file.write_text(text)
        before = project.outputs()
        failed(project.run("oracle"), "data/generated/counts.json", expected)
        assert project.outputs() == before


def test_motion_model_with_too_few_tracks(project: Project) -> None:
    tracks = json.loads((project.path / "reports/motion_model/metrics.json").read_text())["tracks"]
    before = project.outputs()
    project.params(motion_model={"min_tracks": 1000})
    failed(project.run("motion_model"), f"only {tracks} usable landmark tracks", "motion_model.min_tracks=1000",
           "extract_aus.sample_per_class")
    assert project.outputs() == before


def test_motion_model_leaves_out_and_counts_rows_without_a_face(project: Project) -> None:
    rows = project.table("data/interim/aus.parquet")
    clip = rows.clip_id.iloc[0]
    faceless = rows.index[rows.clip_id == clip][:6]  # 2 of 8 frames left: too few for a track
    rows.loc[faceless, "success"] = False
    rows.loc[rows.index[rows.clip_id == rows.clip_id.iloc[-1]][:1], "success"] = False  # bridged, clip kept
    project.write_table("data/interim/aus.parquet", rows)
    assert project.run("motion_model").code == 0
    metrics = json.loads((project.path / "reports/motion_model/metrics.json").read_text())
    assert metrics["rows_without_face"] == int((~rows.success.astype(bool)).sum())
    skipped = project.table("data/interim/motion_skipped.parquet")
    assert dict(zip(skipped.clip_id, skipped.reason)) == {clip: "2 frames with a face, fewer than min_frames=4"}


def test_preview_without_a_motion_model(project: Project) -> None:
    shutil.rmtree(project.path / "models/motion")
    failed(project.run("preview"), "models/motion: no motion model", "dvc repro motion_model")


def test_policy_detects_a_stale_reward_table(project: Project) -> None:
    project.params(generator={"generator": "warp"})
    failed(project.run("policy"), "data/interim/rewards.parquet is stale", "generator.generator: table 'motion', params 'warp'",
           "dvc repro rewards")
    project.params(generator={"generator": "motion"}, rewards={"frames": 5})
    failed(project.run("policy"), "rewards.frames: table 3, params 5")


def test_policy_trains_on_the_complete_pairs(project: Project) -> None:
    path = project.path / "data/interim/rewards.parquet"
    table = pq.read_table(path)  # keeps the footer that says what made the table
    gone = table.column("pair_id")[0].as_py()
    pq.write_table(table.slice(1), path)  # one action of one pair missing
    outcome = project.run("policy")
    assert outcome.code == 0 and f"1 pairs left out: not every action and seed has an audited video ({gone}" in outcome.log
    metrics = json.loads((project.path / "reports/policy/metrics.json").read_text())
    assert metrics["pairs"]["left_out"] == 1


def test_policy_reports_bad_ratings_line_by_line(project: Project) -> None:
    videos = project.table("data/interim/rewards.parquet").video_id.tolist()
    ratings = project.path / "ratings.csv"
    ratings.write_text(f"clip,rating\n{videos[0]},0.8\nno-such-clip,0.5\n{videos[1]},2\n")
    project.params(ard={"weight_human": 1.0, "ratings_csv": str(ratings)})
    outcome = project.run("policy")
    assert outcome.code == 0
    assert "line 3" in outcome.log and "no-such-clip" in outcome.log and "line 4" in outcome.log
    assert f"{len(videos) - 1} of {len(videos)} videos have no human rating" in outcome.log


def test_generate_with_every_clip_failing_is_an_error(project: Project) -> None:
    project.params(generator={"n_frames": 12})  # the motion model makes 8
    failed(project.run("generate"), "every one of the 4 clips failed", "the motion model makes 8 frames")


# --- real stage scripts -----------------------------------------------------------------------------------

def run_script(project: Project, stage: str) -> subprocess.CompletedProcess:
    """Run ``stages/<stage>.py`` as DVC would, in the project."""
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py")], cwd=project.path,
                          capture_output=True, text=True)


def test_scripts_exit_1_without_a_traceback(project: Project) -> None:
    project.params(data={"root": ""})
    result = run_script(project, "decompose")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'data.root'" in result.stderr
    project.params(data={"root": str(DEMO)})
    image = project.table("data/interim/identities.parquet").image_file.iloc[0]
    (project.path / "data/interim/identities" / image).unlink()
    result = run_script(project, "prompts")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"identity image data/interim/identities/{image}" in result.stderr

"""Dataset adapters on tiny fixtures in each dataset's real layout, and the shared frame check."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from argen.datasets.base import DatasetLayoutError, Skip, collect_frames
from argen.datasets.ckplus import find_ckplus
from argen.datasets.dfew import find_dfew
from argen.datasets.ferv39k import find_ferv39k
from argen.datasets.folder import find_folder
from argen.io import list_frames


def write_frames(folder: Path, names: list[str], size: int = 32) -> Path:
    """Write small random images into ``folder``, encoded by the suffix of each name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        assert cv2.imwrite(str(folder / name), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def reasons(skips: list[Skip]) -> dict[str, str]:
    """Skip reasons by item."""
    return {s.item: s.reason for s in skips}


# --- DFEW ----------------------------------------------------------------------------------------------

DFEW_FRAMES = ["1.jpg", "2.jpg", "10.jpg"]


def make_dfew(root: Path, train_folder: str = "train(single-labeled)",
              test_folder: str = "test(single_labeled)") -> Path:
    """Five clips and two folds; fold 1 has unpadded names, a duplicate and bad labels."""
    for number in range(1, 6):
        write_frames(root / "Clip" / "clip_224x224" / f"{number:05d}", DFEW_FRAMES)
    splits = root / "EmoLabel_DataSplit"
    write(splits / train_folder / "set_1.csv", "video_name,label\n1,1\n00002,7\n3,8\n1,2\n6,0\n")
    write(splits / test_folder / "set_1.csv", "video_name,label\n4,5\n5,x\n")
    write(splits / train_folder / "set_2.csv", "video_name,label\n4,6\n5,3\n")
    write(splits / test_folder / "set_2.csv", "video_name,label\n1,1\n2,2\n")
    return root


def test_dfew_fold_1(tmp_path: Path) -> None:
    root = make_dfew(tmp_path)
    clips, skips = find_dfew(root, fold=1)
    assert [(c.clip_id, c.label, c.split, c.source_label) for c in clips] == [
        ("00001", "happy", "train", "1"), ("00002", "fear", "train", "7"), ("00004", "surprise", "test", "5")]
    assert all(c.subject is None and c.facs is None for c in clips)
    assert clips[0].frames_dir == root / "Clip" / "clip_224x224" / "00001"
    why = reasons(skips)
    assert len(skips) == 4
    assert "'8'" in why["00003"] and "set_1.csv" in why["00003"] and "line 4" in why["00003"]
    assert "'0'" in why["00006"]
    assert "'x'" in why["00005"] and "test(single_labeled)" in why["00005"]
    assert "listed again" in why["00001"] and "line 5" in why["00001"]


def test_dfew_fold_selection(tmp_path: Path) -> None:
    clips, skips = find_dfew(make_dfew(tmp_path), fold=2)
    assert [(c.clip_id, c.label, c.split) for c in clips] == [
        ("00004", "disgust", "train"), ("00005", "neutral", "train"), ("00001", "happy", "test"),
        ("00002", "sad", "test")]
    assert skips == []


@pytest.mark.parametrize("train_folder, test_folder", [
    ("train(single-labeled)", "test(single-labeled)"), ("train(single_labeled)", "test(single_labeled)"),
    ("train(single_labeled)", "test(single-labeled)")])
def test_dfew_split_folder_spellings(tmp_path: Path, train_folder: str, test_folder: str) -> None:
    clips, _ = find_dfew(make_dfew(tmp_path, train_folder, test_folder), fold=1)
    assert [c.split for c in clips] == ["train", "train", "test"]


def test_dfew_frames_in_natural_order(tmp_path: Path) -> None:
    clips, _ = find_dfew(make_dfew(tmp_path), fold=1)
    assert list_frames(clips[0].frames_dir) == DFEW_FRAMES
    index = collect_frames(clips, verify=True, min_frames=1)
    assert [c.frames for c in index.clips] == [tuple(DFEW_FRAMES)] * 3


def test_dfew_clip_in_train_and_test_is_an_error(tmp_path: Path) -> None:
    root = make_dfew(tmp_path)
    write(root / "EmoLabel_DataSplit" / "test(single_labeled)" / "set_1.csv", "video_name,label\n2,5\n")
    with pytest.raises(DatasetLayoutError, match="00002"):
        find_dfew(root, fold=1)


def test_dfew_missing_layout(tmp_path: Path) -> None:
    root = make_dfew(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"set_3\.csv"):
        find_dfew(root, fold=3)
    with pytest.raises(DatasetLayoutError, match="clip_224x224_16f"):
        find_dfew(root, fold=1, frames_variant="clip_224x224_16f")
    shutil.rmtree(root / "EmoLabel_DataSplit")
    with pytest.raises(DatasetLayoutError, match="EmoLabel_DataSplit"):
        find_dfew(root, fold=1)


# --- FERV39k -------------------------------------------------------------------------------------------

def make_ferv39k(root: Path) -> Path:
    """A headerless train list and a test list with a header, mixing name and integer labels."""
    setups = root / "4_setups" / "All_scenes"
    write(setups / "train_All.csv", "Scene1/Happy/0001 Happy\nScene1/Sad/0002 1\n\nScene2/Fear/0003 FEAR\n"
                                    "Scene2/Angry/0004 7\nScene2/Neutral/0005 angry\n"
                                    "Scene2/Angry/0006 contempt\n")
    write(setups / "test_All.csv", "path label\nScene3/Surprise/0007 4\nScene3/Disgust/0008,Disgust\n")
    for clip in ("Scene1/Happy/0001", "Scene3/Surprise/0007"):
        write_frames(root / "2_ClipsforFaceCrop" / clip, ["0.jpg", "1.jpg"])
    return root


def test_ferv39k_lists(tmp_path: Path) -> None:
    root = make_ferv39k(tmp_path)
    clips, skips = find_ferv39k(root)
    assert [(c.clip_id, c.label, c.split, c.source_label) for c in clips] == [
        ("Scene1/Happy/0001", "happy", "train", "Happy"), ("Scene1/Sad/0002", "sad", "train", "1"),
        ("Scene2/Fear/0003", "fear", "train", "FEAR"), ("Scene2/Neutral/0005", "angry", "train", "angry"),
        ("Scene3/Surprise/0007", "surprise", "test", "4"),
        ("Scene3/Disgust/0008", "disgust", "test", "Disgust")]
    assert clips[0].frames_dir == root / "2_ClipsforFaceCrop" / "Scene1" / "Happy" / "0001"
    assert all(c.subject is None for c in clips)
    why = reasons(skips)
    assert set(why) == {"Scene2/Angry/0004", "Scene2/Angry/0006"}
    assert "'7'" in why["Scene2/Angry/0004"] and "train_All.csv" in why["Scene2/Angry/0004"]
    assert "line 5" in why["Scene2/Angry/0004"] and "line 7" in why["Scene2/Angry/0006"]


def test_ferv39k_first_line_with_bad_label_is_not_a_header(tmp_path: Path) -> None:
    root = make_ferv39k(tmp_path)
    write(root / "4_setups" / "All_scenes" / "train_All.csv", "Scene1/Happy/0001 9\nScene1/Sad/0002 sad\n")
    clips, skips = find_ferv39k(root)
    assert [c.clip_id for c in clips if c.split == "train"] == ["Scene1/Sad/0002"]
    assert "line 1" in reasons(skips)["Scene1/Happy/0001"]


def test_ferv39k_missing_list(tmp_path: Path) -> None:
    root = make_ferv39k(tmp_path)
    (root / "4_setups" / "All_scenes" / "test_All.csv").unlink()
    with pytest.raises(DatasetLayoutError, match=r"test_All\.csv"):
        find_ferv39k(root)


def test_ferv39k_collect_frames_skips_missing_folders(tmp_path: Path) -> None:
    clips, _ = find_ferv39k(make_ferv39k(tmp_path))
    index = collect_frames(clips, verify=True, min_frames=2)
    assert [c.clip_id for c in index.clips] == ["Scene1/Happy/0001", "Scene3/Surprise/0007"]
    assert "frames folder missing" in reasons(index.skips)["Scene1/Sad/0002"]


# --- CK+ -----------------------------------------------------------------------------------------------

def make_ckplus(root: Path) -> Path:
    """S005/001 disgust with FACS, S005/002 unlabelled, S010/001 contempt, S010/002 happy without FACS."""
    for subject, sequence in (("S005", "001"), ("S005", "002"), ("S010", "001"), ("S010", "002")):
        write_frames(root / "cohn-kanade-images" / subject / sequence,
                     [f"{subject}_{sequence}_{i:08d}.png" for i in range(1, 4)], size=16)
    write(root / "cohn-kanade-images" / ".DS_Store", "junk")
    write(root / "cohn-kanade-images" / "S005" / ".DS_Store", "junk")
    write(root / "Emotion" / "S005" / "001" / "S005_001_00000003_emotion.txt", "   3.0000000e+00\n")
    write(root / "Emotion" / "S010" / "001" / "S010_001_00000003_emotion.txt", "   2.0000000e+00\n")
    write(root / "Emotion" / "S010" / "002" / "S010_002_00000003_emotion.txt", "   5.0000000e+00\n")
    write(root / "Emotion" / "S010" / "002" / ".DS_Store", "junk")
    write(root / "FACS" / "S005" / "001" / "S005_001_00000003_facs.txt",
          "   1.0000000e+00   2.0000000e+00\n   9.0000000e+00   0.0000000e+00\n\n")
    return root


def test_ckplus_sequences(tmp_path: Path) -> None:
    root = make_ckplus(tmp_path)
    clips, skips = find_ckplus(root)
    assert [(c.clip_id, c.label, c.subject, c.split) for c in clips] == [
        ("S005/001", "disgust", "S005", "test"), ("S010/002", "happy", "S010", "test")]
    assert clips[0].facs == ((1, 2.0), (9, 0.0))
    assert clips[1].facs is None
    assert clips[0].source_label == "3.0000000e+00"
    assert clips[0].frames_dir == root / "cohn-kanade-images" / "S005" / "001"
    why = reasons(skips)
    assert set(why) == {"S005/002", "S010/001"}
    assert why["S005/002"] == "no Emotion label (CK+ labels 327 of 593 sequences)"
    assert "contempt" in why["S010/001"] and "canonical" in why["S010/001"]


def test_ckplus_missing_emotion_folder(tmp_path: Path) -> None:
    write_frames(tmp_path / "cohn-kanade-images" / "S005" / "001", ["S005_001_00000001.png"])
    with pytest.raises(DatasetLayoutError, match="Emotion"):
        find_ckplus(tmp_path)


def test_ckplus_collect_frames(tmp_path: Path) -> None:
    clips, _ = find_ckplus(make_ckplus(tmp_path))
    index = collect_frames(clips, verify=True, min_frames=3)
    assert [c.frames for c in index.clips] == [
        tuple(f"{clip}_{i:08d}.png" for i in range(1, 4)) for clip in ("S005_001", "S010_002")]
    assert index.clips[0].facs == ((1, 2.0), (9, 0.0)) and index.skips == []


# --- Generic folder ------------------------------------------------------------------------------------

FOLDER_ROWS = [("a", "Happiness", "s1"), ("b", "anger", "s1"), ("c", "3", "s2"), ("d", "fear", "s2"),
               ("e", "sad", "s3"), ("f", "bogus", "s3"), ("g", "neutral", "s4"), ("h", "surprise", "s5"),
               ("i", "disgust", "s5"), ("j", "happy", "s6")]


def make_folder_csv(root: Path, with_subject: bool = True) -> Path:
    """A clip list without a split column; rows c (integer label) and f (unknown name) are bad."""
    header = "frames_dir,label,subject" if with_subject else "frames_dir,label"
    rows = [f"{d},{label},{s}" if with_subject else f"{d},{label}" for d, label, s in FOLDER_ROWS]
    write(root / "clips.csv", "\n".join([header, *rows]) + "\n")
    return root


def test_folder_labels_and_bad_rows(tmp_path: Path) -> None:
    root = make_folder_csv(tmp_path)
    clips, skips = find_folder(root, "clips.csv", test_fraction=0.4, seed=0)
    assert [(c.clip_id, c.label, c.subject) for c in clips[:2]] == [("a", "happy", "s1"),
                                                                     ("b", "angry", "s1")]
    assert len(clips) == 8 and clips[0].frames_dir == root / "a" and clips[0].source_label == "Happiness"
    why = reasons(skips)
    assert set(why) == {"c", "f"}
    assert "'3'" in why["c"] and "line 4" in why["c"] and "'bogus'" in why["f"] and "line 7" in why["f"]


def test_folder_splits_by_subject_are_deterministic(tmp_path: Path) -> None:
    root = make_folder_csv(tmp_path)
    draws = {}
    for seed in range(6):
        clips, _ = find_folder(root, "clips.csv", test_fraction=0.4, seed=seed)
        assert clips == find_folder(root, "clips.csv", test_fraction=0.4, seed=seed)[0]
        by_subject: dict[str, set[str]] = {}
        for clip in clips:
            by_subject.setdefault(clip.subject, set()).add(clip.split)
        assert all(len(splits) == 1 for splits in by_subject.values())
        test_subjects = sorted(s for s, splits in by_subject.items() if splits == {"test"})
        assert len(test_subjects) == 2  # 0.4 of 6 subjects, rounded
        draws[seed] = tuple(test_subjects)
    assert len(set(draws.values())) > 1


def test_folder_splits_by_clip(tmp_path: Path) -> None:
    root = make_folder_csv(tmp_path, with_subject=False)
    clips, _ = find_folder(root, "clips.csv", test_fraction=0.25, seed=3)
    assert all(c.subject is None for c in clips)
    assert sum(c.split == "test" for c in clips) == 2  # 0.25 of 8 clips
    assert clips == find_folder(root, "clips.csv", test_fraction=0.25, seed=3)[0]


def test_folder_split_column_and_absolute_paths(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "clip9"
    write(tmp_path / "data" / "clips.csv", "frames_dir,label,split\na,happy,train\nb,sad,TEST\n"
                                            f"{outside},fear,test\nc,angry,valid\n")
    clips, skips = find_folder(tmp_path / "data", "clips.csv", test_fraction=0.5, seed=0)
    assert [(c.clip_id, c.split) for c in clips] == [("a", "train"), ("b", "test"), (str(outside), "test")]
    assert clips[2].frames_dir == outside
    assert "'valid'" in reasons(skips)["c"]


def test_folder_missing_column(tmp_path: Path) -> None:
    write(tmp_path / "clips.csv", "frames_dir,emotion\na,happy\n")
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) label in the header line 'frames_dir,emotion'"):
        find_folder(tmp_path, "clips.csv", test_fraction=0.2, seed=0)
    with pytest.raises(DatasetLayoutError, match=r"other\.csv"):
        find_folder(tmp_path, "other.csv", test_fraction=0.2, seed=0)


# --- Frame checks --------------------------------------------------------------------------------------

def test_collect_frames_drops_bad_frames_and_short_clips(tmp_path: Path) -> None:
    root = make_dfew(tmp_path)
    frames = root / "Clip" / "clip_224x224"
    (frames / "00001" / "3.jpg").write_bytes(b"")
    truncated = write_frames(frames / "00001", ["4.jpg"]) / "4.jpg"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    (frames / "00001" / "5.jpg").write_text("not an image")
    (frames / "00001" / "6.png").write_text("not an image either")
    (frames / "00001" / "notes.txt").write_text("not a frame suffix")
    shutil.rmtree(frames / "00002")
    (frames / "00004" / "10.jpg").unlink()
    clips, _ = find_dfew(root, fold=1)

    index = collect_frames(clips, verify=True, min_frames=3)

    assert [(c.clip_id, c.frames) for c in index.clips] == [("00001", tuple(DFEW_FRAMES))]
    why = reasons(index.skips)
    assert why["00001/3.jpg"] == "frame dropped: empty file"
    assert why["00001/4.jpg"] == "frame dropped: damaged JPEG data (decoder: Premature end of JPEG file)"
    assert why["00001/5.jpg"] == why["00001/6.png"] == "frame dropped: not a decodable image"
    assert why["00001/notes.txt"].startswith("not a frame: not an image suffix (.txt;")
    assert "frames folder missing" in why["00002"]
    assert "only 2 usable frames" in why["00004"]
    assert len(index.skips) == 7


def test_collect_frames_without_verify_keeps_every_frame(tmp_path: Path) -> None:
    root = make_dfew(tmp_path)
    (root / "Clip" / "clip_224x224" / "00001" / "3.jpg").write_bytes(b"")
    empty = root / "Clip" / "clip_224x224" / "00004"
    for name in DFEW_FRAMES:
        (empty / name).unlink()
    clips, _ = find_dfew(root, fold=1)
    index = collect_frames(clips, verify=False, min_frames=1)
    assert index.clips[0].frames == ("1.jpg", "2.jpg", "3.jpg", "10.jpg")
    assert "no usable image frames" in reasons(index.skips)["00004"]

"""The demo dataset: DFEW layout, long tail, ground truth, determinism, detectability."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import dlib
import numpy as np
import pandas as pd
import pytest

from argen.aus import INTENSITY_COLUMNS
from argen.datasets import find_demo
from argen.demo.dataset import N_FOLDS, plan_clips, render_clip, write_demo_dataset
from argen.demo.face import AU_BASIS, FaceShape, expressive_landmarks, neutral_landmarks
from argen.emotions import EMOTIONS
from argen.params import DemoParams
from tests.conftest import TINY_DEMO


def tree_digest(root: Path) -> str:
    """One hash over every file's relative path and bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes(tiny_demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_demo_dataset(again, TINY_DEMO, seed=0, workers=1)  # a different worker count, the same bytes
    assert tree_digest(again) == tree_digest(tiny_demo)
    other = tmp_path / "other"
    write_demo_dataset(other, TINY_DEMO, seed=1)
    assert tree_digest(other) != tree_digest(tiny_demo)


def test_written_in_dfew_layout(tiny_demo: Path) -> None:
    clip = tiny_demo / "Clip" / "clip_224x224" / "00001"
    assert sorted(p.name for p in clip.iterdir()) == sorted(f"{k}.jpg" for k in range(1, TINY_DEMO.n_frames + 1))
    assert cv2.imread(str(clip / "1.jpg")).shape == (TINY_DEMO.image_size, TINY_DEMO.image_size, 3)
    test_ids = set()
    for fold in range(1, N_FOLDS + 1):
        train = pd.read_csv(tiny_demo / "EmoLabel_DataSplit" / "train(single-labeled)" / f"set_{fold}.csv")
        test = pd.read_csv(tiny_demo / "EmoLabel_DataSplit" / "test(single-labeled)" / f"set_{fold}.csv")
        assert list(train.columns) == ["video_name", "label"]
        assert train.label.between(1, 7).all() and test.label.between(1, 7).all()
        assert not set(train.video_name) & set(test.video_name)
        assert len(train) + len(test) == TINY_DEMO.n_clips
        assert not test_ids & set(test.video_name), "each clip is a test clip in exactly one fold"
        test_ids |= set(test.video_name)
    assert len(test_ids) == TINY_DEMO.n_clips


def test_read_back_through_the_dfew_adapter(tiny_demo: Path) -> None:
    sources, skips = find_demo(tiny_demo, fold=2)
    assert not skips and len(sources) == TINY_DEMO.n_clips
    meta = pd.read_csv(tiny_demo / "demo_meta" / "clips.csv", dtype={"video_name": str})
    by_id = meta.set_index("video_name")
    for s in sources:
        assert s.label == by_id.loc[s.clip_id, "label"]
        assert s.subject == by_id.loc[s.clip_id, "subject"]
        assert (s.split == "test") == (by_id.loc[s.clip_id, "fold"] == 2)
    assert meta.subject.value_counts().max() > 1, "subjects span several clips"


def test_ground_truth_is_openface_csv(tiny_demo: Path) -> None:
    truth = pd.read_csv(tiny_demo / "demo_meta" / "aus" / "00001.csv")
    assert list(truth.columns[:5]) == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert set(INTENSITY_COLUMNS) <= set(truth.columns)
    assert {"x_0", "y_67"} <= set(truth.columns)
    assert len(truth) == TINY_DEMO.n_frames and truth.frame.tolist() == list(range(1, TINY_DEMO.n_frames + 1))
    assert truth[list(INTENSITY_COLUMNS)].to_numpy().min() >= 0
    assert truth[list(INTENSITY_COLUMNS)].to_numpy().max() <= 5


def test_long_tail_and_label_noise() -> None:
    params = DemoParams(n_clips=2000, label_noise=0.05)
    specs, _ = plan_clips(params, seed=3)
    rendered = pd.Series([s.emotion for s in specs]).value_counts(normalize=True)
    total = sum(params.class_fractions.values())
    for emotion in EMOTIONS:  # largest-remainder rounding: exact to one clip
        assert rendered[emotion] == pytest.approx(params.class_fractions[emotion] / total, abs=1 / 2000)
    noisy = np.mean([s.label != s.emotion for s in specs])
    assert noisy == pytest.approx(0.05, abs=0.015)
    labels = pd.Series([s.label for s in specs]).value_counts(normalize=True)
    assert labels["disgust"] < 0.02, "label noise keeps disgust rare"


def test_expressions_move_the_right_landmarks() -> None:
    neutral = neutral_landmarks(FaceShape())
    smile = expressive_landmarks(neutral, {12: 5.0}, FaceShape())
    assert smile[48, 1] < neutral[48, 1] and smile[54, 1] < neutral[54, 1], "AU12 lifts the mouth corners"
    surprise = expressive_landmarks(neutral, {1: 5.0, 2: 5.0, 26: 5.0}, FaceShape())
    assert (surprise[17:27, 1] < neutral[17:27, 1]).all(), "AU1+2 raise the brows"
    assert surprise[57, 1] - neutral[57, 1] > 0.15, "AU26 drops the lower lip"
    blink = expressive_landmarks(neutral, {45: 5.0}, FaceShape())
    assert abs(blink[37, 1] - blink[41, 1]) < 0.2 * abs(neutral[37, 1] - neutral[41, 1])
    assert set(AU_BASIS) >= {1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 25, 26}


def test_faces_are_found_by_haar_and_dlib() -> None:
    """At the default size, both detectors find a face on at least 95% of frames."""
    params = DemoParams(n_clips=200)
    specs, identities = plan_clips(params, seed=0)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    hog = dlib.get_frontal_face_detector()
    haar_hits = dlib_hits = total = 0
    for spec in specs[::5]:  # 40 clips, every class and condition represented; 320 frames
        frames, _ = render_clip(spec, *identities[spec.subject], params)
        for frame in frames[::2]:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            haar_hits += len(cascade.detectMultiScale(grey, 1.1, 5, minSize=(30, 30))) > 0
            dlib_hits += len(hog(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 1)) > 0
            total += 1
    assert haar_hits / total >= 0.95, f"Haar found {haar_hits}/{total}"
    assert dlib_hits / total >= 0.95, f"dlib found {dlib_hits}/{total}"

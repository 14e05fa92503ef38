"""Recognition inputs and tables: frames by segments, the decode and extraction caches, geometry features,
real and generated clips through one path, and the pooled table with its paired differences."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from argen.emotions import EMOTIONS
from argen.extract.run import extract
from argen.params import ExtractAUsParams
from argen.extract import cache as cache_module
from argen.extract.cache import content_key
from argen.recognize.clips import (GEOMETRY_DIM, decode_clip_frames, geometry_sequence, normalised_landmarks,
                                   segment_indices)
from argen.recognize.summary import delta_table, figures, oracle_shares, summary_table
from argen.recognize.train import load_geometry_data, load_video_data
from tests.conftest import demo_landmarks


def test_segments_take_centres_in_testing_and_one_frame_per_segment_in_training() -> None:
    assert segment_indices(16, 16).tolist() == list(range(16))
    assert segment_indices(32, 16).tolist() == list(range(1, 32, 2))  # centre of each 2-frame segment
    assert segment_indices(8, 16).tolist() == [k // 2 for k in range(16)]  # short clip: frames repeat in order
    assert segment_indices(1, 4).tolist() == [0, 0, 0, 0]
    rng = np.random.default_rng(0)
    for _ in range(50):
        picks = segment_indices(40, 8, rng)
        assert all(5 * k <= p < 5 * (k + 1) for k, p in enumerate(picks))  # inside its own segment
    draws = {tuple(segment_indices(40, 8, rng)) for _ in range(20)}
    assert len(draws) > 1  # training offsets vary
    with pytest.raises(ValueError):
        segment_indices(0, 16)


def write_clip(folder: Path, frames: list[np.ndarray], suffix: str = ".jpg") -> list[str]:
    folder.mkdir(parents=True)
    names = []
    for k, frame in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"{k}{suffix}"), frame)
        names.append(f"{k}{suffix}")
    return names


def test_content_key_follows_the_bytes_not_the_place(tmp_path: Path) -> None:
    frame = np.full((20, 20, 3), 90, np.uint8)
    names = write_clip(tmp_path / "a", [frame, frame])
    write_clip(tmp_path / "b", [frame, frame])
    assert content_key(tmp_path / "a", names) == content_key(tmp_path / "b", names)
    changed = frame.copy()
    changed[0, 0] = 0
    cv2.imwrite(str(tmp_path / "b" / "2.jpg"), changed)
    assert content_key(tmp_path / "a", names) != content_key(tmp_path / "b", names)


def test_decoding_gives_rgb_at_the_input_size_and_records_bad_frames(tmp_path: Path) -> None:
    bgr = np.zeros((40, 60, 3), np.uint8)
    bgr[:, :30] = (0, 0, 255)  # red on the left, in OpenCV's BGR order
    names = write_clip(tmp_path / "clip", [bgr, bgr], ".png")
    (tmp_path / "clip" / "3.png").write_bytes(b"not an image")
    frames, skips = decode_clip_frames(tmp_path / "clip", names + ["3.png"], 16, face_crop=False)
    assert frames.shape == (2, 16, 16, 3) and frames.dtype == np.uint8
    assert frames[0, 8, 2].tolist() == [255, 0, 0] and frames[0, 8, 13].tolist() == [0, 0, 0]  # RGB, left red
    assert len(skips) == 1 and skips[0][0].endswith("3.png") and "frame dropped" in skips[0][1]


def test_face_crop_cuts_to_the_face_and_records_when_there_is_none(tmp_path: Path) -> None:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    names = write_clip(tmp_path / "face", [astronaut])
    cropped, skips = decode_clip_frames(tmp_path / "face", names, 64, face_crop=True)
    full, _ = decode_clip_frames(tmp_path / "face", names, 64, face_crop=False)
    assert not skips and not np.array_equal(cropped, full)
    blank = write_clip(tmp_path / "blank", [np.full((80, 80, 3), 128, np.uint8)])
    _, skips = decode_clip_frames(tmp_path / "blank", blank, 64, face_crop=True)
    assert skips and "no face found" in skips[0][1]


def clip_table(tmp_path: Path, name: str, label: str, frames: list[np.ndarray], set_name: str) -> dict:
    folder = tmp_path / name
    names = write_clip(folder, frames)
    return {"clip_id": name, "frames_dir": str(folder), "frames": names, "label": label, "split": "train",
            "subject": "S1", "set": set_name, "content_key": content_key(folder, names)}


def test_generated_clips_load_through_the_same_path_as_real_ones(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ARGEN_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    real = [rng.integers(0, 255, (48, 48, 3), dtype=np.uint8) for _ in range(4)]
    table = pd.DataFrame([clip_table(tmp_path, "00001", "happy", real, "original"),
                          clip_table(tmp_path, "gen-fear-1", "fear", real[::-1], "argen"),
                          clip_table(tmp_path, "gen-fear-2", "fear", real, "argen")])
    for name in (tmp_path / "gen-fear-2").iterdir():
        name.write_bytes(b"\xff\xd8 truncated")  # a generated clip that fails to decode
    table.loc[2, "content_key"] = content_key(tmp_path / "gen-fear-2", table.frames[2])
    data = load_video_data(table, 32, face_crop=False)
    assert data.clip_ids == ["00001", "gen-fear-1"] and data.labels.tolist() == [0, 6]
    assert ("gen-fear-2", "no frame decodes") in data.skips
    expected, _ = decode_clip_frames(tmp_path / "gen-fear-1", table.frames[1], 32, False)
    assert np.array_equal(data.items[1], expected)
    cached = list((tmp_path / "cache" / "recognition" / "frames").rglob("*.npy"))
    assert len(cached) == 3
    again = load_video_data(table, 32, face_crop=False)  # from the cache now
    assert all(np.array_equal(a, b) for a, b in zip(data.items, again.items))
    inputs, labels = data.batch(np.array([0, 1]), 6)
    assert inputs[0].shape == (2, 6, 3, 32, 32) and inputs[0].dtype.is_floating_point is False
    assert labels.tolist() == [0, 6]


def face_rows(landmarks: np.ndarray, success: list[bool]) -> pd.DataFrame:
    rows = {"clip_id": "c", "frame": np.arange(len(landmarks)), "success": success}
    rows.update({f"x_{i}": landmarks[:, i, 0] for i in range(68)})
    rows.update({f"y_{i}": landmarks[:, i, 1] for i in range(68)})
    from argen.aus import INTENSITY_COLUMNS
    rows.update({c: np.full(len(landmarks), 2.5) for c in INTENSITY_COLUMNS})
    return pd.DataFrame(rows)


def test_geometry_features_ignore_pose_and_scale_and_mask_missing_faces() -> None:
    base = demo_landmarks(100)
    angle = np.radians(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (base - 50) @ rotation.T * 1.7 + 80  # the same face rotated, scaled and shifted
    assert np.allclose(normalised_landmarks(base[None])[0], normalised_landmarks(moved[None])[0], atol=1e-9)
    opened = base.copy()
    opened[57] += (0, 6)  # the lower lip drops in frame 2
    features, valid = geometry_sequence(face_rows(np.stack([base, opened, base]), [True, True, False]))
    assert features.shape == (3, GEOMETRY_DIM) and valid.tolist() == [True, True, False]
    assert not features[2].any()  # the missing face is zeros
    motion = features[:2, 136:272].reshape(2, 68, 2)
    assert np.abs(np.delete(motion, 57, axis=1)).max() < 1e-9  # only point 57 moves against the median
    assert motion[1, 57, 1] - motion[0, 57, 1] > 0  # and it moves down
    assert np.allclose(features[:2, 272:], 0.5)  # AU intensity 2.5 of 5
    table = pd.DataFrame({"clip_id": ["c"], "label": ["fear"]})
    data = load_geometry_data(table, face_rows(np.stack([base, opened]), [True, True]))
    mean, std = data.feature_stats()
    data.standardise(mean, std)
    values, _ = data.items[0]
    assert np.allclose(values.mean(axis=0), 0, atol=1e-5)


def test_the_extraction_cache_reuses_a_clip_wherever_it_appears(tmp_path: Path, monkeypatch) -> None:
    from skimage import data

    astronaut = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256))
    row = clip_table(tmp_path, "a", "happy", [astronaut, astronaut], "original")
    broken = clip_table(tmp_path, "b", "fear", [astronaut], "original")
    (Path(broken["frames_dir"]) / broken["frames"][0]).write_bytes(b"not an image")
    broken["content_key"] = content_key(broken["frames_dir"], broken["frames"])
    chosen = pd.DataFrame([row, broken])
    params = ExtractAUsParams(workers=1)
    first, first_skips = extract(chosen, params, tmp_path / "cache")
    assert first.success.all() and set(first.clip_id) == {"a"}
    assert set(first_skips.item) == {"b", f"b/{broken['frames'][0]}"}

    def not_again(*args, **kwargs):
        raise AssertionError("a cached clip was processed again")

    monkeypatch.setattr("argen.extract.run.process_clip", not_again)
    moved = chosen.assign(frames_dir=str(tmp_path / "elsewhere"))
    again, _ = extract(moved, params, tmp_path / "cache")
    pd.testing.assert_frame_equal(first, again)
    # the same content under other ids (an oversampled copy, a duplicate clip): the rows and skips follow the id
    copies, copy_skips = extract(chosen.assign(clip_id=["a~os1", "b~os0"]), params, tmp_path / "cache")
    pd.testing.assert_frame_equal(copies, first.assign(clip_id="a~os1"))
    assert set(copy_skips.item) == {"b~os0", f"b~os0/{broken['frames'][0]}"}


def predictions(model: str, variant: str, fold: int, seed: int, truth: list[int], predicted: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "variant": variant, "fold": fold, "seed": seed,
                         "clip_id": [f"{fold}-{k}" for k in range(len(truth))], "label": truth, "predicted": predicted})


def test_figures_of_a_hand_made_run_and_no_support_is_nan() -> None:
    truth = np.array([0, 0, 0, 1, 1, 4])
    predicted = np.array([0, 0, 1, 1, 0, 4])
    values = figures(truth, predicted, 7)
    assert values[0] == pytest.approx(4 / 6)  # WAR
    assert values[1] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # UAR over the 3 classes present
    assert values[2:5].tolist()[:2] == pytest.approx([2 / 3, 1 / 2])
    assert np.isnan(values[2 + 5])  # disgust: no support


def test_pooled_table_and_paired_differences_on_a_hand_made_set() -> None:
    classes = list(EMOTIONS)
    truth = [0, 0, 1, 1, 4, 4, 5, 6]
    rows = []
    for fold in (1, 2):
        for seed in (0, 1):
            rows.append(predictions("M", "original", fold, seed, truth, [0, 0, 1, 0, 0, 0, 0, 0]))
            rows.append(predictions("M", "argen", fold, seed, truth, [0, 0, 1, 0, 4, 0, 5, 0]))
            rows.append(predictions("M", "oracle", fold, seed, truth, [0, 0, 1, 0, 4, 4, 5, 6]))
    table = summary_table(pd.concat(rows), classes, resamples=200)
    original = table[table.variant == "original"].iloc[0]
    assert original.runs == 4 and original.folds == 2 and original.seeds == 2 and original.test_clips == 16
    assert original["WAR"] == pytest.approx(3 / 8) and original["AR-SU_support"] == 4
    assert original["AR-SU"] == 0.0 and original["AR-SU_low"] == 0.0 and 0.4 < original["AR-SU_high"] < 0.6
    assert original["WAR_sd"] == 0.0 and original["WAR_low"] <= 3 / 8 <= original["WAR_high"]
    deltas = delta_table(pd.concat(rows), classes, resamples=200)
    argen = deltas[deltas.variant == "argen"].iloc[0]
    assert argen.pairs == 4
    assert argen["d_AR-SU"] == pytest.approx(0.5) and argen["d_AR-DI"] == pytest.approx(1.0)
    assert argen["d_WAR"] == pytest.approx(2 / 8) and argen["d_WAR_runs"] == pytest.approx(2 / 8)
    assert argen["d_WAR_low"] <= 2 / 8 <= argen["d_WAR_high"]
    shares = oracle_shares(deltas, ["WAR", "AR-SU", "AR-HA"])
    assert shares["share_AR-SU"].iloc[0] == pytest.approx(0.5)  # +0.5 of the oracle's +1.0
    assert shares["share_WAR"].iloc[0] == pytest.approx((2 / 8) / (4 / 8))
    assert np.isnan(shares["share_AR-HA"].iloc[0])  # the oracle gained nothing there


def test_variants_tested_on_different_clips_are_refused() -> None:
    rows = pd.concat([predictions("M", "original", 1, 0, [0, 1], [0, 1]),
                      predictions("M", "argen", 1, 0, [1, 1], [0, 1])])
    with pytest.raises(ValueError, match="different clips"):
        delta_table(rows, list(EMOTIONS), resamples=10)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARGEN_CACHE", str(tmp_path))
    assert cache_module.cache_root() == tmp_path / "recognition"


def test_a_generated_clip_that_does_not_decode_is_a_recorded_skip(tmp_path: Path, monkeypatch) -> None:
    from skimage import data

    from argen.params import Params
    from argen.recognize.tracks import build_tracks

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARGEN_CACHE", str(tmp_path / "cache"))
    face = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (128, 128))
    good = clip_table(tmp_path / "data/generated", "gen-fear-1", "fear", [face, face], "argen")
    bad = clip_table(tmp_path / "data/generated", "gen-fear-2", "fear", [face, face], "argen")
    for frame in Path(bad["frames_dir"]).iterdir():
        frame.write_bytes(b"\xff\xd8\xff broken")
    index = pd.DataFrame([good, bad]).drop(columns=["set", "content_key"]).assign(status="ok")
    index.to_parquet(tmp_path / "data/generated/index.parquet")
    table, frames, skips = build_tracks("argen", Params(extract_aus={"workers": 1}))
    assert table.clip_id.tolist() == ["gen-fear-1"] and table.n_usable.tolist() == [2]
    assert set(frames.clip_id) == {"gen-fear-1"}
    reasons = dict(zip(skips.item, skips.reason))
    assert reasons["gen-fear-2"] == "no usable frame"
    assert sum(item.startswith("gen-fear-2/") for item in reasons) == 2  # each frame with the decoder's reason


def test_evidence_commands_carry_the_fold_every_override_and_reset_each_variant_key() -> None:
    from argen.experiments.evidence import read_config, run_commands
    from tests.conftest import ROOT

    config = read_config(ROOT / "configs/evidence.yaml")
    commands = run_commands(config)
    names = [c[c.index("-n") + 1] for c in commands]
    assert names[:4] == ["evidence-fold1", "evidence-fold1-wo_ard", "evidence-fold1-argen_paper",
                         "evidence-fold1-wo_asi"] and len(names) == 20
    assert all("--queue" not in c and c[-1] == "recognition" for c in commands)  # in the workspace, to the table
    overrides = [[c[k + 1] for k, part in enumerate(c) if part == "-S"] for c in commands]
    assert overrides[0][0] == "data.fold=1" and "recognize.seeds=[0, 1, 2]" in overrides[0]
    assert "recognize.variants=[original, argen, oracle, oversample]" in overrides[0] and "demo.n_clips=3000" in overrides[0]
    # the experiment after a variant resets its key: argen_paper sets ard.policy back to learned after wo_ard
    assert "generate.policy=fixed" in overrides[1] and "generate.policy=learned" in overrides[2] and "ard.reward=paper" in overrides[2]
    assert "ard.reward=argen" in overrides[3] and "asi.mode=fixed" in overrides[3]


def test_oversampling_repeats_real_training_clips_to_the_counts() -> None:
    from argen.recognize.clips import oversampled_clips

    clips = pd.DataFrame({"clip_id": [f"c{k}" for k in range(9)], "frames_dir": [f"d{k}" for k in range(9)],
                          "frames": [["1.jpg"]] * 9, "label": ["disgust"] * 3 + ["fear"] * 2 + ["disgust"] * 2 + ["happy"] * 2,
                          "split": ["train"] * 5 + ["test"] * 2 + ["train"] * 2, "subject": ["s"] * 9})
    copies = oversampled_clips(clips, {"disgust": 7, "fear": 1}, seed=0)
    assert copies.label.value_counts().to_dict() == {"disgust": 7, "fear": 1}
    assert copies.clip_id.is_unique and (copies.split == "train").all()
    sources = copies.clip_id.str.split("~").str[0]
    assert set(sources[copies.label == "disgust"]) == {"c0", "c1", "c2"}  # the test clips c5, c6 never
    assert sources[copies.label == "disgust"].value_counts().sort_values().tolist() == [2, 2, 3]  # each once first
    assert (copies.frames_dir == sources.map(dict(zip(clips.clip_id, clips.frames_dir)))).all()  # the real frames
    assert oversampled_clips(clips, {"disgust": 7, "fear": 1}, seed=0).equals(copies)
    assert oversampled_clips(clips, {"surprise": 2, "fear": 1}, seed=0).label.tolist() == ["fear"]  # no surprise clip

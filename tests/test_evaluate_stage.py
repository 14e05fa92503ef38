"""The evaluate stage's pieces: which clips, which inputs, which features, the floor, the distance blocks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from argen.aus import INTENSITY_COLUMNS
from argen.errors import InputError
from argen.evaluate import ground_truth
from argen.evaluate.features import au_trajectories
from argen.evaluate.ground_truth import evaluation_clips, first_frame_inputs, render_floor
from argen.evaluate.results import distance_block
from argen.extract import FRAME_COLUMNS, LANDMARK_COLUMNS, empty_rows
from argen.io import write_parquet
from argen.params import Params
from tests.conftest import TINY


def clip_rows(n: int) -> pd.DataFrame:
    """A hand-made clip table: two clips per (label, split) for a few labels."""
    rows = []
    for label in ("happy", "surprise", "disgust", "fear"):
        for split in ("train", "test"):
            for k in range(n):
                rows.append({"clip_id": f"{label}-{split}-{k}", "frames_dir": f"x/{label}{k}", "frames": ["1.jpg"],
                             "label": label, "subject": f"S{k}", "split": split})
    return pd.DataFrame(rows)


def test_evaluation_clips_are_the_scarce_clips_of_the_chosen_splits(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_parquet(clip_rows(3), "data/interim/clips.parquet")
    table, where = evaluation_clips(Params())
    assert set(table.label) == {"surprise", "disgust", "fear"} and set(table.split) == {"test"}
    assert len(table) == 9 and "test split" in where
    capped = Params.model_validate({"evaluate": {"max_per_class": 2, "splits": ["train", "test"]}})
    first, _ = evaluation_clips(capped)
    again, where = evaluation_clips(capped)
    assert first.label.value_counts().to_dict() == {"disgust": 2, "fear": 2, "surprise": 2}
    pd.testing.assert_frame_equal(first, again)  # the draw is seeded
    assert "at most 2 per emotion" in where


def frame_rows(clip_id: str, n: int, faces: list[bool], au01: list[float]) -> pd.DataFrame:
    rows = empty_rows(clip_id, [f"{k + 1}.jpg" for k in range(n)])
    rows["success"] = faces
    for column in INTENSITY_COLUMNS:
        rows[column] = np.where(faces, 0.0, np.nan)
    rows["AU01_r"] = np.where(faces, au01, np.nan)
    for i, column in enumerate(LANDMARK_COLUMNS):
        rows[column] = np.where(faces, float(i), np.nan)
    return rows[list(FRAME_COLUMNS)]


def test_au_trajectory_is_the_mean_of_each_part_in_order() -> None:
    frames = pd.concat([frame_rows("a", 8, [True] * 8, list(range(8))),
                        frame_rows("b", 8, [True, False, True, True, False, False, True, True], list(range(8))),
                        frame_rows("c", 8, [True, True, True, True, True, True, False, False], list(range(8)))])
    features, reasons = au_trajectories(frames, ["a", "b", "c", "missing"], 4)
    au01 = list(INTENSITY_COLUMNS).index("AU01_r")
    assert features.shape == (4, 4 * 17)
    assert features[0, au01::17].tolist() == [0.5, 2.5, 4.5, 6.5]  # parts {0,1} {2,3} {4,5} {6,7}
    assert reasons[1].startswith("a part of the clip")  # frames 4 and 5 (part 3) have no face
    assert np.isnan(features[1]).all()
    assert reasons[2].startswith("a part of the clip") and reasons[3] == "no frame with a face and AUs"
    frames_b = frame_rows("d", 8, [True, False, True, True, True, False, True, True], list(range(8)))
    features, reasons = au_trajectories(frames_b, ["d"], 4)
    assert reasons == [""] and features[0, au01::17].tolist() == [0.0, 2.5, 4.0, 6.5]  # the faceless frame is left out


def test_the_input_is_the_first_frame_with_a_face(tmp_path: Path) -> None:
    for clip in ("a", "b"):
        (tmp_path / clip).mkdir()
        for k in range(3):
            cv2.imwrite(str(tmp_path / clip / f"{k + 1}.jpg"), np.full((16, 16, 3), 40 * k + 10, np.uint8))
    table = pd.DataFrame({"clip_id": ["a", "b"], "frames_dir": [str(tmp_path / "a"), str(tmp_path / "b")],
                          "label": ["fear", "fear"], "subject": ["S1", "S2"]})
    frames = pd.concat([frame_rows("a", 3, [False, True, True], [0, 1, 2]), frame_rows("b", 3, [False] * 3, [0] * 3)])
    inputs, images, landmarks, skipped = first_frame_inputs(table, frames)
    assert inputs.clip_id.tolist() == ["a"] and inputs.input_frame.tolist() == [2]
    assert abs(int(images["a"].mean()) - 50) <= 2  # frame 2.jpg, not 1.jpg
    assert landmarks["a"].shape == (68, 2) and landmarks["a"][3].tolist() == [3.0, 71.0]  # x_3, y_3
    assert skipped == [("b", "no frame with a face: nothing to generate from")]


def test_the_floor_renders_the_real_clips_subject_and_label(tmp_path: Path, monkeypatch) -> None:
    params = Params.model_validate({"demo": TINY})
    from argen.demo.dataset import plan_clips

    _, faces = plan_clips(params.demo, params.seed)
    seen = []
    import argen.demo.dataset as dataset

    real_render = dataset.render_clip

    def spy(spec, shape, appearance, demo):
        seen.append((spec.subject, spec.emotion, shape, appearance))
        return real_render(spec, shape, appearance, demo)

    monkeypatch.setattr(dataset, "render_clip", spy)
    table = pd.DataFrame({"clip_id": ["00003", "00007"], "label": ["fear", "disgust"],
                          "subject": [sorted(faces)[0], sorted(faces)[1]]})
    floor = render_floor(table, params, tmp_path, Path("data/evaluate/floor"))
    assert [(s, e) for s, e, *_ in seen] == [(sorted(faces)[0], "fear"), (sorted(faces)[1], "disgust")]
    assert seen[0][2] == faces[sorted(faces)[0]][0] and seen[1][3] == faces[sorted(faces)[1]][1]
    assert floor.clip_id.tolist() == ["floor-00003", "floor-00007"]
    assert floor.frames_dir.iloc[0] == "data/evaluate/floor/floor-00003"
    assert len(list((tmp_path / "floor-00003").glob("*.jpg"))) == TINY["n_frames"]
    again = tmp_path / "again"
    again.mkdir()
    render_floor(table, params, again, Path("x"))
    assert (again / "floor-00003" / "1.jpg").read_bytes() == (tmp_path / "floor-00003" / "1.jpg").read_bytes()
    with pytest.raises(InputError, match="subject 'S999' is not a demo subject"):
        render_floor(table.assign(subject="S999"), params, tmp_path / "x", Path("x"))


def test_distance_block_known_answers() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(12, 3))
    subjects = np.repeat(["S1", "S2", "S3", "S4"], 3)
    emotions = np.tile(["fear", "surprise", "disgust"], 4)
    same = distance_block(real, real.copy(), subjects, emotions, n_boot=20, seed=0, min_group=2, paired=True)
    assert same["fd"] == 0 and same["sfd"] == 0 and same["tfd"] == 0
    assert same["n_real"] == 12 and same["sfd_groups"] == 4 and same["tfd_groups"] == 3
    shifted = distance_block(real, real + [2.0, 0, 0], subjects, emotions, n_boot=20, seed=0, min_group=2, paired=True)
    assert shifted["fd"] == pytest.approx(4.0) and shifted["sfd"] == pytest.approx(4.0)  # only the mean moves
    holes = real.copy()
    holes[0] = np.nan
    paired = distance_block(real, holes, subjects, emotions, n_boot=0, seed=0, min_group=2, paired=True)
    assert paired["n_real"] == paired["n_generated"] == 11  # the pair goes, not just the generated clip
    assert paired["warning"] == ""  # 11 clips in 3 dimensions: a full-rank covariance
    wide = rng.normal(size=(12, 16))
    block = distance_block(wide, wide + 1, subjects, emotions, n_boot=0, seed=0, min_group=2, paired=True)
    assert "rank-deficient" in block["warning"]  # 12 clips in 16 dimensions


def test_tiny_evaluate_params_are_valid() -> None:
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    Params.model_validate(params)
    with pytest.raises(Exception, match="evaluate.root"):
        Params.model_validate({"evaluate": {"source": "ckplus"}})
    with pytest.raises(Exception, match="lpips_heads_path"):
        Params.model_validate({"evaluate": {"lpips_alexnet_path": "a.pth"}})
    assert ground_truth.FLOOR_STREAM != 0


def test_ck_plus_zero_shot_evaluates_every_labelled_scarce_sequence(tmp_path: Path) -> None:
    from tests.test_datasets import make_ckplus

    root = make_ckplus(tmp_path / "ckplus")
    params = Params.model_validate({"evaluate": {"source": "ckplus", "root": str(root)}, "data": {"min_frames": 2}})
    table, where = evaluation_clips(params)
    assert table.clip_id.tolist() == ["S005/001"] and table.label.tolist() == ["disgust"]  # happy is not scarce
    assert table.subject.tolist() == ["S005"] and "CK+" in where and "zero-shot" in where

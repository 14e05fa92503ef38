"""Known-answer tests for the classes of bugs a review planted and the older tests missed (issue 21, item 1).

Each test names its class; the bugs planted to check that it fails are listed in the issue's closing note:

* aggregation order: a per-frame clip or floor applied after averaging instead of before;
* shaping that never reaches the loss: REINFORCE on the raw rewards instead of the shaped ones;
* selection leakage: a choice or a statistic computed from the wrong split;
* one-sided resampling: a paired bootstrap that resamples only one side;
* stage wiring: content keys, the judge's hits, the oracle's counts, the oracle-share guard and the
  evaluation's masks, each through the package function its stage calls.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from argen.policy.comparison import fit_and_compare
from argen.policy.reinforce import ACTIONS, PolicySettings, train_policy
from argen.rewards.components import EXPRESSION_INDEX, expression_reward, frame_quality, quality_reward, \
    temporal_consistency, training_a_max
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.emotions import EMOTIONS
from argen.evaluate.frechet import fd_with_interval
from argen.evaluate.results import distance_block
from argen.extract.cache import content_keys
from argen.experiments.evidence import pool_judged
from argen.recognize.judge import judge_shares
from argen.counts import generated_counts
from argen.recognize.summary import delta_table, oracle_shares


def checkerboard(size: int = 32, cell: int = 4) -> np.ndarray:
    """A black-and-white BGR checkerboard (uint8)."""
    y, x = np.indices((size, size)) // cell
    grey = np.where((x + y) % 2 == 0, 255, 0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


# --- aggregation order -------------------------------------------------------------------------------------

def test_temporal_consistency_clips_each_pair_before_averaging() -> None:
    board = checkerboard()
    inverse = 255 - board
    video = np.stack([board, inverse, inverse])  # SSIM(board, inverse) < 0, SSIM(inverse, inverse) = 1
    assert temporal_consistency(video) == pytest.approx(0.5)  # mean(clip(-0.99..), clip(1)) = (0 + 1) / 2


def test_expression_reward_floors_each_frame_before_averaging() -> None:
    a_max = 2.0
    aus = np.zeros((3, len(INTENSITY_AUS)))
    aus[0, EXPRESSION_INDEX[0]] = 4.0  # ||a|| = 2 a_max: this frame earns max(0, 1 - 2) = 0, not -1
    aus[2] = np.nan  # no face: earns 0
    assert expression_reward(aus, a_max) == pytest.approx(1 / 3)
    assert expression_reward(aus[:2], a_max) == pytest.approx(0.5)  # floored after averaging: max(0, 1 - 1) = 0


def test_quality_mean_is_over_per_frame_scores() -> None:
    flat = np.full((32, 32, 3), 128, np.uint8)  # sharpness 0, contrast 0: Q_frame = 0
    board = checkerboard()  # grey std 127.5 >> 32 and a huge Laplacian variance: Q_frame ~ 1
    per_frame = frame_quality(np.stack([flat, board]), 200.0, 32.0)
    assert per_frame[0] == 0.0 and per_frame[1] == pytest.approx(1.0, abs=1e-6)
    _, q_m, _ = quality_reward(np.stack([flat, board]), 0.6, 200.0, 32.0)
    assert q_m == pytest.approx(0.5, abs=1e-6)  # the figures averaged first would give ~1


# --- shaping that never reaches the loss ---------------------------------------------------------------------

@pytest.mark.parametrize("advantage", ["reinforce", "group"])
def test_the_loss_uses_the_shaped_rewards(advantage: str) -> None:
    """Every raw reward is 0, so a loss on the raw rewards is exactly 0; shaping gives 3 of 4 candidates
    -gamma, and the loss -mean(A log pi) is then nonzero (negative for REINFORCE: A < 0, log pi < 0)."""
    rng = np.random.default_rng(0)
    settings = PolicySettings(candidates=4, top_k=1, gamma=1.0, batch_size=3, steps=1, d_model=8,
                              advantage=advantage)
    _, history = train_policy(rng.normal(size=(3, 5)), rng.normal(size=(3, 6)), np.zeros((3, len(ACTIONS), 1)),
                              settings)
    assert history.raw_reward[0] == 0.0 and history.shaped_reward[0] == pytest.approx(-0.75)
    assert abs(history.loss[0]) > 1e-3
    if advantage == "reinforce":
        assert history.loss[0] < 0


# --- selection leakage ------------------------------------------------------------------------------------

def test_best_fixed_action_and_training_come_from_the_training_pairs(monkeypatch) -> None:
    import argen.policy.comparison as comparison

    rng = np.random.default_rng(1)
    n_pairs, seeds = 8, 2
    train = np.array([True] * 5 + [False] * 3)
    total = rng.random((n_pairs, len(ACTIONS), seeds))
    total[train, 3] = 5.0  # on the training pairs action 3 is best,
    total[~train, 7] = 9.0  # on the validation pairs action 7
    cubes = {"total": total, "model_calls": np.ones_like(total)}
    trained_on = []

    def spy(image_emb, text_emb, rewards, settings, on_step=None):  # noqa: ANN001, ANN202
        trained_on.append((image_emb, rewards))
        return train_policy(image_emb, text_emb, rewards, settings, on_step)

    monkeypatch.setattr(comparison, "train_policy", spy)
    settings = PolicySettings(candidates=4, top_k=1, gamma=1.0, batch_size=5, steps=1, d_model=8)
    image_emb = rng.normal(size=(n_pairs, 4))
    outcome = fit_and_compare(cubes, image_emb, rng.normal(size=(n_pairs, 4)), train, settings, (20, 2.0, 2.0))
    assert outcome.best_fixed == 3
    (images, rewards), = trained_on
    np.testing.assert_array_equal(rewards, total[train])
    np.testing.assert_array_equal(images, image_emb[train])
    assert outcome.comparison.loc["best_fixed", "reward"] == pytest.approx(total[~train, 3].mean())
    assert outcome.comparison.loc["oracle", "reward"] == 9.0
    assert outcome.difference["pairs"] == 3 and len(outcome.learned) == 3


def frame_rows(clip_id: str, norms: list[float]) -> pd.DataFrame:
    """extract_aus rows of one clip whose AU vectors have the given norms (all in AU01)."""
    rows = pd.DataFrame(0.0, index=range(len(norms)), columns=list(INTENSITY_COLUMNS))
    rows[INTENSITY_COLUMNS[0]] = norms
    return rows.assign(clip_id=clip_id, success=True)


def test_a_max_comes_from_the_training_clips_only() -> None:
    frames = pd.concat([frame_rows("a", [1.0, 2.0]), frame_rows("b", [10.0]), frame_rows("c", [20.0])],
                       ignore_index=True)
    clips = pd.DataFrame({"clip_id": ["a", "b", "c"], "split": ["train", "val", "test"]})
    assert training_a_max(frames, clips, quantile=1.0) == pytest.approx(2.0)


# --- one-sided resampling --------------------------------------------------------------------------------

def predictions(variant: str, truth: list[int], predicted: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"model": "M", "variant": variant, "fold": 1, "seed": 0,
                         "clip_id": [f"c{k}" for k in range(len(truth))], "label": truth, "predicted": predicted})


def test_paired_bootstrap_of_identical_predictions_is_exactly_zero() -> None:
    """The same predictions under both variants: every paired resample differs by exactly 0, while a
    bootstrap resampling one side alone would spread around 0."""
    rng = np.random.default_rng(2)
    truth = rng.integers(0, len(EMOTIONS), 60).tolist()
    guess = [t if rng.random() < 0.5 else (t + 1) % len(EMOTIONS) for t in truth]
    deltas = delta_table(pd.concat([predictions("original", truth, guess), predictions("argen", truth, guess)]),
                         list(EMOTIONS), resamples=300)
    row = deltas.iloc[0]
    for name in ("WAR", "UAR", "AR-HA"):
        assert (row[f"d_{name}"], row[f"d_{name}_low"], row[f"d_{name}_high"]) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_of_one_corrected_clip() -> None:
    """argen fixes exactly one of original's 40 errors: every resample's WAR difference is (copies of that
    clip) / 40 >= 0, so the interval starts at 0 and the point is 1/40."""
    truth = [0] * 40
    original = [1] * 40
    argen = [0] + [1] * 39
    deltas = delta_table(pd.concat([predictions("original", truth, original), predictions("argen", truth, argen)]),
                         list(EMOTIONS), resamples=400)
    row = deltas.iloc[0]
    assert row["d_WAR"] == pytest.approx(1 / 40) and row["d_WAR_low"] == 0.0
    assert 1 / 40 < row["d_WAR_high"] <= 4 / 40


# --- stage wiring ---------------------------------------------------------------------------------------------

def test_clips_sharing_frame_one_get_different_content_keys(tmp_path: Path) -> None:
    """Generated clips of one identity start from the same frame; the key must cover every frame."""
    first = np.full((16, 16, 3), 100, np.uint8)
    rows = []
    for k, value in enumerate((50, 200)):
        folder = tmp_path / f"gen-{k}"
        folder.mkdir()
        for name, frame in (("1.png", first), ("2.png", np.full((16, 16, 3), value, np.uint8))):
            cv2.imwrite(str(folder / name), frame)
        rows.append({"frames_dir": str(folder), "frames": ["1.png", "2.png"]})
    keys = content_keys(pd.DataFrame(rows))
    assert len(set(keys)) == 2


def test_judge_counts_hits_over_each_emotion_own_clips() -> None:
    labels = np.array([4, 4, 4, 5, 5, 0])
    seeds = np.array([[4, 4, 0, 5, 0, 4],
                      [4, 0, 0, 5, 5, 4]])  # the happy clip is taken for surprise by both seeds
    judged = judge_shares(labels, seeds, list(EMOTIONS)).set_index("emotion")
    assert judged.loc["surprise", "clips"] == 3 and judged.loc["surprise", "hits"] == pytest.approx(1.5)
    assert judged.loc["surprise", "share"] == pytest.approx(0.5)
    assert judged.loc["disgust", "clips"] == 2 and judged.loc["disgust", "share"] == pytest.approx(0.75)
    assert judged.loc["happy", "hits"] == 0.0 and judged.loc["happy", "most_confused_with"] == "surprise"
    assert judged.loc["surprise", "most_confused_with"] == "happy"
    assert judged.loc["surprise", ["as_surprise", "as_happy", "as_fear"]].tolist() == [1.5, 1.5, 0.0]


def test_pooled_judge_names_the_confusion_summed_over_runs() -> None:
    columns = ["model", "set", "emotion", "clips", "hits", "as_fear", "as_surprise", "as_neutral"]
    run_1 = pd.DataFrame([["LT", "argen", "fear", 10, 4.0, 4.0, 6.0, 0.0]], columns=columns)
    run_2 = pd.DataFrame([["LT", "argen", "fear", 10, 5.0, 5.0, 0.5, 4.5]], columns=columns)  # its own: neutral
    pooled = pool_judged([run_1, run_2]).iloc[0]
    assert (pooled.clips, pooled.hits, pooled.share) == (20, 9.0, pytest.approx(0.45))
    assert pooled.most_confused_with == "surprise"  # 6.5 against neutral's 4.5
    older = run_1.drop(columns=["as_fear", "as_surprise", "as_neutral"])  # a run from before the counts
    assert pool_judged([older, run_2]).iloc[0].most_confused_with == ""


def test_oracle_counts_leave_out_failed_clips() -> None:
    generated = pd.DataFrame({"emotion": ["fear", "fear", "fear", "disgust", "surprise"],
                              "status": ["ok", "failed: RuntimeError: boom", "ok (still: 0.1)", "failed: x", "ok"]})
    assert generated_counts(generated) == {"fear": 2, "surprise": 1}


def test_oracle_share_only_where_the_oracle_gained() -> None:
    deltas = pd.DataFrame({"model": ["M"] * 2, "variant": ["argen", "oracle"], "d_WAR": [0.1, 0.4],
                           "d_UAR": [0.1, -0.2], "d_AR-SU": [0.3, 0.0]})
    shares = oracle_shares(deltas, ["WAR", "UAR", "AR-SU"]).iloc[0]
    assert shares["share_WAR"] == pytest.approx(0.25)
    assert np.isnan(shares["share_UAR"])  # the oracle lost: no share (not -0.5)
    assert np.isnan(shares["share_AR-SU"])  # the oracle gained nothing


def test_unpaired_masks_of_sets_of_unequal_sizes() -> None:
    rng = np.random.default_rng(3)
    real = rng.normal(size=(6, 2))
    generated = rng.normal(size=(9, 2)) + 1.0
    real[1] = np.nan
    generated[[0, 5]] = np.nan
    real_emotions = np.array(["fear"] * 3 + ["surprise"] * 3)
    generated_emotions = np.array(["fear"] * 4 + ["surprise"] * 5)
    block = distance_block(real, generated, None, real_emotions, n_boot=0, seed=0, min_group=2, paired=False,
                           generated_emotions=generated_emotions)
    assert (block["n_real"], block["n_generated"], block["left_out"]) == (5, 7, 3)
    expected = fd_with_interval(real[[0, 2, 3, 4, 5]], generated[[1, 2, 3, 4, 6, 7, 8]], n_boot=0)
    assert block["fd"] == pytest.approx(expected.value, rel=1e-4)
    groups = {g["group"]: (g["n_real"], g["n_generated"]) for g in block["tfd_per_group"]}
    assert groups == {"fear": (2, 3), "surprise": (3, 4)}

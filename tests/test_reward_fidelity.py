"""The expression-fidelity term of the default reward (issue 20): R_C's classifier sees training clips only,
the fidelity weight is chosen on training pairs only, and the default total keeps the expression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argen.policy.comparison import (FIDELITY_GRID, choose_fidelity_weight, fidelity_weight_for, reward_cubes,
                                  total_reward)
from argen.actions import ACTIONS
from argen.rewards.table import COMPONENTS
from argen.rewards.components import EmotionScorer, emotion_features
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.params import ARDParams

FEAR_AUS, DISGUST_AUS = ("AU01_r", "AU04_r", "AU20_r"), ("AU09_r", "AU10_r")


def clip_rows(clip_id: str, active: tuple[str, ...], rng: np.random.Generator, frames: int = 8) -> pd.DataFrame:
    """extract_aus rows of one clip whose ``active`` AUs rise to about 3, the others stay near 0."""
    aus = np.abs(rng.normal(0.0, 0.2, (frames, len(INTENSITY_AUS))))
    ramp = np.linspace(0.0, 3.0, frames)
    for name in active:
        aus[:, INTENSITY_COLUMNS.index(name)] += ramp
    rows = pd.DataFrame(aus, columns=list(INTENSITY_COLUMNS))
    return rows.assign(clip_id=clip_id, frame=np.arange(1, frames + 1), success=True)


def au_dataset(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20 training clips (10 fear, 10 disgust, each with its AUs) and 10 test clips whose labels contradict them."""
    rng = np.random.default_rng(seed)
    frames, clips = [], []
    for k in range(10):
        for label, active in (("fear", FEAR_AUS), ("disgust", DISGUST_AUS)):
            clip_id = f"train-{label}-{k}"
            frames.append(clip_rows(clip_id, active, rng))
            clips.append({"clip_id": clip_id, "label": label, "split": "train"})
    for k in range(10):  # test clips: fear AUs labelled disgust; a scorer that reads them is poisoned
        clip_id = f"test-{k}"
        frames.append(clip_rows(clip_id, FEAR_AUS, rng))
        clips.append({"clip_id": clip_id, "label": "disgust", "split": "test"})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(clips)


def video_aus(active: tuple[str, ...]) -> np.ndarray:
    return clip_rows("v", active, np.random.default_rng(7))[list(INTENSITY_COLUMNS)].to_numpy()


def test_emotion_features_and_no_face() -> None:
    aus = video_aus(FEAR_AUS)
    feature = emotion_features(aus)
    assert feature.shape == (32,)
    assert feature[:16].max() == pytest.approx(aus[:, :16].max(), abs=0.5)
    assert emotion_features(np.full((4, 17), np.nan)) is None


def test_emotion_scorer_is_fitted_on_training_clips_only() -> None:
    frames, clips = au_dataset()
    scorer = EmotionScorer.fit(frames, clips)
    assert scorer.n_clips == {"disgust": 10, "fear": 10}  # the 10 test clips are not counted
    fear, disgust = video_aus(FEAR_AUS), video_aus(DISGUST_AUS)
    assert scorer.score(fear, "fear") > 0.8 and scorer.score(disgust, "disgust") > 0.8
    assert scorer.score(fear, "disgust") < 0.2
    # the test clips change nothing: the same scorer as without them
    train_only = EmotionScorer.fit(frames[frames.clip_id.str.startswith("train")], clips[clips.split == "train"])
    assert scorer.digest() == train_only.digest()
    # relabelling the training clips does change it (the digest sees the fit)
    swapped = clips.assign(label=clips.label.map({"fear": "disgust", "disgust": "fear"}))
    assert EmotionScorer.fit(frames, swapped).digest() != scorer.digest()
    assert scorer.score(np.full((4, 17), np.nan), "fear") == 0.0
    assert scorer.score(fear, "surprise") == 0.0  # an emotion the scorer never saw


def table_of(components: dict[str, np.ndarray], splits: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reward table (one seed) from per-(pair, action) component arrays, and its pairs."""
    n_pairs = len(splits)
    rows = []
    for p in range(n_pairs):
        for a in range(len(ACTIONS)):
            row = {"video_id": f"p{p}/{a}/s0", "pair_id": f"p{p}", "action": a, "seed_index": 0, "status": "ok",
                   "model_calls": ACTIONS[a][0]}
            row.update({c: float(components.get(c, np.zeros((n_pairs, 12)))[p, a]) for c in COMPONENTS})
            rows.append(row)
    pairs = pd.DataFrame({"pair_id": [f"p{p}" for p in range(n_pairs)], "split": splits})
    return pd.DataFrame(rows), pairs


def faint_versus_expressive(n_pairs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Issue 20's reward table in miniature: the fewest steps and the faintest expression win eq. 18 (high R_S,
    R_E), while only the slow actions keep the prompt's AUs and the target emotion (R_A, R_C)."""
    rng = np.random.default_rng(seed)
    steps = np.array([a[0] for a in ACTIONS], float)
    expressive = (steps / 20.0)[None, :] * np.ones((n_pairs, 1))  # 0.25 ... 1 from T = 5 to 20
    return {"R_S": 1 - steps[None, :] / 20 * np.ones((n_pairs, 1)), "R_Q": np.full((n_pairs, 12), 0.9),
            "R_F": np.ones((n_pairs, 12)), "R_E": 1.0 - 0.5 * expressive,
            "R_A": np.clip(expressive - 0.2 + rng.normal(0, 0.05, (n_pairs, 12)), 0, 1),
            "R_C": np.clip(expressive - 0.1 + rng.normal(0, 0.05, (n_pairs, 12)), 0, 1)}


def fidelity_cube(table: pd.DataFrame, total: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, 12) total and R_X = (R_A + R_C) / 2 of the training pairs of a one-seed table."""
    train = table.pair_id.isin(TRAIN_IDS)
    _, cubes, _ = reward_cubes(table[train], {"total": total[train], "R_A": table.R_A, "R_C": table.R_C})
    return cubes["total"][:, :, 0], (cubes["R_A"][:, :, 0] + cubes["R_C"][:, :, 0]) / 2


def chosen_fidelity(table: pd.DataFrame, total: pd.Series, reference: str) -> tuple[float, float]:
    """(mean R_X at the actions ``reference`` stands for, the attainable R_X) on the training pairs:
    ``per_pair`` each pair's best action against each pair's largest R_X, ``fixed`` the best fixed action
    against the action with the largest mean R_X."""
    totals, fidelity = fidelity_cube(table, total)
    if reference == "fixed":
        return float(fidelity[:, totals.mean(axis=0).argmax()].mean()), float(fidelity.mean(axis=0).max())
    rows = np.arange(len(totals))
    return float(fidelity[rows, totals.argmax(axis=1)].mean()), float(fidelity.max(axis=1).mean())


TRAIN_IDS = {f"p{p}" for p in range(24)}


@pytest.mark.parametrize("reference", ["fixed", "per_pair"])
def test_the_default_reward_keeps_the_expression_the_paper_reward_drops(reference: str) -> None:
    ard = ARDParams()
    assert ard.reward == "argen" and ard.weight_fidelity == "auto"  # the default has the fidelity term
    assert ard.fidelity_reference == "fixed"
    table, pairs = table_of(faint_versus_expressive(30), ["train"] * 24 + ["val"] * 6)
    weight, outcome = fidelity_weight_for(table, pairs, ard.lambda_, (1.0, 1.0, 1.0), ard.fidelity_keep, reference)
    assert weight > 0 and outcome.reaches.any()
    paper, _ = total_reward(table, ard.lambda_)
    default, _ = total_reward(table, ard.lambda_, weight)
    kept_paper, attainable = chosen_fidelity(table, paper, reference)
    assert kept_paper < 0.5 * attainable           # eq. 18 alone picks the faint clips
    assert chosen_fidelity(table, default, reference)[0] >= ard.fidelity_keep * attainable - 1e-9  # the default keeps them
    # the weight is the smallest of the grid that keeps the expression: the one below it does not
    below = FIDELITY_GRID[FIDELITY_GRID.index(weight) - 1]
    assert chosen_fidelity(table, total_reward(table, ard.lambda_, below)[0], reference)[0] < \
        ard.fidelity_keep * attainable


def test_the_fixed_reference_is_not_satisfied_by_per_pair_luck() -> None:
    """One seed per action: every pair has one lucky action with a high R_X, a different one per pair. The
    per-pair reading counts that luck as kept; the best fixed action cannot, so it needs a larger weight."""
    n = 24
    components = faint_versus_expressive(n, seed=2)
    lucky = np.arange(n) % 4  # the lucky action is one of the fast ones (T = 5), a different one per pair
    for name in ("R_A", "R_C"):
        components[name][np.arange(n), lucky] = 1.0
    table, pairs = table_of(components, ["train"] * n)
    per_pair, _ = fidelity_weight_for(table, pairs, 3.0, (1.0, 1.0, 1.0), 0.9, "per_pair")
    fixed, outcome = fidelity_weight_for(table, pairs, 3.0, (1.0, 1.0, 1.0), 0.9, "fixed")
    assert fixed > per_pair and outcome.reaches.any()
    with pytest.raises(ValueError, match="fidelity reference"):
        fidelity_weight_for(table, pairs, 3.0, (1.0, 1.0, 1.0), 0.9, "oracle")


def test_the_fidelity_weight_reads_training_pairs_only() -> None:
    components = faint_versus_expressive(30, seed=1)
    splits = ["train"] * 24 + ["val"] * 6
    table, pairs = table_of(components, splits)
    weight, outcome = fidelity_weight_for(table, pairs, 3.0, (1.0, 1.0, 1.0), 0.9)
    # validation pairs whose fidelity would need the largest weight: nothing changes
    leaky = {name: values.copy() for name, values in components.items()}
    leaky["R_A"][24:] = np.where(np.arange(12) == 0, 1.0, 0.0)[None, :]
    leaky["R_C"][24:] = np.where(np.arange(12) == 0, 1.0, 0.0)[None, :]
    leaky["R_S"][24:, 0], leaky["R_E"][24:, 0] = 0.0, 0.0
    leaky_table, _ = table_of(leaky, splits)
    leaky_weight, leaky_outcome = fidelity_weight_for(leaky_table, pairs, 3.0, (1.0, 1.0, 1.0), 0.9)
    assert leaky_weight == weight
    pd.testing.assert_frame_equal(leaky_outcome, outcome)
    # ... while the same change on training pairs does change the outcome
    leaky_train, _ = table_of(leaky, ["val"] * 6 + ["train"] * 24)
    _, moved = fidelity_weight_for(leaky_train, pairs.assign(split=["val"] * 6 + ["train"] * 24), 3.0,
                                   (1.0, 1.0, 1.0), 0.9)
    assert not moved.equals(outcome)
    # the procedure itself refuses any pair that is not a training pair
    cube = np.zeros((2, 12, 1))
    with pytest.raises(ValueError, match="training pairs only"):
        choose_fidelity_weight(cube, cube, ["train", "val"], 0.9)
    with pytest.raises(ValueError, match="training pairs only"):
        choose_fidelity_weight(cube, cube, ["train", "test"], 0.9)


def test_paper_reward_is_one_setting_away() -> None:
    assert ARDParams(reward="paper").reward == "paper"
    with pytest.raises(ValueError):
        ARDParams(weight_fidelity=-1.0)
    with pytest.raises(ValueError):
        ARDParams(reward="none")


def test_no_complete_training_pair_is_a_clear_error() -> None:
    from argen.errors import InputError

    table, pairs = table_of(faint_versus_expressive(4), ["train", "train", "val", "val"])
    table.loc[table.pair_id.isin(["p0", "p1"]) & (table.action == 3), "status"] = "failed: boom"
    with pytest.raises(InputError, match="no training pair has every action audited"):
        fidelity_weight_for(table, pairs, 3.0, (1.0, 1.0, 1.0), 0.9)

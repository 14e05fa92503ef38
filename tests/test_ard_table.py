"""The reward table's pairs and shards, the total reward and the held-out comparison, the augmentation choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from argen.policy.augment import choose_pairs, pick_actions
from argen.counts import resolve_per_class, table7_counts
from argen.policy.comparison import best_fixed_action, compare_policies, gap_closed, paired_difference, reward_cubes, \
    total_reward
from argen.actions import ACTIONS
from argen.rewards.table import COMPONENTS, ShardStore, make_pairs


def identities_and_prompts(n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"{k:05d}" for k in range(n)]
    identities = pd.DataFrame({"clip_id": ids, "image_file": [f"{i}.png" for i in ids]})
    prompts = pd.DataFrame([{"identity_id": i, "emotion": e, "prompt": f"{e} {i}", "raw_final": f"{e} (AU26)",
                             "subject": f"S{i}"} for i in ids for e in ("surprise", "disgust", "fear")])
    return identities, prompts


def test_pairs_are_split_by_identity_seeded() -> None:
    identities, prompts = identities_and_prompts(10)
    pairs = make_pairs(identities, prompts, val_fraction=0.2, seed=3)
    assert len(pairs) == 30 and pairs.pair_id.is_unique
    sides = pairs.groupby("identity_id").split.nunique()
    assert (sides == 1).all()  # no identity on both sides
    assert pairs.drop_duplicates("identity_id").split.value_counts().to_dict() == {"train": 8, "val": 2}
    assert make_pairs(identities, prompts, 0.2, 3).equals(pairs)
    assert not make_pairs(identities, prompts, 0.2, 4).split.equals(pairs.split)
    assert make_pairs(identities, prompts, 0.2, 3, max_identities=5).identity_id.nunique() == 5


def table_of(cube: np.ndarray, failed: set[tuple[int, int]] = frozenset()) -> pd.DataFrame:
    """A reward table whose every component equals ``cube[pair, action, seed]``."""
    rows = []
    for p in range(cube.shape[0]):
        for s in range(cube.shape[2]):
            for a in range(len(ACTIONS)):
                row = {"video_id": f"p{p}/{a}/s{s}", "pair_id": f"p{p}", "action": a, "seed_index": s,
                       "status": "failed: boom" if (p, a) in failed else "ok", "model_calls": ACTIONS[a][0]}
                row.update({c: cube[p, a, s] for c in COMPONENTS})
                rows.append(row)
    return pd.DataFrame(rows)


def test_total_reward_is_eq_18_plus_the_optional_terms() -> None:
    table = pd.DataFrame({"video_id": ["v1", "v2"], "R_S": [0.75, 0.0], "R_Q": [0.5, 0.6], "R_F": [1.0, 0.5],
                          "R_E": [0.8, 0.2], "R_A": [0.4, 1.0], "R_C": [0.2, 0.6]})
    total, unrated = total_reward(table, lam=3.0)
    np.testing.assert_allclose(total, [0.75 + 3 * 2.3, 0 + 3 * 1.3])
    total, _ = total_reward(table, lam=1.0, weight_fidelity=2.0)  # + 2 (R_A + R_C) / 2
    np.testing.assert_allclose(total, [0.75 + 2.3 + 0.6, 1.3 + 1.6])
    no_aus = table.assign(R_A=[np.nan, 1.0])  # v1's prompt names no AU: R_X = R_C
    total, _ = total_reward(no_aus, lam=1.0, weight_fidelity=2.0)
    np.testing.assert_allclose(total, [0.75 + 2.3 + 2 * 0.2, 1.3 + 1.6])
    total, unrated = total_reward(table, lam=0.0, weight_human=1.0, ratings=pd.Series({"v1": 0.9}))
    np.testing.assert_allclose(total, [0.75 + 0.9, 0.0 + 0.9])  # unrated: the mean rating
    assert unrated == 1
    # table 4's reward subsets: only R_Q (w_F = w_E = 0), only R_F + R_E (w_Q = 0), neither
    total, _ = total_reward(table, lam=3.0, weights=(1.0, 0.0, 0.0))
    np.testing.assert_allclose(total, [0.75 + 3 * 0.5, 0 + 3 * 0.6])
    total, _ = total_reward(table, lam=3.0, weights=(0.0, 1.0, 1.0))
    np.testing.assert_allclose(total, [0.75 + 3 * 1.8, 0 + 3 * 0.7])
    total, _ = total_reward(table, lam=3.0, weights=(0.0, 0.0, 0.0))
    np.testing.assert_allclose(total, [0.75, 0.0])


def test_incomplete_pairs_are_left_out() -> None:
    cube = np.random.default_rng(0).random((3, 12, 2))
    table = table_of(cube, failed={(1, 5)})
    complete, cubes, left_out = reward_cubes(table, {"total": table.R_S})
    assert complete == ["p0", "p2"] and left_out == ["p1"]
    np.testing.assert_array_equal(cubes["total"], cube[[0, 2]])


def test_comparison_on_a_hand_made_table() -> None:
    total = np.zeros((2, 12, 1))
    total[0, :, 0] = np.arange(12)        # pair 0: the last action is best
    total[1, :, 0] = 2 * np.arange(12)[::-1]  # pair 1: the first action is best
    calls = np.broadcast_to(np.array([a[0] for a in ACTIONS], float)[None, :, None], total.shape)
    cubes = {"total": total, "model_calls": calls, **{c: total / 100 for c in COMPONENTS}}
    fixed = ACTIONS.index((20, 2.0, 2.0))
    result = compare_policies(cubes, learned=np.array([11, 0]), best_fixed=3, fixed=(20, 2.0, 2.0))
    assert result.loc["oracle", "reward"] == 16.5 and result.loc["learned", "reward"] == 16.5
    assert result.loc["random", "reward"] == pytest.approx((5.5 + 11) / 2)  # the mean over the 12 actions
    assert result.loc["best_fixed", "reward"] == pytest.approx((3 + 16) / 2)
    assert result.loc["fixed_T20", "reward"] == pytest.approx((fixed + 2 * (11 - fixed)) / 2)
    assert result.loc["learned", "model_calls"] == pytest.approx((20 + 5) / 2)
    assert result.loc["learned", "R_S"] == pytest.approx(0.165)
    cubes["R_A"] = cubes["R_A"].copy()
    cubes["R_A"][1] = np.nan  # pair 1's prompt names no AU: R_A is the mean over pair 0 alone
    no_aus = compare_policies(cubes, learned=np.array([11, 0]), best_fixed=3, fixed=(20, 2.0, 2.0))
    assert no_aus.loc["learned", "R_A"] == pytest.approx(0.11) and no_aus.loc["random", "R_A"] == pytest.approx(0.055)
    diff = paired_difference(cubes, np.array([11, 0]), 3)
    assert diff["mean"] == pytest.approx(16.5 - 9.5) and diff["pairs"] == 2
    assert best_fixed_action(total) in range(12)
    one_best = np.zeros((4, 12, 2))
    one_best[:, 7] = 1.0
    assert best_fixed_action(one_best) == 7


def test_the_heldout_seed_oracle_chooses_on_one_half_of_the_seeds_and_scores_on_the_other() -> None:
    total = np.zeros((1, 12, 2))
    total[0, 0] = [1.0, 1.0]  # steady
    total[0, 1] = [2.0, 0.0]  # lucky on seed 0
    cubes = {"total": total, "model_calls": np.ones_like(total), **{c: total / 10 for c in COMPONENTS}}
    result = compare_policies(cubes, learned=np.array([0]), best_fixed=2, fixed=(20, 2.0, 2.0))
    assert result.loc["oracle", "reward"] == 1.0  # seeds' mean: actions 0 and 1 tie at 1
    # seed 0 picks action 1, scored 0 on seed 1; seed 1 picks action 0, scored 1 on seed 0
    assert result.loc["oracle_heldout_seed", "reward"] == pytest.approx(0.5)
    assert result.loc["oracle_heldout_seed", "R_S"] == pytest.approx(0.05)
    closed = gap_closed(result)
    assert closed == {"oracle": pytest.approx(1.0), "oracle_heldout_seed": pytest.approx(2.0)}
    one_seed = compare_policies({k: v[:, :, :1] for k, v in cubes.items()}, np.array([0]), 2, (20, 2.0, 2.0))
    assert "oracle_heldout_seed" not in one_seed.index


def test_stale_shards_are_discarded(tmp_path) -> None:
    store = ShardStore(tmp_path, "aaaa")
    store.write(0, pd.DataFrame({"x": [1]}))
    store.write(1, pd.DataFrame({"x": [2]}))
    assert store.finished(2) == {0, 1}
    assert store.merged(2).x.tolist() == [1, 2]
    other = ShardStore(tmp_path, "bbbb")
    assert other.finished(2) == set() and not list(tmp_path.glob("shard_*"))  # never mixed
    (tmp_path / "shard_00003.parquet").write_bytes(b"not parquet")
    assert other.finished(5) == set() and not (tmp_path / "shard_00003.parquet").exists()


def test_augmentation_pairs_and_actions() -> None:
    _, prompts = identities_and_prompts(4)
    pairs = choose_pairs(prompts, {"surprise": 2, "disgust": 6, "fear": 0}, seed=1)
    assert pairs.emotion.value_counts().to_dict() == {"disgust": 6, "surprise": 2}
    disgust = pairs[pairs.emotion == "disgust"]
    assert disgust["round"].tolist() == [0, 0, 0, 0, 1, 1]  # more clips than identities: a second round
    assert disgust.groupby("round").identity_id.nunique().tolist() == [4, 2]
    assert choose_pairs(prompts, {"surprise": 2, "disgust": 6}, seed=1).equals(pairs)
    assert (pick_actions("fixed", 3, 0, (10, 3.0, 2.0)) == ACTIONS.index((10, 3.0, 2.0))).all()
    random = pick_actions("random", 200, 0, (20, 2.0, 2.0))
    assert set(random) == set(range(12)) and (pick_actions("random", 200, 0, (20, 2.0, 2.0)) == random).all()
    assert (pick_actions("learned", 2, 0, (20, 2.0, 2.0), learned=np.array([4, 9])) == [4, 9]).all()


class FlakyGenerator:
    """Fails for one identity, otherwise returns a still video of the identity frame."""

    name = "flaky"

    def generate(self, item, action, seed, n_frames):
        if item.prompt.endswith("00001"):
            raise ValueError("no face to animate")
        return np.repeat(item.image[None], n_frames, axis=0), {"steps_run": action[0], "denoiser_calls": action[0]}


def test_a_failing_pair_is_recorded_and_the_others_go_on(tmp_path) -> None:
    from argen.policy.augment import generate_set

    _, prompts = identities_and_prompts(3)
    pairs = choose_pairs(prompts, {"fear": 3}, seed=0)
    images = {i: np.full((16, 16, 3), 100, np.uint8) for i in pairs.identity_id}
    landmarks = {i: np.zeros((68, 2)) for i in pairs.identity_id}
    index = generate_set(pairs, np.zeros(3, int), FlakyGenerator(), images, landmarks, tmp_path / "w",
                         tmp_path / "final", n_frames=4, base_seed=0, jpeg_quality=95, policy="fixed")
    failed = index[index.identity_id == "00001"]
    assert failed.status.tolist() == ["failed: ValueError: no face to animate"] and failed.n_frames.tolist() == [0]
    ok = index[index.identity_id != "00001"]
    assert (ok.status == "ok").all() and (ok.n_frames == 4).all() and (ok.model_calls == 5).all()
    assert all(len(list((tmp_path / "w" / c).glob("*.jpg"))) == 4 for c in ok.clip_id)
    assert all(d.startswith(str(tmp_path / "final")) for d in index.frames_dir)


def test_reward_shard_records_failed_videos(monkeypatch) -> None:
    from argen.rewards import table as reward_table

    class Auditor:
        def audit(self, video, prompt_aus, steps, steps_max, emotion):
            return {name: 0.5 for name in COMPONENTS}

    identities, prompts = identities_and_prompts(2)
    pairs = make_pairs(identities, prompts, 0.5, 0)
    context = reward_table.RewardContext(generator=None, rewards=type("R", (), {"n_seeds": 1, "frames": 3,
                                                                           "keep_videos": False})(),
                                         extract=None, a_max=5.0, base_seed=0, image_dir="unused",
                                         landmarks={i: np.zeros((68, 2)) for i in identities.clip_id},
                                         au_rows_path="unused")
    monkeypatch.setattr(reward_table, "read_identity_image", lambda path: np.zeros((16, 16, 3), np.uint8))
    monkeypatch.setitem(reward_table._worker, "context", context)
    monkeypatch.setitem(reward_table._worker, "generator", FlakyGenerator())
    monkeypatch.setitem(reward_table._worker, "auditor", Auditor())
    _, rows = reward_table.compute_shard(0, pairs)
    assert len(rows) == len(pairs) * 12
    bad = rows[rows.pair_id.str.startswith("00001")]
    assert (bad.status == "failed: ValueError: no face to animate").all() and bad.R_S.isna().all()
    good = rows[~rows.pair_id.str.startswith("00001")]
    assert (good.status == "ok").all() and (good.R_S == 0.5).all() and (good.model_calls == good["T"]).all()


def test_table7_counts_scale_the_paper_to_the_training_split() -> None:
    dfew = pd.Series(["surprise"] * 1470 + ["disgust"] * 145 + ["fear"] * 905 + ["happy"] * 3000)
    assert table7_counts(dfew) == {"surprise": 180, "disgust": 162, "fear": 141}  # the paper's fold: its own row
    demo = pd.Series(["surprise"] * 48 + ["disgust"] * 6 + ["fear"] * 36 + ["happy"] * 390)
    assert table7_counts(demo) == {"surprise": 6, "disgust": 6, "fear": 5}  # 483 x 90 / 2520 = 17.25 in all
    assert table7_counts(demo, factor=2.0) == {"surprise": 13, "disgust": 12, "fear": 10}
    assert table7_counts(pd.Series(["happy"] * 10)) == {"surprise": 1, "disgust": 1, "fear": 1}
    clips = pd.DataFrame({"label": list(demo) + ["disgust"] * 500, "split": ["train"] * len(demo) + ["test"] * 500})
    assert resolve_per_class("table7", clips) == table7_counts(demo)  # test clips never count
    assert resolve_per_class({"fear": 3}, clips) == {"fear": 3}


def test_a_table_is_stale_exactly_when_a_setting_that_decides_its_rows_changed() -> None:
    """The stale-table rule the policy stage applies (rewards/table.stale_settings, check_fresh)."""
    import json
    from pathlib import Path

    from argen.errors import UserError
    from argen.params import GeneratorParams, RewardsParams
    from argen.rewards.table import check_fresh, generation_settings, stale_settings

    generator, rewards = GeneratorParams(), RewardsParams()
    meta = {"generation": json.dumps(generation_settings(generator)),
            "params": json.dumps({"rewards": rewards.model_dump(mode="json")})}
    assert stale_settings(meta, generator, rewards) == {}
    # where and how the work runs, and the length of full clips, decide no row
    assert stale_settings(meta, generator.model_copy(update={"device": "cuda:1", "n_frames": 32}),
                          rewards.model_copy(update={"workers": 8, "shard_pairs": 1, "keep_videos": True})) == {}
    assert stale_settings(meta, generator.model_copy(update={"size": 64}), rewards) == {"generator.size": (256, 64)}
    assert stale_settings(meta, generator, rewards.model_copy(update={"alpha": 0.5})) == {"rewards.alpha": (0.6, 0.5)}
    assert "generator.generator" in stale_settings({}, generator, rewards)  # a table recording nothing is stale
    with pytest.raises(UserError, match=r"t\.parquet is stale \(generator\.guidance_form: table 'paper', "
                                        r"params 'constant'\): re-run the rewards stage"):
        check_fresh(meta, generator.model_copy(update={"guidance_form": "constant"}), rewards, Path("t.parquet"))

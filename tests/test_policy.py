"""The adaptive policy (eq. 13, 18-21; Algorithm 1 stage 1) on hand-made logits, pools and reward tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from argen.actions import ACTIONS
from argen.policy.reinforce import (PolicySettings, action_log_probs, advantages, greedy_actions, greedy_choices,
                                    load_policy, save_policy, shape_rewards, train_policy)
from argen.errors import InputError

#: Each cluster's best action in the state-dependent table.
CLUSTER_BEST = (0, 5, 7, 11)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The network is tiny: one thread is as fast, and is not stalled when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def single_best_table(n_states: int = 64, best: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random states; action ``best`` earns 10 everywhere, the others 2-5; 2 seeds with noise 0.1."""
    rng = np.random.default_rng(seed)
    image_emb = rng.normal(0.0, 0.1, size=(n_states, 128)).astype(np.float32)
    text_emb = rng.normal(size=(n_states, 384)).astype(np.float32)
    mean_reward = rng.uniform(2.0, 5.0, size=(n_states, len(ACTIONS), 1))
    mean_reward[:, best] = 10.0
    return image_emb, text_emb, mean_reward + rng.normal(0.0, 0.1, size=(n_states, len(ACTIONS), 2))


def cluster_table(n_states: int, rng: np.random.Generator, image_centres: np.ndarray,
                  text_centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States drawn around 4 cluster centres; cluster k's action CLUSTER_BEST[k] earns 10, the others 2-5."""
    cluster = rng.integers(0, len(CLUSTER_BEST), size=n_states)
    image_emb = (image_centres[cluster] + rng.normal(0.0, 0.3, size=(n_states, image_centres.shape[1])))
    text_emb = (text_centres[cluster] + rng.normal(0.0, 0.3, size=(n_states, text_centres.shape[1])))
    mean_reward = rng.uniform(2.0, 5.0, size=(n_states, len(ACTIONS), 1))
    mean_reward[np.arange(n_states), np.array(CLUSTER_BEST)[cluster]] = 10.0
    rewards = mean_reward + rng.normal(0.0, 0.1, size=(n_states, len(ACTIONS), 2))
    return image_emb.astype(np.float32), text_emb.astype(np.float32), rewards


def test_actions_are_t_major_without_3_3() -> None:
    assert len(ACTIONS) == 12
    pairs = ((2.0, 2.0), (3.0, 2.0), (2.0, 3.0))
    for t_index, steps in enumerate((5, 10, 15, 20)):
        for ab_index, (a, b) in enumerate(pairs):
            assert ACTIONS[t_index * 3 + ab_index] == (steps, a, b)
    assert all((a, b) != (3.0, 3.0) for _, a, b in ACTIONS)


def test_action_log_probs_are_normalised() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = [torch.randn(5, n, generator=generator) * 3 for n in (4, 2, 2)]
    log_probs = action_log_probs(*logits)
    assert log_probs.shape == (5, 12)
    assert torch.all(log_probs <= 0)
    assert torch.allclose(log_probs.exp().sum(dim=1), torch.ones(5), atol=1e-6)


def test_action_log_probs_known_values() -> None:
    uniform = action_log_probs(torch.zeros(1, 4), torch.zeros(1, 2), torch.zeros(1, 2))
    assert torch.allclose(uniform.exp(), torch.full((1, 12), 1 / 12), atol=1e-7)
    # pi_a(3) = pi_b(3) = 0.8: unrestricted (2,2) .04, (3,2) .16, (2,3) .16, (3,3) .64;
    # conditioned on the 3 allowed pairs (Z = 0.36): 1/9, 4/9, 4/9; times pi_T = 1/4.
    favour_3 = torch.tensor([[0.0, math.log(4.0)]])
    probs = action_log_probs(torch.zeros(1, 4), favour_3, favour_3).exp()[0]
    expected = torch.tensor([1 / 9, 4 / 9, 4 / 9] * 4) / 4
    assert torch.allclose(probs, expected, atol=1e-6)


def test_greedy_never_returns_3_3() -> None:
    # Per-head argmaxes: T = 20, a = 3 (0.8), b = 3 (0.6), i.e. the excluded (3, 3).
    # Restricted: (2,2) .08, (3,2) .32, (2,3) .12 -> (20, 3, 2), index 3 * 3 + 1.
    logits_T = torch.tensor([[0.0, 0.0, 0.0, 2.0]])
    logits_a = torch.tensor([[0.0, math.log(4.0)]])
    logits_b = torch.tensor([[0.0, math.log(1.5)]])
    assert greedy_actions(logits_T, logits_a, logits_b).tolist() == [10]
    assert ACTIONS[10] == (20, 3.0, 2.0)


def test_shape_rewards_keeps_top_k() -> None:
    shaped = shape_rewards(torch.tensor([[5.0, 1.0, 3.0, 2.0], [0.5, 4.0, 6.0, 7.0]]), top_k=2, gamma=1.0)
    assert shaped.tolist() == [[5.0, -1.0, 3.0, -1.0], [-1.0, -1.0, 6.0, 7.0]]
    assert shape_rewards(torch.tensor([[5.0, 1.0, 3.0, 2.0]]), top_k=1, gamma=0.5).tolist() == [[5.0, -0.5, -0.5, -0.5]]


def test_shape_rewards_breaks_ties_by_index() -> None:
    assert shape_rewards(torch.tensor([[4.0, 4.0, 4.0, 1.0]]), 2, 1.0).tolist() == [[4.0, 4.0, -1.0, -1.0]]
    assert shape_rewards(torch.tensor([[1.0, 3.0, 3.0, 3.0]]), 2, 1.0).tolist() == [[-1.0, 3.0, 3.0, -1.0]]
    assert shape_rewards(torch.tensor([[2.0, 2.0, 2.0, 2.0]]), 3, 1.0).tolist() == [[2.0, 2.0, 2.0, -1.0]]
    with pytest.raises(ValueError):
        shape_rewards(torch.zeros(1, 4), 5, 1.0)


def test_advantages() -> None:
    shaped = torch.tensor([[5.0, -1.0, 3.0, -1.0], [1.0, 2.0, 3.0, 10.0]])
    assert torch.equal(advantages(shaped, "reinforce"), shaped)
    group = advantages(shaped, "group")
    # row 0: mean 1.5, deviations 3.5, -2.5, 1.5, -2.5; sum of squares 27 / (K - 1) = 9 -> std 3
    assert torch.allclose(group[0], torch.tensor([3.5, -2.5, 1.5, -2.5]) / 3, atol=1e-5)
    assert torch.allclose(group.mean(dim=1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(group.std(dim=1), torch.ones(2), atol=1e-5)
    with pytest.raises(ValueError):
        advantages(shaped, "ppo")


@pytest.mark.parametrize("advantage", ["reinforce", "group"])
def test_training_finds_the_single_best_action(advantage: str) -> None:
    image_emb, text_emb, rewards = single_best_table()
    settings = PolicySettings(lr=3e-3, steps=60, advantage=advantage)
    model, history = train_policy(image_emb, text_emb, rewards, settings)
    assert np.mean(greedy_choices(model, image_emb, text_emb) == 7) >= 0.95
    assert len(history) == 60 and history["greedy_best_share"].iloc[-1] >= 0.95
    assert history["raw_reward"].iloc[-10:].mean() > history["raw_reward"].iloc[:5].mean()
    assert (history["shaped_reward"] < history["raw_reward"]).all(), "half of each pool is shaped to -gamma"


def test_training_learns_state_dependent_actions() -> None:
    rng = np.random.default_rng(1)
    image_centres, text_centres = rng.normal(size=(4, 128)), rng.normal(size=(4, 384))
    train = cluster_table(64, rng, image_centres, text_centres)
    held_out = cluster_table(64, rng, image_centres, text_centres)
    model, _ = train_policy(*train, PolicySettings(lr=3e-3, steps=80))

    held_out_mean = held_out[2].mean(axis=2)
    best_fixed = train[2].mean(axis=2).mean(axis=0).argmax()
    policy_reward = held_out_mean[np.arange(64), greedy_choices(model, held_out[0], held_out[1])].mean()
    assert policy_reward > held_out_mean[:, best_fixed].mean() + 3.0


def test_training_is_reproducible() -> None:
    image_emb, text_emb, rewards = single_best_table(n_states=40)
    rows = []

    def run(seed: int) -> dict[str, bytes]:
        settings = PolicySettings(lr=3e-3, steps=15, seed=seed)
        model, _ = train_policy(image_emb, text_emb, rewards, settings, on_step=lambda step, row: rows.append(row))
        return {name: tensor.numpy().tobytes() for name, tensor in model.state_dict().items()}

    first, again, other = run(0), run(0), run(1)
    assert first == again
    assert first != other
    assert len(rows) == 45 and rows[:15] == rows[15:30]


def test_save_and_load(tmp_path: Path) -> None:
    image_emb, text_emb, rewards = single_best_table(n_states=16)
    model, _ = train_policy(image_emb, text_emb, rewards, PolicySettings(lr=3e-3, steps=5, d_model=32))
    save_policy(model, tmp_path / "policy", {"encoder": "test"})
    loaded, config = load_policy(tmp_path / "policy")
    assert config["encoder"] == "test" and config["architecture"]["d_model"] == 32
    assert all(torch.equal(loaded.state_dict()[name], tensor) for name, tensor in model.state_dict().items())
    assert np.array_equal(greedy_choices(loaded, image_emb, text_emb), greedy_choices(model, image_emb, text_emb))
    with pytest.raises(InputError):
        load_policy(tmp_path / "missing")


def test_bad_inputs() -> None:
    image_emb, text_emb, rewards = single_best_table(n_states=8)
    with pytest.raises(ValueError):
        train_policy(image_emb, text_emb, rewards[:, :11], PolicySettings(steps=1))
    with pytest.raises(ValueError):
        train_policy(image_emb[:7], text_emb, rewards, PolicySettings(steps=1))
    with pytest.raises(ValueError):
        PolicySettings(advantage="ppo")
    with pytest.raises(ValueError):
        PolicySettings(candidates=4, top_k=5)

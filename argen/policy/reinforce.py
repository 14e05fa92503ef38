"""The adaptive policy of ARD (paper sec. 3.3, eq. 13 and 18-21; Algorithm 1, stage 1).

For one (reference image x0, prompt y) pair the policy picks the sampler's action u = (T, a, b): the number
of denoising steps T in S_T = {5, 10, 15, 20} and the shape (a, b) of the guidance curve (eq. 12) in
S_a×b = {(2, 2), (3, 2), (2, 3)} (sec. 4.2). :data:`argen.actions.ACTIONS` lists the 12 actions T-major:
index = t_index * 3 + ab_index.

**Network** (:class:`PolicyNetwork`, eq. 13). The state is s = [c, r] (sec. 3.3): c = tau(y) the prompt's
text embedding (MiniLM's 384-d sentence embedding) and r = E(x0) the reference image's embedding (on CPU
dlib's 128-d face descriptor). Each is projected to
``d_model`` and layer-normed into one token; one self-attention layer (``nn.MultiheadAttention`` with a
residual connection and a LayerNorm) fuses the two tokens; the tokens are mean-pooled; a shared MLP feeds
three heads with logits over T (4), a in {2, 3} (2) and b in {2, 3} (2). No dropout, so training and
evaluation compute the same function. The caller seeds the initialisation (``torch.manual_seed``).

**Restricted joint** (:func:`action_log_probs`). Eq. 13 factorises pi(u) = pi_T(T) pi_a(a) pi_b(b), but
S_a×b holds 3 of the 4 pairs of {2, 3}², (3, 3) is not an action. The policy is the factorised
distribution conditioned on the allowed set:

    pi(T, a, b) = pi_T(T) pi_a(a) pi_b(b) / Z,   Z = sum over (a', b') in S_a×b of pi_a(a') pi_b(b'),

so its 12 probabilities sum to 1, and log pi(u) (eq. 21's sum of the three heads' log-probabilities) is
taken minus log Z. At inference the paper takes each head's argmax (Algorithm 1 line 14); that can give
a = b = 3, which is excluded, so :func:`greedy_actions` takes the argmax of the restricted joint over the
12 actions instead (T's argmax is unchanged; ties go to the lowest action index).

**Reward shaping** (:func:`shape_rewards`, Algorithm 1 line 8, eq. 18). The paper writes
"If R(u) < top-k ∈ D_val, R(u) <- -gamma" and, in the text, "only candidates scoring higher than the top
k receive rewards". Which set the top k is taken over is ambiguous; here, as the issue fixes it, it is the
pool of K candidates sampled for the same pair (the "small Cartesian candidate pool ... for the same
prompt y and reference image x0"): the top_k candidates of the pool keep their reward, the others get
-gamma. Ties at the boundary are broken by index order (a stable sort), so exactly top_k candidates keep
their reward. Candidates are sampled with replacement, so a pool can hold the same action twice with the
same reward; then the earlier copy may keep its reward and the later one be penalised.

**Advantages** (:func:`advantages`). ``"reinforce"`` uses the shaped reward itself, without a baseline,
as eq. 20-21 do. ``"group"`` normalises each pair's K shaped rewards as GRPO does (Facial-R1 eq. 1):
(R - mean) / (std + 1e-6), std with Bessel's correction (``torch.std``'s default, as TRL's GRPO), over
the K candidates of the pair.

**Training** (:func:`train_policy`). Rewards are looked up in a precomputed table ``rewards[pair, action,
seed]`` (the caller generated and scored the videos), never generated here. Each step: ``batch_size``
distinct pairs (with replacement only if there are fewer pairs than that) from a seeded numpy Generator;
``candidates`` actions per pair drawn from pi with replacement (``torch.multinomial`` with a seeded torch
Generator); each candidate's reward from one of the table's S seeds drawn uniformly; shaping; advantages;
loss = -mean(A * log pi(u)) over the B x K candidates (eq. 21); one Adam step. The network's
initialisation, the batches and the samples all derive from ``settings.seed``, so the same inputs and
settings give byte-identical weights on the same machine (same torch build and thread count).

**Files** (:func:`save_policy`, :func:`load_policy`): ``policy.safetensors`` (the state dict) and ``config.json`` (the
caller's config plus the network's ``architecture``, so that loading needs nothing else).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from torch import nn

from argen.actions import ACTIONS, CURVE_CHOICES, SHAPE_VALUES, STEP_CHOICES
from argen.errors import InputError
from argen.weights import load_checked

#: For each allowed (a, b) pair, the index of a and of b in the a and b heads.
_A_INDEX = torch.tensor([SHAPE_VALUES.index(a) for a, _ in CURVE_CHOICES])
_B_INDEX = torch.tensor([SHAPE_VALUES.index(b) for _, b in CURVE_CHOICES])

ADVANTAGE_MODES = ("reinforce", "group")
WEIGHTS_FILE = "policy.safetensors"


class PolicyNetwork(nn.Module):
    """pi_w(u | c, r) of eq. 13: two tokens fused by self-attention, a shared MLP and three heads.

    Args:
        d_image: dimension of the image embedding r.
        d_text: dimension of the text embedding c.
        d_model: width of the tokens and of the MLP.
        n_heads: attention heads (must divide d_model).
    """

    def __init__(self, d_image: int, d_text: int, d_model: int = 64, n_heads: int = 4) -> None:
        super().__init__()
        self.architecture = {"d_image": d_image, "d_text": d_text, "d_model": d_model, "n_heads": n_heads}
        self.image_token = nn.Sequential(nn.Linear(d_image, d_model), nn.LayerNorm(d_model))
        self.text_token = nn.Sequential(nn.Linear(d_text, d_model), nn.LayerNorm(d_model))
        self.attention = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.attention_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model), nn.GELU())
        self.head_T = nn.Linear(d_model, len(STEP_CHOICES))
        self.head_a = nn.Linear(d_model, len(SHAPE_VALUES))
        self.head_b = nn.Linear(d_model, len(SHAPE_VALUES))

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Three heads' logits.

        Args:
            image_emb: (B, d_image) image embeddings r = E(x0).
            text_emb: (B, d_text) text embeddings c = tau(y).

        Returns:
            logits over T (B, 4), over a (B, 2) and over b (B, 2).
        """
        tokens = torch.stack([self.image_token(image_emb), self.text_token(text_emb)], dim=1)  # (B, 2, d_model)
        fused, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        tokens = self.attention_norm(tokens + fused)
        hidden = self.mlp(tokens.mean(dim=1))
        return self.head_T(hidden), self.head_a(hidden), self.head_b(hidden)


def action_log_probs(logits_T: torch.Tensor, logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the 12 actions under the factorised policy restricted to S_a×b.

    Args:
        logits_T: (B, 4) logits over S_T.
        logits_a: (B, 2) logits over a in {2, 3}.
        logits_b: (B, 2) logits over b in {2, 3}.

    Returns:
        (B, 12) log pi_T(T) + log pi_a(a) + log pi_b(b) - log Z(a, b), in :data:`ACTIONS` order.
    """
    log_T = torch.log_softmax(logits_T, dim=-1)
    pair_scores = torch.log_softmax(logits_a, dim=-1)[:, _A_INDEX] + torch.log_softmax(logits_b, dim=-1)[:, _B_INDEX]
    log_ab = pair_scores - torch.logsumexp(pair_scores, dim=-1, keepdim=True)
    return (log_T[:, :, None] + log_ab[:, None, :]).reshape(log_T.shape[0], len(ACTIONS))


def greedy_actions(logits_T: torch.Tensor, logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """The most probable of the 12 actions (argmax of the restricted joint; ties to the lowest index).

    Args:
        logits_T, logits_a, logits_b: the three heads' logits, as for :func:`action_log_probs`.

    Returns:
        (B,) action indices into :data:`ACTIONS`.
    """
    return action_log_probs(logits_T, logits_a, logits_b).argmax(dim=-1)


def shape_rewards(pool: torch.Tensor, top_k: int, gamma: float) -> torch.Tensor:
    """Eq. 18: in each pair's pool of K candidates only the top_k keep their reward, the rest get -gamma.

    Args:
        pool: (B, K) rewards of the K candidates sampled for each of B pairs.
        top_k: how many candidates per pool keep their reward, 1..K; ties broken by index order.
        gamma: the penalty.

    Returns:
        (B, K) shaped rewards.
    """
    n_candidates = pool.shape[-1]
    if not 1 <= top_k <= n_candidates:
        raise ValueError(f"top_k must be in 1..{n_candidates}, got {top_k}")
    order = torch.argsort(pool, dim=-1, descending=True, stable=True)
    keep = torch.zeros_like(pool, dtype=torch.bool).scatter_(-1, order[:, :top_k], True)
    return torch.where(keep, pool, torch.full_like(pool, -gamma))


def advantages(shaped: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-candidate advantages.

    Args:
        shaped: (B, K) shaped rewards.
        mode: ``"reinforce"`` (the shaped reward, eq. 20-21) or ``"group"`` ((R - mean) / (std + 1e-6) over
            each row's K candidates, GRPO).

    Returns:
        (B, K) advantages.
    """
    if mode == "reinforce":
        return shaped
    if mode == "group":
        return (shaped - shaped.mean(dim=-1, keepdim=True)) / (shaped.std(dim=-1, keepdim=True) + 1e-6)
    raise ValueError(f"advantage mode must be one of {ADVANTAGE_MODES}, got {mode!r}")


@dataclass(frozen=True)
class PolicySettings:
    """Stage-1 training settings (sec. 4.2: 4 candidates, gamma 1, lr 1e-4, batch 32).

    Args:
        candidates: K, actions sampled per pair and step.
        top_k: candidates per pool that keep their reward.
        gamma: penalty of the others.
        lr: Adam's learning rate.
        batch_size: pairs per step.
        steps: optimisation steps.
        advantage: ``"reinforce"`` or ``"group"``.
        d_model: the network's width.
        seed: seeds the initialisation, the batches and the samples.
    """

    candidates: int = 4
    top_k: int = 2
    gamma: float = 1.0
    lr: float = 1e-4
    batch_size: int = 32
    steps: int = 2000
    advantage: str = "reinforce"
    d_model: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.advantage not in ADVANTAGE_MODES:
            raise ValueError(f"advantage must be one of {ADVANTAGE_MODES}, got {self.advantage!r}")
        if not 1 <= self.top_k <= self.candidates:
            raise ValueError(f"top_k must be in 1..candidates={self.candidates}, got {self.top_k}")
        if self.batch_size < 1 or self.steps < 0:
            raise ValueError(f"batch_size must be >= 1 and steps >= 0, got {self.batch_size}, {self.steps}")


def _as_tensor(embeddings: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(embeddings, dtype=np.float32))


def greedy_choices(model: PolicyNetwork, image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Algorithm 1 line 14 for every pair.

    Args:
        model: a trained policy.
        image_emb: (N, d_image) image embeddings.
        text_emb: (N, d_text) text embeddings.

    Returns:
        (N,) indices into :data:`ACTIONS`.
    """
    with torch.no_grad():
        return greedy_actions(*model(_as_tensor(image_emb), _as_tensor(text_emb))).numpy()


def train_policy(image_emb: np.ndarray, text_emb: np.ndarray, rewards: np.ndarray, settings: PolicySettings,
                 on_step: Callable[[int, dict], None] | None = None) -> tuple[PolicyNetwork, pd.DataFrame]:
    """Algorithm 1, stage 1, on a precomputed reward table.

    Args:
        image_emb: (N, d_image) image embeddings r of the training pairs.
        text_emb: (N, d_text) text embeddings c.
        rewards: (N, 12, S) total reward R(u) of each pair, action and generation seed.
        settings: the training settings.
        on_step: called as ``on_step(step, row)`` after every step with that step's history row.

    Returns:
        the trained network and the history, one row per step: step, loss, raw_reward (mean over the
        sampled candidates), shaped_reward, entropy (of pi over the 12 actions before the update, mean over
        the batch), greedy_best_share (after the update, the share of all N pairs whose greedy action is the
        table's best action, rewards averaged over seeds; one forward pass over the N pairs per step).
    """
    images, texts = _as_tensor(image_emb), _as_tensor(text_emb)
    rewards = np.asarray(rewards, dtype=np.float32)
    n_pairs = images.shape[0]
    if images.ndim != 2 or texts.ndim != 2 or texts.shape[0] != n_pairs:
        raise ValueError(f"embeddings must be (N, d) with the same N, got {tuple(images.shape)}, {tuple(texts.shape)}")
    if rewards.ndim != 3 or rewards.shape[:2] != (n_pairs, len(ACTIONS)) or rewards.shape[2] < 1:
        raise ValueError(f"rewards must be ({n_pairs}, {len(ACTIONS)}, S>=1), got {rewards.shape}")
    best_actions = rewards.mean(axis=2).argmax(axis=1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = PolicyNetwork(images.shape[1], texts.shape[1], d_model=settings.d_model)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    batch_rng = np.random.default_rng(settings.seed)
    action_generator = torch.Generator().manual_seed(settings.seed)

    rows = []
    for step in range(settings.steps):
        pairs = batch_rng.choice(n_pairs, size=settings.batch_size, replace=n_pairs < settings.batch_size)
        seeds = batch_rng.integers(0, rewards.shape[2], size=(settings.batch_size, settings.candidates))
        log_probs = action_log_probs(*model(images[pairs], texts[pairs]))
        actions = torch.multinomial(log_probs.detach().exp(), settings.candidates, replacement=True,
                                    generator=action_generator)
        raw = torch.from_numpy(rewards[pairs[:, None], actions.numpy(), seeds])
        shaped = shape_rewards(raw, settings.top_k, settings.gamma)
        loss = -(advantages(shaped, settings.advantage) * log_probs.gather(1, actions)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        entropy = -(log_probs.detach().exp() * log_probs.detach()).sum(dim=1).mean()
        greedy = greedy_choices(model, images, texts)
        row = {"step": step, "loss": loss.item(), "raw_reward": float(raw.mean()), "shaped_reward": float(shaped.mean()),
               "entropy": float(entropy), "greedy_best_share": float(np.mean(greedy == best_actions))}
        rows.append(row)
        if on_step is not None:
            on_step(step, row)
    return model, pd.DataFrame(rows, columns=["step", "loss", "raw_reward", "shaped_reward", "entropy",
                                              "greedy_best_share"])


def save_policy(model: PolicyNetwork, directory: Path, config: dict) -> None:
    """Write ``policy.safetensors`` and ``config.json`` (``config`` plus the architecture) into ``directory``.

    Args:
        model: the trained policy.
        directory: created if missing.
        config: JSON-serialisable facts to keep with the weights (encoder, settings, ...).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    (directory / "config.json").write_text(json.dumps({**config, "architecture": model.architecture}, indent=2))


def load_policy(directory: Path) -> tuple[PolicyNetwork, dict]:
    """Read a policy written by :func:`save_policy`.

    Args:
        directory: the folder holding ``policy.safetensors`` and ``config.json``.

    Returns:
        the network and its config.
    """
    directory = Path(directory)
    weights, config_file = directory / WEIGHTS_FILE, directory / "config.json"
    if not weights.is_file() or not config_file.is_file():
        raise InputError(f"{directory}: no trained policy ({WEIGHTS_FILE} and config.json; run the policy stage)")
    config = json.loads(config_file.read_text())
    model = PolicyNetwork(**config["architecture"])
    model.load_state_dict(load_checked(weights, "policy", model.state_dict()))
    return model, config

"""Algorithm 1, stage 2: the augmentation set D3, generated with the policy's actions.

**How many.** ``generate.per_class``: explicit counts, or ``table7`` (:func:`argen.counts.table7_counts`): the paper's
table 7 scaled to the dataset. In the paper ARGen adds surprise 180, disgust 162 and fear 141 clips to a
DFEW fold's training split, whose scarce classes hold 1470, 145 and 905 clips (2520 together). Here the
count of emotion e is ``max(1, round(table7_factor * added_e * n / 2520))``, n the training split's clips
of those three emotions: the added clips are the same share of the scarce training clips as in the paper
(483 / 2520 = 19.2 %), split in the paper's proportions 180 : 162 : 141. The rule reads only the training
split's size, never a test clip.

**Which pairs.** For each scarce emotion, ``generate.per_class[emotion]`` clips. The candidates are every
identity with a verified prompt of that emotion, in a seeded random order; when more clips are asked for
than there are identities, the order repeats and the repeats get new seeds (clip number n of round r
uses seed ``base + 1000 * n + 100_000 * r``), so no two clips are identical.

**Which action.** ``generate.policy``: ``learned`` takes the argmax of the trained policy for the pair's state
(line 14), ``random`` draws one of the 12 actions uniformly (seeded), ``fixed`` uses ``generate.fixed_action``.

**What is written.** Each clip's frames as JPEG files ``data/generated/<clip_id>/00001.jpg``... (the layout a
frame-folder dataset has, so the recognition stage reads them like real clips) and one index row per
clip with the clip table's columns (``clip_id``, ``frames_dir``, ``frames``, ``n_frames``, ``label``,
``label_id``, ``split`` = train, ``subject`` = the identity's subject) plus what produced it: identity,
prompt, action, seed, generator, steps run, model calls, policy and status. A clip whose generation fails
is a row with ``status = failed: ...`` and no frames; the stage goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from argen.generators.factory import GenerationInput, VideoGenerator
from argen.asi.kb import prompt_aus_from_line
from argen.actions import ACTIONS
from argen.emotions import EMOTION_INDEX
from argen.params import GenerateParams, GeneratorParams


def choose_pairs(prompts: pd.DataFrame, per_class: dict[str, int], seed: int) -> pd.DataFrame:
    """The (identity, emotion) pairs to generate, with their round (module docstring)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for emotion in sorted(per_class):
        pool = prompts[prompts.emotion == emotion].sort_values("identity_id").reset_index(drop=True)
        count = per_class[emotion]
        if count == 0 or pool.empty:
            continue
        order = rng.permutation(len(pool))
        for k in range(count):
            row = pool.iloc[order[k % len(pool)]]
            chosen.append({"number": len(chosen), "identity_id": row.identity_id, "emotion": emotion,
                           "round": k // len(pool), "prompt": row.prompt, "raw_final": row.raw_final,
                           "subject": row.get("subject", None)})
    return pd.DataFrame(chosen, columns=["number", "identity_id", "emotion", "round", "prompt", "raw_final",
                                         "subject"])


def pick_actions(policy: str, n: int, seed: int, fixed: tuple[int, float, float],
                 learned: np.ndarray | None = None) -> np.ndarray:
    """Action indices for ``n`` pairs under ``generate.policy``."""
    if policy == "learned":
        if learned is None or len(learned) != n:
            raise ValueError("the learned policy's choices are needed for every pair")
        return np.asarray(learned, dtype=int)
    if policy == "random":
        return np.random.default_rng(seed + 7).integers(0, len(ACTIONS), n)
    return np.full(n, ACTIONS.index((int(fixed[0]), float(fixed[1]), float(fixed[2]))))


def policy_actions(cfg: GenerateParams, generator: GeneratorParams, pairs: pd.DataFrame, images: dict[str, np.ndarray], landmarks: dict[str, np.ndarray],
                   seed: int, policy_dir: Path) -> np.ndarray:
    """Action indices for ``pairs`` (identity_id, prompt) under ``generate.policy`` (module docstring).

    Raises:
        UserError: the policy in ``policy_dir`` was trained on states another generator encodes.
    """
    learned = None
    if cfg.policy == "learned":
        from argen.policy.reinforce import greedy_choices, load_policy
        from argen.policy.state import encode_states
        from argen.errors import UserError

        model, config = load_policy(policy_dir)
        image_emb, text_emb, encoder = encode_states(generator, [images[i] for i in pairs.identity_id],
                                                     np.stack([landmarks[i] for i in pairs.identity_id]),
                                                     pairs.prompt.tolist())
        if encoder != config.get("encoder"):
            raise UserError(f"{policy_dir} was trained on states from {config.get('encoder')!r}, but the generator "
                            f"{generator.generator!r} encodes {encoder!r}: re-run the policy stage")
        learned = greedy_choices(model, image_emb, text_emb)
    return pick_actions(cfg.policy, len(pairs), seed, cfg.fixed_action, learned)


def policy_reward(cfg: GenerateParams, policy_dir: Path) -> str:
    """Which reward chose the actions: the trained policy's (``argen`` or ``paper``, from its config.json), or
    ``none (<policy> policy)`` when ``generate.policy`` is random or fixed."""
    if cfg.policy != "learned":
        return f"none ({cfg.policy} policy)"
    config = Path(policy_dir) / "config.json"
    return json.loads(config.read_text()).get("reward", "unknown") if config.is_file() else "unknown"


def generate_set(pairs: pd.DataFrame, actions: np.ndarray, generator: VideoGenerator, images: dict[str, np.ndarray],
                 landmarks: dict[str, np.ndarray], out_dir: Path, index_dir: Path, n_frames: int, base_seed: int,
                 jpeg_quality: int, policy: str, progress=None) -> pd.DataFrame:
    """Generate every chosen pair with its action; return the index.

    Frames are written under ``out_dir`` (a staging folder); the index names ``index_dir``, where the
    folder ends up.
    """
    rows = []
    for pair, action_index in zip(pairs.itertuples(index=False), actions):
        action = ACTIONS[int(action_index)]
        clip_id = f"gen-{pair.emotion}-{pair.identity_id}-r{pair.round}"
        seed = base_seed + 1000 * int(pair.number) + 100_000 * int(pair.round)
        row = {"number": int(pair.number), "clip_id": clip_id, "frames_dir": str(index_dir / clip_id), "frames": [], "n_frames": 0,
               "label": pair.emotion, "label_id": EMOTION_INDEX[pair.emotion], "split": "train",
               "subject": pair.subject, "identity_id": pair.identity_id, "emotion": pair.emotion,
               "prompt": pair.prompt, "action": int(action_index), "T": action[0], "a": action[1], "b": action[2],
               "seed": seed, "generator": generator.name, "policy": policy, "steps_run": 0, "model_calls": 0}
        item = GenerationInput(images[pair.identity_id], landmarks[pair.identity_id], pair.prompt,
                               prompt_aus_from_line(pair.raw_final))
        try:
            video, record = generator.generate(item, action, seed, n_frames)
        except (ValueError, RuntimeError, OSError) as err:
            rows.append(row | {"status": f"failed: {type(err).__name__}: {err}"})
            if progress is not None:
                progress.update(1)
            continue
        folder = out_dir / clip_id
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"{m + 1:05d}.jpg" for m in range(len(video))]
        for name, frame in zip(names, video):
            if not cv2.imwrite(str(folder / name), frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise OSError(f"{folder / name}: could not write a generated frame")
        rows.append(row | {"frames": names, "n_frames": len(names), "steps_run": int(record.get("steps_run", 0)),
                           "model_calls": int(record.get("denoiser_calls", record.get("unet_calls", 0))),
                           "status": "ok" if not record.get("still") else "ok (still: " + record.get("note", "") + ")"})
        if progress is not None:
            progress.update(1)
    return pd.DataFrame(rows)

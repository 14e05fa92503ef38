"""Stage ``policy`` (Algorithm 1 stage 1, eq. 13, 18-21): REINFORCE on the cached reward table.

Reads ``ard`` (lambda, gamma, top_k, candidates, advantage, weight_au, weight_human, ratings_csv,
policy_*), ``generator`` (the state encoders; the table must be fresh), ``rewards`` (the table must be fresh),
``generate.fixed_action`` (the fixed baseline), ``data/interim/rewards.parquet`` and ``reward_pairs.parquet``, and the
identity frames (the state encoders). Rewards are looked up in the table, never regenerated, so
``dvc exp run -S ard.lambda=3`` re-runs this stage and what follows it, not the rewards stage.
Writes ``models/policy/`` (weights and config), ``reports/policy/metrics.json`` (the held-out comparison:
learned vs random vs fixed T = 20 vs best fixed vs oracle), ``reports/policy/comparison.png`` and the
training curves (DVCLive, ``reports/policy/live/``: loss, raw and shaped reward, entropy, share of pairs
whose greedy action is the table's best; the paper's figure 8).
"""

import json
import logging
from pathlib import Path


from argen.policy.comparison import fit_and_compare, reward_cubes, total_reward
from argen.actions import ACTIONS
from argen.policy.reinforce import PolicySettings, save_policy
from argen.policy.plots import plot_comparison
from argen.rewards.table import COMPONENTS, EXECUTION_KEYS, generation_settings
from argen.rewards.components import read_ratings
from argen.policy.state import pair_states
from argen.errors import UserError
from argen.extract import LANDMARK_COLUMNS
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.params import Params
from argen.stage import CurveLogger, live_logger, run_stage

TABLE = Path("data/interim/rewards.parquet")
PAIRS = Path("data/interim/reward_pairs.parquet")
IDENTITIES = Path("data/interim/identities.parquet")
IMAGES = Path("data/interim/identities")
MODEL = Path("models/policy")
REPORTS = Path("reports/policy")

#: Training steps averaged into one logged point of the curves, and the curves logged.
LOG_EVERY = 20
CURVES = ("loss", "raw_reward", "shaped_reward", "entropy", "greedy_best_share")

log = logging.getLogger("argen.stages.policy")


def check_fresh(params: Params) -> None:
    """Stop when the reward table was made under other generation settings than params.yaml holds now."""
    meta = read_parquet_metadata(TABLE)
    made = json.loads(meta.get("generation", "{}"))
    now = generation_settings(params.generator)
    stale = {f"generator.{key}": (made.get(key), value) for key, value in now.items() if made.get(key) != value}
    made_rewards = json.loads(meta.get("params", "{}")).get("rewards", {})
    for key, value in params.rewards.model_dump(mode="json", exclude=set(EXECUTION_KEYS)).items():
        if made_rewards.get(key) != value:
            stale[f"rewards.{key}"] = (made_rewards.get(key), value)
    if stale:
        shown = ", ".join(f"{k}: table {a!r}, params {b!r}" for k, (a, b) in stale.items())
        raise UserError(f"{TABLE} is stale ({shown}): re-run the rewards stage (dvc repro rewards)")


def main(params: Params) -> None:
    ard = params.ard
    check_fresh(params)
    table = read_table(TABLE, ["video_id", "pair_id", "action", "seed_index", "status", "model_calls", *COMPONENTS],
                       "rewards")
    pairs = read_table(PAIRS, ["pair_id", "identity_id", "emotion", "split", "prompt"], "rewards")
    ratings = None
    if ard.weight_human > 0:
        ratings, problems = read_ratings(ard.ratings_csv, set(table.video_id))
        for problem in problems:
            log.warning("%s", problem)
    total, unrated = total_reward(table, ard.lambda_, ard.weight_au, ard.weight_human, ratings,
                                   (ard.weight_quality, ard.weight_face, ard.weight_expression))
    if unrated:
        log.warning("%d of %d videos have no human rating: they get the mean rating", unrated, len(table))
    values = {"total": total, "model_calls": table.model_calls, **{c: table[c] for c in COMPONENTS}}
    complete, cubes, left_out = reward_cubes(table, values)
    if left_out:
        log.warning("%d pairs left out: not every action and seed has an audited video (%s...)", len(left_out),
                    ", ".join(left_out[:3]))
    pairs = pairs.set_index("pair_id").loc[complete].reset_index()
    train = (pairs.split == "train").to_numpy()
    if train.sum() == 0 or (~train).sum() == 0:
        raise UserError(f"{PAIRS}: {int(train.sum())} complete training and {int((~train).sum())} validation pairs; "
                        f"the policy needs both (rewards.val_fraction, rewards.max_identities)")
    identities = read_table(IDENTITIES, ["clip_id", "image_file", *LANDMARK_COLUMNS], "identities")
    image_emb, text_emb, encoder = pair_states(params.generator, pairs, identities.set_index("clip_id"), IMAGES)
    settings = PolicySettings(candidates=ard.candidates, top_k=ard.top_k, gamma=ard.gamma, lr=ard.policy_lr,
                              batch_size=ard.policy_batch, steps=ard.policy_steps, advantage=ard.advantage,
                              d_model=ard.policy_d_model, seed=ard.policy_seed)
    with staged_outputs() as out:
        with live_logger(out.path(REPORTS / "live")) as live:
            curves = CurveLogger(live, LOG_EVERY)

            def on_step(step: int, row: dict) -> None:
                curves(step, {key: row[key] for key in CURVES})

            outcome = fit_and_compare(cubes, image_emb, text_emb, train, settings, params.generate.fixed_action, on_step)
            curves.flush()
        model, comparison, difference, learned = outcome.model, outcome.comparison, outcome.difference, outcome.learned
        best = outcome.best_fixed
        metrics = {
            "heldout": {policy: {k: round(v, 4) for k, v in row.items()} for policy, row in comparison.iterrows()},
            "learned_minus_best_fixed": {k: round(v, 4) if isinstance(v, float) else v for k, v in difference.items()},
            "learned_beats_best_fixed": outcome.beats_best_fixed,
            "best_fixed_action": list(ACTIONS[best]),
            "learned_actions": {f"{t} ({a:g},{b:g})": int((learned == k).sum())
                                for k, (t, a, b) in enumerate(ACTIONS) if (learned == k).any()},
            "pairs": {"train": int(train.sum()), "val": int((~train).sum()), "left_out": len(left_out)},
            "unrated_videos": unrated, "final_loss": round(float(outcome.history.loss.tail(100).mean()), 4),
            "encoder": encoder,
        }
        save_policy(model, out.path(MODEL), {"encoder": encoder, "settings": settings.__dict__,
                                              "lambda": ard.lambda_, "weight_au": ard.weight_au,
                                              "weight_human": ard.weight_human, "d_image": int(image_emb.shape[1]),
                                              "d_text": int(text_emb.shape[1])})
        out.json(metrics, REPORTS / "metrics.json")
        plot_comparison(comparison, out.path(REPORTS / "comparison.png"))
    log.info("held-out mean reward: %s", {p: round(r, 3) for p, r in comparison.reward.items()})
    log.info("learned - best fixed %s: %+.3f [%+.3f, %+.3f] over %d validation pairs", list(ACTIONS[best]),
             difference["mean"], difference["low"], difference["high"], difference["pairs"])


if __name__ == "__main__":
    run_stage(main)

"""The policy stage's work: REINFORCE on the cached reward table and the held-out comparison.

``stages/policy.py`` runs it; its docstring says what the stage reads and writes.
"""

from __future__ import annotations

import logging

from argen.actions import ACTIONS
from argen.errors import UserError
from argen.extract import LANDMARK_COLUMNS
from argen.io import read_parquet_metadata, read_table, staged_outputs
from argen.params import Params
from argen.policy.comparison import (FIDELITY_GRID, fidelity_weight_for, fit_and_compare, gap_closed, reward_cubes,
                                     total_reward)
from argen.policy.plots import plot_comparison
from argen.policy.reinforce import PolicySettings, save_policy
from argen.policy.state import pair_states
from argen.rewards.components import read_ratings
from argen.rewards.table import COMPONENTS, check_fresh
from argen.paths import (
    IDENTITIES, IDENTITY_IMAGES as IMAGES, POLICY as MODEL, REWARDS as TABLE, REWARD_PAIRS as PAIRS, report_dir,
)
from argen.stage import CurveLogger, live_logger

REPORTS = report_dir("policy")

#: Training steps averaged into one logged point of the curves, and the curves logged.
LOG_EVERY = 20
CURVES = ("loss", "raw_reward", "shaped_reward", "entropy", "greedy_best_share")

log = logging.getLogger("argen.stages.policy")


def fidelity_weight(ard, table, pairs, naturalness: tuple[float, float, float]) -> tuple[float, list[dict]]:
    """w_X: 0 for the paper's reward, the param when a number, else chosen on the training pairs
    (:func:`argen.policy.comparison.fidelity_weight_for`); and the selection's rows for the metrics."""
    if ard.reward == "paper":
        return 0.0, []
    if ard.weight_fidelity != "auto":
        return float(ard.weight_fidelity), []
    weight, outcome = fidelity_weight_for(table, pairs, ard.lambda_, naturalness, ard.fidelity_keep,
                                          ard.fidelity_reference)
    if not outcome.reaches.any():
        log.warning("no fidelity weight of %s keeps %.0f %% of the attainable R_X on the training pairs: using the "
                    "largest, %g", list(FIDELITY_GRID), 100 * ard.fidelity_keep, weight)
    log.info("fidelity weight w_X = %g (smallest keeping %.0f %% of the attainable R_X on %d training pairs)", weight,
             100 * ard.fidelity_keep, int((pairs.split == "train").sum()))
    return weight, [{k: (round(v, 4) if isinstance(v, float) else bool(v) if k == "reaches" else v)
                     for k, v in row.items()} for row in outcome.to_dict("records")]


def run_policy_stage(params: Params) -> None:
    ard = params.ard
    check_fresh(read_parquet_metadata(TABLE), params.generator, params.rewards, TABLE)
    table = read_table(TABLE, ["video_id", "pair_id", "action", "seed_index", "status", "model_calls", *COMPONENTS],
                       "rewards")
    pairs = read_table(PAIRS, ["pair_id", "identity_id", "emotion", "split", "prompt"], "rewards")
    ratings = None
    if ard.weight_human > 0:
        ratings, problems = read_ratings(ard.ratings_csv, set(table.video_id))
        for problem in problems:
            log.warning("%s", problem)
    naturalness = (ard.weight_quality, ard.weight_face, ard.weight_expression)
    weight_fidelity, selection = fidelity_weight(ard, table, pairs, naturalness)
    total, unrated = total_reward(table, ard.lambda_, weight_fidelity, ard.weight_human, ratings, naturalness)
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
            "gap_closed": {k: round(v, 4) for k, v in gap_closed(comparison).items()},
            "best_fixed_action": list(ACTIONS[best]),
            "learned_actions": {f"{t} ({a:g},{b:g})": int((learned == k).sum())
                                for k, (t, a, b) in enumerate(ACTIONS) if (learned == k).any()},
            "pairs": {"train": int(train.sum()), "val": int((~train).sum()), "left_out": len(left_out)},
            "unrated_videos": unrated, "final_loss": round(float(outcome.history.loss.tail(100).mean()), 4),
            "encoder": encoder,
            "reward": {"mode": ard.reward, "weight_fidelity": weight_fidelity,
                       "weight_fidelity_param": ard.weight_fidelity, "fidelity_keep": ard.fidelity_keep,
                       "fidelity_reference": ard.fidelity_reference,
                       "selection_on_train_pairs": selection},
        }
        save_policy(model, out.path(MODEL), {"encoder": encoder, "settings": settings.__dict__,
                                              "lambda": ard.lambda_, "reward": ard.reward,
                                              "weight_fidelity": weight_fidelity,
                                              "weight_human": ard.weight_human, "d_image": int(image_emb.shape[1]),
                                              "d_text": int(text_emb.shape[1])})
        out.json(metrics, REPORTS / "metrics.json")
        plot_comparison(comparison, out.path(REPORTS / "comparison.png"))
    log.info("held-out mean reward: %s", {p: round(r, 3) for p, r in comparison.reward.items()})
    log.info("learned - best fixed %s: %+.3f [%+.3f, %+.3f] over %d validation pairs", list(ACTIONS[best]),
             difference["mean"], difference["low"], difference["high"], difference["pairs"])

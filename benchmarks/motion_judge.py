"""Does the ``motion`` generator make each emotion's motion? The recogniser as a judge, without rendering.

Run after ``make repro`` (or ``dvc repro recognition``): it reads ``models/motion``, the identity frames'
landmarks, the training tracks, the run's ASI prompts and the geometry recogniser trained on the original
split (``models/recognize/<model>-original``, the first of ``recognize.models`` whose run is a geometry model):

    python -m benchmarks.motion_judge [--guidance 1,3 3,5] [--action 5 2 3] [--samples 40] [--kb-entries] [--rendered]

Motions are sampled for every scarce emotion from its ASI prompts (in turn) and from its fixed prompt (the
"w/o ASI" ablation's, no AU codes), once per guidance range ``g_min,g_max``, and added to the identity
frames' landmarks (in turn), as the generator does. With ``--kb-entries`` also from each entry of the AU
knowledge base alone, as ``Expression: <emotion>; <its AU phrases>.`` with its AU vector: which entries make
their emotion (after ``dvc exp run -S au_kb.data_check=false`` it judges the entries the check leaves out
too). The landmarks backend's AU estimator reads the clips (``extract_aus`` params) and the recogniser
labels them. The same is done with real training tracks of the emotion on the same identities: the share a
perfect generator would get. Printed: the share of clips labelled with their target emotion (averaged over
the recogniser's seeds) and the most common labels.

This skips the warp, the video and the landmark detector of the ``tracks`` stage, so it measures the motion
alone, in seconds instead of a pipeline run. On the 3000-clip demo's fold 1 the real fear tracks score 62 %
here, the recogniser's recall on the real fear test clips 62 % (docs/generators.md has the figures).

``--rendered`` also judges every cell the way the pipeline does: each motion warped onto its identity frame
at ``generator.size`` (:func:`argen.generators.render.render_frames`), the landmarks detected again on the
frames and the AUs estimated from them (as the ``tracks`` stage does); the real tracks rendered the same way
give what the renderer and the detector leave of a perfect motion.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import pandas as pd
import torch

from argen.asi.kb import prompt_aus_from_line
from argen.asi.prompts import FIXED_PROMPT
from argen.asi.verify import strip_au_tags
from argen.extract import landmarks_of
from argen.extract.landmarks import MEASURE_COLUMNS, LandmarkAUBackend, geometric_measures, smooth_landmarks
from argen.generators.motion import (MotionGuidance, MotionModel, load_training_tracks, minilm_encoder,
                                     motion_condition, motion_to_pixels, sample_motion)
from argen.generators.render import fit_to_size, render_frames
from argen.identities import read_identity_image
from argen.io import read_table
from argen.params import load_params
from argen.paths import IDENTITIES, IDENTITY_IMAGES, KB, PROMPTS, RECOGNIZE_MODELS
from argen.recognize.run import load_run
from argen.recognize.train import load_geometry_data, predict


def motion_rows(motions: np.ndarray, identities: np.ndarray, backend: LandmarkAUBackend) -> pd.DataFrame:
    """Per-frame rows of ``motions`` (n, M, 68, 2), each added to identity k mod len(identities)'s landmarks."""
    parts = []
    for k, motion in enumerate(motions):
        landmarks = smooth_landmarks(motion_to_pixels(motion, identities[k % len(identities)]), backend.smooth_frames)
        columns = {f"{axis}_{j}": landmarks[:, j, i] for j in range(68) for i, axis in enumerate("xy")}
        measures = dict(zip(MEASURE_COLUMNS, geometric_measures(landmarks).T))
        parts.append(pd.DataFrame({"clip_id": f"clip{k}", "frame": np.arange(len(landmarks)), "success": True,
                                   **columns, **measures}))
    return pd.concat(parts, ignore_index=True)


def rendered_rows(motions: np.ndarray, faces: list[tuple[np.ndarray, np.ndarray]], backend: LandmarkAUBackend
                  ) -> pd.DataFrame:
    """Per-frame rows of ``motions`` warped onto the identity frames ``faces`` (image, landmarks; motion k on
    face k mod len(faces)) and detected again, as the generator and the ``tracks`` stage do."""
    parts = []
    for k, motion in enumerate(motions):
        image, landmarks = faces[k % len(faces)]
        frames, _ = render_frames(image, landmarks, motion_to_pixels(motion, landmarks))
        rows = backend.process_clip(f"clip{k}", IDENTITY_IMAGES, [f"{m}.png" for m in range(len(frames))], list(frames))
        parts.append(rows.assign(frame=np.arange(len(frames))))
    return pd.concat(parts, ignore_index=True)


def judge(rows: pd.DataFrame, n_clips: int, label: str, backend: LandmarkAUBackend, recogniser: tuple) -> str:
    """The share of the ``n_clips`` clips of ``rows`` (clip0, clip1, ...) labelled ``label`` (in %, over the
    clips and the recogniser's seeds) and the three most common labels."""
    config, models, stats = recogniser
    rows = backend.finalize(rows)
    table = pd.DataFrame({"clip_id": [f"clip{k}" for k in range(n_clips)], "label": label})
    data = load_geometry_data(table, rows)
    data.standardise(*stats)
    names = np.asarray(config["classes"])[np.concatenate([predict(m, data, config["frames"]).argmax(1)
                                                          for m in models])]
    common = ", ".join(f"{name} {count}" for name, count in Counter(names).most_common(3))
    return f"{100 * np.mean(names == label):5.1f} % [{common}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guidance", nargs="+", default=["1,3", "3,5"], help="g_min,g_max ranges to compare")
    parser.add_argument("--action", type=float, nargs=3, default=[5, 2.0, 3.0], metavar=("T", "A", "B"))
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--kb-entries", action="store_true", help="also judge each knowledge-base entry alone")
    parser.add_argument("--rendered", action="store_true",
                        help="also judge every cell after rendering it and detecting the landmarks again")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params()
    runs = {name: load_run(RECOGNIZE_MODELS / f"{name}-original") for name in params.recognize.models}
    model_name = next((name for name, run in runs.items() if run[0]["kind"] == "geometry"), None)
    if model_name is None:
        raise SystemExit("recognize.models has no geometry recogniser (Landmark_Transformer): nothing to judge with")
    recogniser = runs[model_name]
    identity_table = read_table(IDENTITIES, ["image_file", *[f"{axis}_{j}" for axis in "xy" for j in range(68)]],
                                "identities")
    identities = landmarks_of(identity_table)
    faces = [fit_to_size(read_identity_image(IDENTITY_IMAGES / name), points, params.generator.size)
             for name, points in zip(identity_table.image_file, identities)] if args.rendered else []
    ex = params.extract_aus
    if ex.backend != "landmarks":
        raise SystemExit(f"extract_aus.backend is {ex.backend}: this benchmark reads AUs with the landmarks backend's "
                         "estimator, so its recogniser must have been trained on that backend's rows")
    backend = LandmarkAUBackend(ex.reference, ex.smooth_frames, ex.neutral_bounds)
    tracks, _ = load_training_tracks(params.motion_model)
    labels = np.asarray(tracks.labels)
    prompts = read_table(PROMPTS, ["emotion", "prompt", "raw_final"], "prompts")
    kb = read_table(KB, ["entry_id", "emotion", "aus", "intensities", "description"], "au_kb")
    model = MotionModel.load(params.generator.motion_path)
    steps, a, b = int(args.action[0]), args.action[1], args.action[2]
    rng = np.random.default_rng(0)
    print(f"{model_name}-original as judge; {args.samples} clips per cell on {len(identities)} identities; "
          f"action ({steps}, {a}, {b}); share labelled as the target [most common labels]"
          + ("; then the same motions rendered and detected again" if args.rendered else ""))

    def shares(motions: np.ndarray, label: str) -> str:
        direct = judge(motion_rows(motions, identities, backend), len(motions), label, backend, recogniser)
        if not args.rendered:
            return direct
        return f"{direct}  rendered {judge(rendered_rows(motions, faces, backend), len(motions), label, backend, recogniser)}"
    for emotion, rows in prompts.groupby("emotion"):
        real = tracks.motions[rng.choice(np.flatnonzero(labels == emotion), args.samples)]
        print(f"\n{emotion}\n  real training tracks:         {shares(real, emotion)}")
        conditions = {"ASI prompts": [motion_condition(r.prompt, prompt_aus_from_line(r.raw_final), minilm_encoder)[0]
                                      for r in rows.itertuples()],
                      "fixed prompt": [motion_condition(FIXED_PROMPT.format(emotion=emotion), {}, minilm_encoder)[0]]}
        for entry in kb[kb.emotion == emotion].itertuples() if args.kb_entries else []:
            text = strip_au_tags(f"Expression: {emotion}; {entry.description}.")
            aus = " ".join(str(au) for au in entry.aus)
            conditions[f"{entry.entry_id} ({aus})"] = [
                motion_condition(text, dict(zip(entry.aus, entry.intensities)), minilm_encoder)[0]]
        for kind, conds in conditions.items():
            for bounds in args.guidance:
                g_min, g_max = map(float, bounds.split(","))
                guidance = MotionGuidance(g_min, g_max, params.generator.guidance_form, params.generator.motion_sampler)
                motions = np.stack([sample_motion(model, conds[k % len(conds)], steps, a, b, guidance, k)[0]
                                    for k in range(args.samples)])
                share = shares(motions, emotion)
                print(f"  {kind + ',':24s} g in [{g_min}, {g_max}]: {share}")


if __name__ == "__main__":
    main()

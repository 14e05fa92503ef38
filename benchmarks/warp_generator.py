"""Seconds per 16-frame video of the warp generator at 128 and 256 px on this CPU (one process).

The AU -> landmark model is fitted on data/interim/aus.parquet when it exists (after `make repro`),
otherwise on landmarks generated from the demo's face model; the input is a rendered demo face.

Usage: python benchmarks/warp_generator.py [repeats]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from argen.generators.warp import WarpGenerator, fit_au_landmark_model
from argen.aus import INTENSITY_AUS
from argen.demo.dataset import render_face
from argen.demo.face import FaceShape, expressive_landmarks, neutral_landmarks
from argen.demo.render import Appearance


def model_rows() -> pd.DataFrame:
    path = Path("data/interim/aus.parquet")
    if path.exists():
        return pd.read_parquet(path)
    rng = np.random.default_rng(0)
    rows = []
    for clip in range(20):
        shape = FaceShape.sample(rng)
        neutral = neutral_landmarks(shape)
        for frame in range(8):
            aus = {au: float(rng.uniform(0, 4)) * (frame > 0) for au in INTENSITY_AUS}
            pts = expressive_landmarks(neutral, aus, shape)[:, :2] * 40 + 64
            rows.append({"clip_id": str(clip), "success": True, **{f"x_{i}": pts[i, 0] for i in range(68)},
                         **{f"y_{i}": pts[i, 1] for i in range(68)}, **{f"AU{au:02d}_r": aus[au] for au in INTENSITY_AUS}})
    return pd.DataFrame(rows)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    generator = WarpGenerator(fit_au_landmark_model(model_rows()))
    prompt_aus = {1: 0.8, 2: 0.8, 5: 0.6, 26: 0.9}
    for size in (128, 256):
        image, landmarks = render_face(FaceShape(), Appearance.sample(np.random.default_rng(1)), {}, size)
        image = np.clip(image, 0, 255).astype(np.uint8)
        generator.generate(image, landmarks, prompt_aus, (10, 2, 2), seed=0)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            generator.generate(image, landmarks, prompt_aus, (10, 2, 2), seed=0)
        print(f"{size}px: {(time.perf_counter() - start) / repeats:.3f} s per 16-frame video")


if __name__ == "__main__":
    main()

"""Training throughput of the recognisers and the share of time spent loading data, measured in one run.

Run after ``dvc repro`` (it reads ``data/interim/tracks``)::

    python -m benchmarks.recognition_throughput [--epochs 2] [--models Res18_LSTM Landmark_Transformer]

For each model: decoding the clips cold (an empty cache: JPEG decode + resize) and warm (the ``.npy``
cache), then ``--epochs`` epochs of training at the ``recognize`` params' input size, width and batch.
Prints clips/s of training and the share of the run spent loading (decode or cache read, plus assembling
batches) against the model's forward/backward/step.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from argen.emotions import EMOTIONS
from argen.params import load_params
from argen.recognize.clips import GEOMETRY_DIM
from argen.recognize.models import build_model, input_kind, optimizer_param_groups
from argen.recognize.train import TrainSettings, load_geometry_data, load_video_data, train_model
from stages.recognize import training_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=["Landmark_Transformer", "Res18_LSTM", "VGG13_LSTM"])
    args = parser.parse_args()
    cfg = load_params().recognize
    train, _, rows = training_split("original")
    print(f"{len(train)} training clips, {cfg.frames} frames, {cfg.image_size} px, width {cfg.width}, "
          f"batch {cfg.batch_size}, {torch.get_num_threads()} torch threads")
    print(f"{'model':22s} {'load cold s':>11s} {'load warm s':>11s} {'train s':>8s} {'clips/s':>8s} "
          f"{'loading share':>13s}")
    for name in args.models:
        kind = input_kind(name)
        with tempfile.TemporaryDirectory() as cache:
            os.environ["ARGEN_CACHE"] = cache
            start = time.perf_counter()
            data = load_geometry_data(train, rows) if kind == "geometry" else \
                load_video_data(train, cfg.image_size, cfg.face_crop)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            data = load_geometry_data(train, rows) if kind == "geometry" else \
                load_video_data(train, cfg.image_size, cfg.face_crop)
            warm = time.perf_counter() - start
        if kind == "geometry":
            data.standardise(*data.feature_stats())
        torch.manual_seed(0)
        hidden = cfg.geometry_hidden if kind == "geometry" else cfg.hidden
        model = build_model(name, len(EMOTIONS), width=cfg.width, hidden=hidden, geometry_dim=GEOMETRY_DIM)
        _, batch_size, lr = cfg.training(name)
        settings = TrainSettings(frames=cfg.frames, epochs=args.epochs, batch_size=batch_size, lr=lr,
                                 flip=kind == "video")
        timing = train_model(model, data, settings, optimizer_param_groups(model, lr))
        train_s = timing["batch_seconds"] + timing["compute_seconds"]
        loading = warm + timing["batch_seconds"]
        print(f"{name:22s} {cold:11.2f} {warm:11.2f} {train_s:8.1f} {timing['clips'] / train_s:8.1f} "
              f"{loading / (loading + timing['compute_seconds']):13.1%}")


if __name__ == "__main__":
    main()

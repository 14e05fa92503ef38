"""Training and testing one recogniser: clips in memory, batches by segments, SGD, predictions.

The recipe (paper sec. 4.1, ``recognize`` params): cross-entropy, SGD with momentum and weight decay at
the paper's learning rate 1e-3 unless a model's override says otherwise, a cosine schedule over the
training steps (the paper names no schedule; DFER-CLIP's own MultiStepLR at epochs 30 and 40 assumes its
50 epochs), one random frame per segment and an optional horizontal flip in training, the segment centres
in testing. Every clip of a set is held in memory as its decoded frames (video models) or its geometry
features (the geometry baseline); :class:`ClipData` assembles batches from them. Everything random is
drawn from the run's seed, so the same seed gives the same weights and predictions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from argen.recognize.clips import cached_clip_frames, geometry_sequence, label_ids, segment_indices


@dataclass(frozen=True)
class TrainSettings:
    """One run's training settings (see :class:`argen.params.RecognizeParams`)."""

    frames: int = 16
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    flip: bool = True
    seed: int = 0


@dataclass
class ClipData:
    """The inputs of a clip table, in memory: ``video`` (uint8 frames (n, S, S, 3) per clip) or ``geometry``
    (features (n, D) and a validity mask (n,) per clip), with labels and clip ids."""

    kind: str
    items: list
    labels: np.ndarray
    clip_ids: list[str]
    load_seconds: float = 0.0
    skips: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (+1e-3) of each geometry feature over the valid frames."""
        values = np.concatenate([features[valid] for features, valid in self.items])
        return values.mean(axis=0).astype(np.float32), (values.std(axis=0) + 1e-3).astype(np.float32)

    def standardise(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Z-score the geometry features with the training set's ``mean`` and ``std`` (masked frames stay 0).

        Landmark coordinates span about 3 IOD while expression motion is a few hundredths of one: without
        this the geometry model learns nothing but the majority class.
        """
        self.items = [((((features - mean) / std) * valid[:, None]).astype(np.float32), valid)
                      for features, valid in self.items]

    def batch(self, picks: np.ndarray, frames: int, rng: np.random.Generator | None = None,
              flip: bool = False) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Model inputs and labels of clips ``picks``: ``frames`` frames by segments (random offsets and
        flips when ``rng`` is given, segment centres otherwise)."""
        if self.kind == "video":
            clips = []
            for k in picks:
                video = self.items[k]
                clip = video[segment_indices(len(video), frames, rng)]
                if flip and rng is not None and rng.random() < 0.5:
                    clip = clip[:, :, ::-1]
                clips.append(clip)
            inputs = (torch.from_numpy(np.ascontiguousarray(np.stack(clips))).permute(0, 1, 4, 2, 3).contiguous(),)
        else:
            features, masks = [], []
            for k in picks:
                values, valid = self.items[k]
                chosen = segment_indices(len(values), frames, rng)
                features.append(values[chosen])
                masks.append(valid[chosen])
            inputs = (torch.from_numpy(np.stack(features)), torch.from_numpy(np.stack(masks)))
        return inputs, torch.from_numpy(self.labels[np.asarray(picks)]).long()


def load_video_data(table: pd.DataFrame, size: int, face_crop: bool) -> ClipData:
    """Decoded frames of every clip of ``table`` (through the decode cache); clips with no decodable frame
    are left out and recorded in ``skips``."""
    start = time.perf_counter()
    items, keep, skips = [], [], []
    for k, row in enumerate(table.itertuples(index=False)):
        frames, clip_skips = cached_clip_frames(row, size, face_crop)
        skips.extend(clip_skips)
        if len(frames):
            items.append(frames)
            keep.append(k)
        else:
            skips.append((row.clip_id, "no frame decodes"))
    kept = table.iloc[keep]
    return ClipData("video", items, label_ids(kept), kept.clip_id.tolist(), time.perf_counter() - start, skips)


def load_geometry_data(table: pd.DataFrame, frame_rows: pd.DataFrame) -> ClipData:
    """Geometry features of every clip of ``table`` from the AU backend's rows; a clip without rows or
    without any face is left out and recorded in ``skips``."""
    start = time.perf_counter()
    grouped = {cid: rows.sort_values("frame") for cid, rows in frame_rows.groupby("clip_id", sort=False)}
    items, keep, skips = [], [], []
    for k, clip_id in enumerate(table.clip_id):
        rows = grouped.get(clip_id)
        if rows is None:
            skips.append((clip_id, "no AU-backend rows"))
            continue
        features, valid = geometry_sequence(rows)
        if not valid.any():
            skips.append((clip_id, "no face in any frame"))
            continue
        items.append((features, valid))
        keep.append(k)
    kept = table.iloc[keep]
    return ClipData("geometry", items, label_ids(kept), kept.clip_id.tolist(), time.perf_counter() - start, skips)


def forward(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Logits of a batch: video models take the clips, the geometry model features and mask."""
    return model(*inputs)


def train_model(model: nn.Module, data: ClipData, settings: TrainSettings, param_groups: list[dict],
                on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, float]:
    """Train ``model`` in place on ``data``; call ``on_epoch(epoch, {"loss", "accuracy"})`` after each epoch.

    Returns:
        Timings: seconds assembling batches (``batch_seconds``) and in the model and optimiser
        (``compute_seconds``), and ``clips`` seen.
    """
    rng = np.random.default_rng(settings.seed)
    optimizer = torch.optim.SGD(param_groups, lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    steps_per_epoch = int(np.ceil(len(data) / settings.batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps_per_epoch * settings.epochs))
    batch_seconds = compute_seconds = 0.0
    model.train()
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(data))
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            tick = time.perf_counter()
            inputs, labels = data.batch(order[start:start + settings.batch_size], settings.frames, rng, settings.flip)
            tock = time.perf_counter()
            logits = forward(model, inputs)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            compute_seconds += time.perf_counter() - tock
            batch_seconds += tock - tick
            total_loss += float(loss.detach()) * len(labels)
            correct += int((logits.detach().argmax(1) == labels).sum())
        if on_epoch is not None:
            on_epoch(epoch, {"loss": total_loss / len(data), "accuracy": correct / len(data)})
    return {"batch_seconds": batch_seconds, "compute_seconds": compute_seconds, "clips": len(data) * settings.epochs}


@torch.no_grad()
def predict(model: nn.Module, data: ClipData, frames: int, batch_size: int = 32) -> np.ndarray:
    """Class probabilities (n, C) of every clip of ``data`` at the segment centres."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        inputs, _ = data.batch(np.arange(start, min(start + batch_size, len(data))), frames)
        out.append(torch.softmax(forward(model, inputs), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))

"""Shared fixtures: a tiny demo dataset written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from argen.demo.dataset import write_demo_dataset
from argen.params import DemoParams

ROOT = Path(__file__).resolve().parents[1]

#: The smallest demo that still has every class and all five folds.
TINY_DEMO = DemoParams(n_clips=40, image_size=96, n_frames=8, clips_per_subject=4.0)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a tiny demo dataset in DFEW's layout (seed 0)."""
    root = tmp_path_factory.mktemp("demo") / "demo"
    write_demo_dataset(root, TINY_DEMO, seed=0)
    return root


def demo_landmarks(size: int):
    """The demo face model's neutral 68 landmarks (68, 2), placed in a ``size`` x ``size`` image."""
    from argen.demo.face import FaceShape, neutral_landmarks

    return neutral_landmarks(FaceShape())[:, :2] * size * 0.3 + size / 2

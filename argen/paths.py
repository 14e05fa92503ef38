"""Every file and folder the pipeline passes between stages, in one place (relative to the project root).

``dvc.yaml`` names the same paths as the stages' ``deps`` and ``outs``; ``tests/test_paths.py`` checks that
each one here is an output or a dependency there. Folders under ``data/cache`` are outside DVC on purpose:
finished work a killed run resumes from, and timings, which differ from run to run.
"""

from __future__ import annotations

from pathlib import Path

# --- data
DEMO = Path("data/raw/demo")
CLIPS = Path("data/interim/clips.parquet")
DECOMPOSE_SKIPPED = Path("data/interim/decompose_skipped.parquet")
FRAMES = Path("data/interim/aus.parquet")                     # per-frame AUs and landmarks (extract_aus)
AU_CLIPS = Path("data/interim/aus_clips.parquet")             # per-clip AU summary (extract_aus)
EXTRACT_SKIPPED = Path("data/interim/extract_aus_skipped.parquet")
IDENTITIES = Path("data/interim/identities.parquet")
IDENTITY_IMAGES = Path("data/interim/identities")
IDENTITIES_REJECTED = Path("data/interim/identities_rejected.parquet")
KB = Path("data/interim/au_kb.parquet")
KB_SKIPPED = Path("data/interim/au_kb_skipped.parquet")
PROMPTS = Path("data/interim/prompts.parquet")
MOTION_SKIPPED = Path("data/interim/motion_skipped.parquet")
REWARDS = Path("data/interim/rewards.parquet")
REWARD_PAIRS = Path("data/interim/reward_pairs.parquet")
GENERATED = Path("data/generated")
GENERATED_INDEX = GENERATED / "index.parquet"
GENERATED_COUNTS = GENERATED / "counts.json"
ORACLE = Path("data/oracle")
TRACKS = Path("data/interim/tracks")
EVALUATE = Path("data/evaluate")

# --- models
MOTION_MODEL = Path("models/motion")
POLICY = Path("models/policy")
RECOGNIZE_MODELS = Path("models/recognize")

# --- outside DVC's outputs (resumable work, timings)
CACHE = Path("data/cache")
REWARD_SHARDS = CACHE / "reward_shards"
REWARD_TIMINGS = CACHE / "reward_timings.parquet"
GENERATE_WORK = CACHE / "generate"
REWARD_VIDEOS = CACHE / "reward_videos"                    # rewards.keep_videos: PNG strips for raters

# --- reports (each stage's folder)
REPORTS = Path("reports")


def report_dir(stage: str) -> Path:
    """``reports/<stage>``: a stage's metrics, figures and tables."""
    return REPORTS / stage


"""What every dataset adapter produces, and the frame listing and checking they share.

An adapter reads a dataset's own layout and label files and yields :class:`ClipSource` records (where a
clip's frames are, its canonical label, split and subject) or :class:`Skip` records (what was left out and
why). :func:`collect_frames` then lists and checks the frames of every clip the same way for all datasets.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from argen.io import frame_problem, list_frames

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class ClipSource:
    """One clip as an adapter found it, before its frames are listed.

    Attributes:
        clip_id: identifier unique within the dataset (DFEW: the 5-digit name; FERV39k: Scene/Emotion/clip).
        frames_dir: folder holding the clip's frame images.
        label: canonical emotion name (see :mod:`argen.emotions`).
        split: ``train`` or ``test`` for the configured fold or setup.
        subject: subject id when the dataset has one, else None.
        source_label: the label exactly as the dataset wrote it, for tracing.
        facs: CK+ FACS codes as (AU number, intensity) pairs; intensity 0 means "not coded". None elsewhere.
    """

    clip_id: str
    frames_dir: Path
    label: str
    split: str
    subject: str | None
    source_label: str
    facs: tuple[tuple[int, float], ...] | None = None


@dataclass(frozen=True)
class Clip(ClipSource):
    """A clip whose usable frames are listed, in natural order (file names relative to ``frames_dir``)."""

    frames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skip:
    """Something an adapter or the frame check left out, with the reason, recorded in the stage output."""

    item: str
    reason: str


@dataclass
class DatasetIndex:
    """All clips of one dataset configuration, plus everything skipped on the way."""

    clips: list[Clip] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


class DatasetLayoutError(RuntimeError):
    """The dataset root does not have the layout the adapter expects; the message names the missing path."""


def require_path(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`DatasetLayoutError` naming it and ``what`` it is."""
    if not path.exists():
        raise DatasetLayoutError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    return path


def _check_clip(source: ClipSource, verify: bool) -> tuple[Clip | None, list[Skip]]:
    """List and optionally decode-check one clip's frames."""
    if not source.frames_dir.is_dir():
        return None, [Skip(source.clip_id, f"frames folder missing: {source.frames_dir}")]
    names = list_frames(source.frames_dir)
    if not names:
        return None, [Skip(source.clip_id, f"no image frames in {source.frames_dir}")]
    skips: list[Skip] = []
    if verify:
        good = []
        for name in names:
            problem = frame_problem(source.frames_dir / name)
            if problem is None:
                good.append(name)
            else:
                skips.append(Skip(f"{source.clip_id}/{name}", f"frame dropped: {problem}"))
        names = good
    clip = Clip(**source.__dict__, frames=tuple(names))
    return clip, skips


def collect_frames(sources: list[ClipSource], verify: bool, min_frames: int, workers: int = 2) -> DatasetIndex:
    """List the frames of every clip, drop unreadable frames and skip clips left with too few.

    Args:
        sources: clips found by an adapter.
        verify: decode every frame (at 1/8 scale) to catch empty, corrupt or truncated files.
        min_frames: a clip with fewer usable frames than this is skipped, with the reason recorded.
        workers: threads for the frame checks (OpenCV decoding releases the GIL).

    Returns:
        The kept clips in input order, and a skip record for every dropped frame and clip.
    """
    index = DatasetIndex()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda s: _check_clip(s, verify), sources)
        for source, (clip, skips) in tqdm(zip(sources, results), total=len(sources),
                                          desc="checking frames" if verify else "listing frames", unit="clip"):
            index.skips.extend(skips)
            if clip is None:
                continue
            if len(clip.frames) < min_frames:
                index.skips.append(Skip(clip.clip_id, f"only {len(clip.frames)} usable frames (< min_frames "
                                                      f"{min_frames})"))
                continue
            index.clips.append(clip)
    return index

"""What every dataset adapter produces, and the frame listing and checking they share.

An adapter reads a dataset's own layout and label files and yields :class:`ClipSource` records (where a
clip's frames are, its canonical label, split and subject) or :class:`Skip` records (what was left out and
why). :func:`collect_frames` then lists and checks the frames of every clip the same way for all datasets.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from argen.errors import UserError
from argen.io import frame_problem, read_text_lines, scan_frame_folder

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


class DatasetLayoutError(UserError):
    """The dataset root does not have the layout the adapter expects; the message names the missing path."""


def require_path(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise :class:`DatasetLayoutError` naming it and ``what`` it is."""
    if not path.exists():
        raise DatasetLayoutError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    return path


def clip_path(raw: str) -> str:
    """A clip path as a list file wrote it, normalised: ``\\`` read as ``/``, no ``./``, ``//`` or trailing ``/``."""
    return PurePosixPath(raw.replace("\\", "/")).as_posix()


def listed_again(first_line: dict[str, int], clip_id: str, where: str, line: int) -> Skip | None:
    """A skip when ``clip_id`` was listed before in ``where``; else None, and ``line`` is remembered as its first."""
    if clip_id in first_line:
        return Skip(clip_id, f"listed again in {where}, line {line} (first at line {first_line[clip_id]})")
    first_line[clip_id] = line
    return None


def read_lines(path: Path, where: str) -> tuple[list[tuple[int, str]], list[Skip]]:
    """The readable, non-blank lines of a label or list file, and a skip for every line that cannot be read.

    ``where`` names the file in skip records (the path relative to the dataset root). The encoding is
    found as :func:`argen.io.read_text_lines` describes.
    """
    text = read_text_lines(path)
    skips = [Skip(f"{where}:{number}", f"line {number} of {where} cannot be read: {why}")
             for number, why in text.unreadable]
    return [(number, line) for number, line in text.lines if line.strip()], skips


def _normalise_name(name: str) -> str:
    """A header name as the adapters look it up: BOM, quotes and spaces stripped, lower case."""
    return name.replace("\ufeff", "").strip().strip("\"'").strip().lower()


def read_label_csv(path: Path, where: str, required: tuple[str, ...],
                   hint: str) -> tuple[list[str], list[tuple[int, dict[str, str]]], list[Skip]]:
    """Rows of a label CSV with a header line, the same way for every adapter.

    Header names are normalised (`` Video_Name , Label`` reads as ``video_name,label``, BOM or not); the
    delimiter is the first of comma, semicolon and tab found in the header line; values are stripped.
    Blank lines are ignored. A line that cannot be read or parsed, or that has more non-empty fields than
    the header, is a skip naming ``where`` and the line; a missing field reads as an empty value.

    Returns:
        (normalised header, (line number, {column: value}) per row, skips).

    Raises:
        DatasetLayoutError: a ``required`` column is missing; the message names the file, shows the header
            found and adds ``hint``.
    """
    lines, skips = read_lines(path, where)
    if not lines:
        raise DatasetLayoutError(f"{path} is empty: expected a header line ({hint})")
    header_text = lines[0][1]
    delimiter = next((d for d in ",;\t" if d in header_text), ",")
    try:
        header = [_normalise_name(n) for n in next(csv.reader([header_text], delimiter=delimiter))]
    except csv.Error as err:
        raise DatasetLayoutError(f"{path}: the header line {header_text!r} is not valid CSV ({err})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetLayoutError(f"{path}: missing column(s) {', '.join(missing)} in the header line "
                                 f"{header_text.strip()!r} ({hint})")
    rows = []
    for number, text in lines[1:]:
        try:
            values = [v.strip() for v in next(csv.reader([text], delimiter=delimiter))]
        except csv.Error as err:
            skips.append(Skip(f"{where}:{number}", f"line {number} of {where} is not valid CSV ({err})"))
            continue
        if any(values[len(header):]):
            skips.append(Skip(f"{where}:{number}", f"line {number} of {where} has {len(values)} fields, the "
                                                   f"header {len(header)}: {text.strip()!r}"))
            continue
        rows.append((number, {name: values[k] if k < len(values) else "" for k, name in enumerate(header)}))
    return header, rows, skips


def _check_clip(source: ClipSource, verify: bool) -> tuple[Clip | None, list[Skip]]:
    """List a clip's folder (recording every entry that is not a frame) and optionally check each frame."""
    if not source.frames_dir.is_dir():
        what = "is not a folder" if source.frames_dir.exists() else "missing"
        return None, [Skip(source.clip_id, f"frames folder {what}: {source.frames_dir}")]
    try:
        names, others = scan_frame_folder(source.frames_dir)
    except OSError as err:
        return None, [Skip(source.clip_id, f"frames folder unreadable ({err.strerror}): {source.frames_dir}")]
    skips = [Skip(f"{source.clip_id}/{name}", f"not a frame: {reason}") for name, reason in others]
    if verify:
        good = []
        for name in names:
            problem = frame_problem(source.frames_dir / name)
            if problem is None:
                good.append(name)
            else:
                skips.append(Skip(f"{source.clip_id}/{name}", f"frame dropped: {problem}"))
        names = good
    if not names:
        return None, skips + [Skip(source.clip_id, f"no usable image frames in {source.frames_dir}")]
    return Clip(**source.__dict__, frames=tuple(names)), skips


#: Below this many clips frames are checked in this process: starting the workers (about a second) would
#: cost more than it saves (the 600-clip demo checks its 9600 frames in about a second).
PARALLEL_MIN_CLIPS = 1000


def collect_frames(sources: list[ClipSource], verify: bool, min_frames: int, workers: int = 2) -> DatasetIndex:
    """List the frames of every clip, drop unreadable frames and skip clips left with too few.

    Args:
        sources: clips found by an adapter.
        verify: decode every frame (at 1/8 scale) to catch empty, truncated, corrupt or non-image files.
        min_frames: a clip with fewer usable frames than this is skipped, with the reason recorded.
        workers: processes for the frame checks, used from :data:`PARALLEL_MIN_CLIPS` clips on (each
            process captures its own decoder warnings, see :func:`argen.io.decode_frame`).

    Returns:
        The kept clips in input order, and a skip record for every dropped entry, frame and clip.
    """
    check = partial(_check_clip, verify=verify)
    index = DatasetIndex()
    with contextlib.ExitStack() as stack:
        if verify and workers > 1 and len(sources) >= PARALLEL_MIN_CLIPS:
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            results = pool.map(check, sources, chunksize=16)
        else:
            results = map(check, sources)
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

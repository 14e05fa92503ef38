"""The extract_aus stage's logic: choose the clips, decode each frame once, run the backend in parallel.

Each worker process builds its backend once (dlib models load once per process), decodes a clip's
frames a single time (dropping, with the reason recorded, frames that do not decode cleanly or whose size
differs from the clip's), computes the image-quality figures the identity stage needs (paper eq. 22, 25, 26
on the grey frame), and hands the decoded frames to the backend. Workers are spawned, not forked: a
fork taken while OpenCV's or dlib's threads hold a lock can hang the child.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.extract import AUBackend
from argen.extract.cache import cache_root, content_keys
from argen.extract.landmarks import LandmarkAUBackend
from argen.extract.openface import CsvBackend, OpenFaceBackend, OpenFaceError
from argen.io import decode_frame
from argen.params import ExtractAUsParams

log = logging.getLogger(__name__)

QUALITY_COLUMNS: tuple[str, ...] = ("sharpness", "brightness", "contrast", "img_w", "img_h")
PURPOSES: tuple[str, ...] = ("identity", "knowledge", "sample")


def make_backend(params: ExtractAUsParams) -> AUBackend:
    """The backend ``extract_aus.backend`` names; a missing binary or folder fails here, before any work."""
    if params.backend == "openface":
        return OpenFaceBackend(params.openface_bin, au_static=params.au_static, timeout_s=params.openface_timeout_s,
                               model=params.openface_model, extra_args=params.openface_args)
    if params.backend == "csv":
        return CsvBackend(params.csv_dir)
    return LandmarkAUBackend(reference=params.reference, smooth_frames=params.smooth_frames,
                             neutral_bounds=params.neutral_bounds)


def select_clips(clips: pd.DataFrame, params: ExtractAUsParams, seed: int) -> pd.DataFrame:
    """The clips later stages need, each with the list of purposes it serves.

    ``identity``: identity sources (neutral clips of D*_ns); ``knowledge``: scarce clips of ``splits``
    for the AU knowledge base; ``sample``: up to ``sample_per_class`` clips per class of ``splits``
    (seeded; ``all``: every clip of ``splits``) for the motion model's training tracks and the warp's AU-to-landmark model.
    """
    in_splits = clips.split.isin(params.splits)
    purposes = {cid: [] for cid in clips.clip_id}
    for cid in clips.clip_id[clips.identity_source]:
        purposes[cid].append("identity")
    for cid in clips.clip_id[clips.scarce & in_splits]:
        purposes[cid].append("knowledge")
    pool = clips[in_splits]
    for _, group in pool.groupby("label", sort=True):
        count = len(group) if params.sample_per_class == "all" else min(params.sample_per_class, len(group))
        take = group.sample(n=count, random_state=seed)
        for cid in take.clip_id:
            purposes[cid].append("sample")
    chosen = clips[[bool(purposes[c]) for c in clips.clip_id]].copy()
    chosen["purposes"] = [purposes[c] for c in chosen.clip_id]
    return chosen.reset_index(drop=True)


def selection_summary(clips: pd.DataFrame, params: ExtractAUsParams) -> str:
    """What :func:`select_clips` had to choose from, to explain an empty selection."""
    splits = ", ".join(sorted(set(clips.split))) or "none"
    return (f"{len(clips)} clips (splits: {splits}), {int(clips.identity_source.sum())} identity sources "
            f"(decompose.identity_splits), {int(clips.split.isin(params.splits).sum())} clips in "
            f"extract_aus.splits {params.splits}, extract_aus.sample_per_class {params.sample_per_class}")


def quality_figures(image: np.ndarray) -> tuple[float, float, float]:
    """Sharpness (variance of the Laplacian, eq. 22), brightness (mean, eq. 25), contrast (std, eq. 26)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    mean, std = cv2.meanStdDev(grey)
    return sharpness, float(mean[0, 0]), float(std[0, 0])


@dataclass(frozen=True)
class ClipJob:
    """One clip to process: where its frames are and which files, in order."""

    clip_id: str
    frames_dir: str
    frames: tuple[str, ...]


_worker_backend: AUBackend | None = None


def _init_worker(params: ExtractAUsParams) -> None:
    global _worker_backend
    cv2.setNumThreads(1)
    _worker_backend = make_backend(params)


def clip_frame_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The (width, height) most of a clip's frames have; on a tie, the one met first."""
    counts = Counter(sizes)
    return next(size for size in sizes if counts[size] == max(counts.values()))


def decode_clip(job: ClipJob) -> tuple[list[int], list[np.ndarray], list[tuple[str, str]]]:
    """Decode a clip's frames once; keep those that decode cleanly and have the clip's frame size.

    Frames of another size are dropped, not resized: landmarks are smoothed over time and the AUs read
    against the clip's own neutral frames, which only holds within one image geometry.

    Returns:
        (indices of the kept frames in ``job.frames``, their BGR images, (item, reason) of every dropped frame).
    """
    folder = Path(job.frames_dir)
    decoded, skips = [], []
    for index, name in enumerate(job.frames):
        image, problem = decode_frame(folder / name)
        if problem is None:
            decoded.append((index, image))
        else:
            skips.append((f"{job.clip_id}/{name}", f"frame dropped: {problem}"))
    if not decoded:
        return [], [], skips
    width, height = clip_frame_size([(image.shape[1], image.shape[0]) for _, image in decoded])
    kept = []
    for index, image in decoded:
        if image.shape[:2] == (height, width):
            kept.append((index, image))
        else:
            skips.append((f"{job.clip_id}/{job.frames[index]}",
                          f"frame dropped: {image.shape[1]}x{image.shape[0]} px where the clip's frames are "
                          f"{width}x{height} px"))
    return [index for index, _ in kept], [image for _, image in kept], skips


def process_clip(job: ClipJob, backend: AUBackend) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    """Decode a clip's frames once (:func:`decode_clip`), measure their quality and run the backend.

    Row ``frame`` is the frame's index in the clip's frame list (``job.frames``), dropped frames included.

    Returns:
        The rows of the kept frames (None when no frame is left or the backend failed on the clip) and the
        (item, reason) skips.
    """
    indices, images, skips = decode_clip(job)
    if not indices:
        return None, skips + [(job.clip_id, "no usable frame")]
    folder, names = Path(job.frames_dir), [job.frames[i] for i in indices]
    try:
        if isinstance(backend, CsvBackend):  # the CSV numbers every frame of the clip's list
            rows = backend.process_clip(job.clip_id, folder, list(job.frames), [])
            rows = rows[rows.frame.isin(indices)].reset_index(drop=True)
        else:
            rows = backend.process_clip(job.clip_id, folder, names, images)
            rows["frame"] = indices
    except OpenFaceError as err:
        return None, skips + [(job.clip_id, str(err))]
    quality = [(*quality_figures(image), image.shape[1], image.shape[0]) for image in images]
    rows[list(QUALITY_COLUMNS)] = np.asarray(quality, dtype=float)
    return rows, skips


def _process_in_worker(job: ClipJob) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    assert _worker_backend is not None
    return process_clip(job, _worker_backend)


def cache_tag(params: ExtractAUsParams) -> str:
    """What a cached clip result depends on: the backend's settings and the extraction code."""
    digest = hashlib.sha1(params.model_dump_json(exclude={"splits", "sample_per_class", "workers"}).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")) + [Path(__file__).parents[1] / "face.py"]:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _as_clip(outcome: tuple[pd.DataFrame | None, list[tuple[str, str]]], clip_id: str
             ) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    """A (possibly cached) clip outcome relabelled as clip ``clip_id``.

    The cache is keyed by content, so a result may have been computed under another clip's id (an
    oversampled copy ``c~os0`` of training clip ``c``, a duplicate clip in a real dataset): its rows and its
    skip items (``<id>`` or ``<id>/<frame>``) are renamed to the clip asking for them.
    """
    rows, skips = outcome
    if rows is not None and len(rows):
        made_as = str(rows.clip_id.iloc[0])
    elif skips:
        made_as = skips[-1][0]  # a clip without rows ends with the clip-level skip, named by its id alone
    else:
        return outcome
    if made_as == clip_id:
        return outcome
    renamed = [(clip_id + item[len(made_as):] if item == made_as or item.startswith(made_as + "/") else item,
                reason) for item, reason in skips]
    return (rows.assign(clip_id=clip_id) if rows is not None else None), renamed


def extract(chosen: pd.DataFrame, params: ExtractAUsParams, cache_dir: Path | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the backend over the chosen clips on ``params.workers`` processes.

    Args:
        cache_dir: keep each clip's result (before the backend's ``finalize``, which sees all clips
            together) under this folder, keyed by ``chosen.content_key`` and :func:`cache_tag`, and reuse it:
            a clip is processed once whatever set, fold or clip id it appears under. Ignored for a backend
            whose rows depend on more than the frames (``reads_only_frames`` false: the csv backend).

    Returns:
        (per-frame rows of every processed clip in clip order, skipped items with reasons).
    """
    backend = make_backend(params)  # fail fast (missing OpenFace binary or CSV folder) before forking
    jobs = [ClipJob(r.clip_id, r.frames_dir, tuple(r.frames)) for r in chosen.itertuples()]
    cached = [None] * len(jobs)
    if cache_dir is not None and not backend.reads_only_frames:
        log.info("the %s backend reads files the frames' content key does not cover: no extraction cache",
                 backend.name)
        cache_dir = None
    if cache_dir is not None:
        folder = cache_dir / cache_tag(params)
        folder.mkdir(parents=True, exist_ok=True)
        files = [folder / f"{key}.pkl" for key in chosen.content_key]
        cached = [pd.read_pickle(f) if f.is_file() else None for f in files]
    todo = [k for k, outcome in enumerate(cached) if outcome is None]
    progress = dict(total=len(todo), desc=f"extracting AUs ({params.backend})", unit="clip")
    if len(jobs) > len(todo):
        log.info("%d of %d clips found in the extraction cache", len(jobs) - len(todo), len(jobs))
    if params.workers == 1 or len(todo) <= 1:
        fresh = list(tqdm((process_clip(jobs[k], backend) for k in todo), **progress))
    else:
        with ProcessPoolExecutor(max_workers=params.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(params,)) as pool:
            fresh = list(tqdm(pool.map(_process_in_worker, [jobs[k] for k in todo], chunksize=4), **progress))
    for k, outcome in zip(todo, fresh):
        cached[k] = outcome
        if cache_dir is not None:
            tmp = files[k].with_name(f".{files[k].name}.{os.getpid()}.tmp")
            pd.to_pickle(outcome, tmp)
            os.replace(tmp, files[k])
    parts, skips = [], []
    for job, outcome in zip(jobs, cached):
        rows, clip_skips = _as_clip(outcome, job.clip_id)
        skips.extend(clip_skips)
        if rows is not None:
            parts.append(rows)
    frames = backend.finalize(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()
    return frames, pd.DataFrame(skips, columns=["item", "reason"])


def extract_cached(table: pd.DataFrame, params: ExtractAUsParams, desc: str = "hashing"
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """:func:`extract` through the shared extraction cache (:mod:`argen.extract.cache`).

    Returns:
        (``table`` with its ``content_key`` column, per-frame rows, skipped items).
    """
    keyed = table.assign(content_key=content_keys(table, desc))
    frames, skips = extract(keyed, params, cache_root() / "tracks")
    return keyed, frames, skips

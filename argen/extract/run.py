"""The extract_aus stage's logic: choose the clips, decode each frame once, run the backend in parallel.

Each worker process builds its backend once (dlib models load once per process), decodes a clip's
frames a single time, computes the image-quality figures the identity stage needs (paper eq. 22, 25, 26
on the grey frame), and hands the decoded frames to the backend. Workers are spawned, not forked: a
fork taken while OpenCV's or dlib's threads hold a lock can hang the child.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from argen.extract import AUBackend
from argen.extract.landmarks import LandmarkAUBackend
from argen.extract.openface import CsvBackend, OpenFaceBackend, OpenFaceError
from argen.params import ExtractAUsParams

log = logging.getLogger(__name__)

QUALITY_COLUMNS: tuple[str, ...] = ("sharpness", "brightness", "contrast", "img_w", "img_h")
PURPOSES: tuple[str, ...] = ("identity", "knowledge", "sample")


def make_backend(params: ExtractAUsParams) -> AUBackend:
    """The backend ``extract_aus.backend`` names; a missing binary or folder fails here, before any work."""
    if params.backend == "openface":
        return OpenFaceBackend(params.openface_bin, au_static=params.au_static)
    if params.backend == "csv":
        return CsvBackend(params.csv_dir)
    return LandmarkAUBackend(reference=params.reference, smooth_frames=params.smooth_frames)


def select_clips(clips: pd.DataFrame, params: ExtractAUsParams, seed: int) -> pd.DataFrame:
    """The clips later stages need, each with the list of purposes it serves.

    ``identity``: identity sources (neutral clips of D*_ns); ``knowledge``: scarce clips of ``splits``
    for the AU knowledge base; ``sample``: up to ``sample_per_class`` clips per class of ``splits``
    (seeded) for the generator's AU-to-landmark model.
    """
    in_splits = clips.split.isin(params.splits)
    purposes = {cid: [] for cid in clips.clip_id}
    for cid in clips.clip_id[clips.identity_source]:
        purposes[cid].append("identity")
    for cid in clips.clip_id[clips.scarce & in_splits]:
        purposes[cid].append("knowledge")
    pool = clips[in_splits]
    for _, group in pool.groupby("label", sort=True):
        take = group.sample(n=min(params.sample_per_class, len(group)), random_state=seed)
        for cid in take.clip_id:
            purposes[cid].append("sample")
    chosen = clips[[bool(purposes[c]) for c in clips.clip_id]].copy()
    chosen["purposes"] = [purposes[c] for c in chosen.clip_id]
    return chosen.reset_index(drop=True)


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


def process_clip(job: ClipJob, backend: AUBackend) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    """Decode a clip's frames once, measure their quality and run the backend.

    Returns:
        The clip's rows (None when the backend failed on it) and the (item, reason) skips.
    """
    folder = Path(job.frames_dir)
    images, names, quality, skips = [], [], [], []
    for name in job.frames:
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None:
            skips.append((f"{job.clip_id}/{name}", "frame dropped: cannot be decoded"))
            continue
        images.append(image)
        names.append(name)
        quality.append((*quality_figures(image), image.shape[1], image.shape[0]))
    if not images:
        return None, skips + [(job.clip_id, "no decodable frame")]
    try:
        rows = backend.process_clip(job.clip_id, folder, names, images)
    except OpenFaceError as err:
        return None, skips + [(job.clip_id, str(err))]
    rows[list(QUALITY_COLUMNS)] = np.asarray(quality, dtype=float)
    return rows, skips


def _process_in_worker(job: ClipJob) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    assert _worker_backend is not None
    return process_clip(job, _worker_backend)


def extract(chosen: pd.DataFrame, params: ExtractAUsParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the backend over the chosen clips on ``params.workers`` processes.

    Returns:
        (per-frame rows of every processed clip in clip order, skipped items with reasons).
    """
    backend = make_backend(params)  # fail fast (missing OpenFace binary or CSV folder) before forking
    jobs = [ClipJob(r.clip_id, r.frames_dir, tuple(r.frames)) for r in chosen.itertuples()]
    parts, skips = [], []
    progress = dict(total=len(jobs), desc=f"extracting AUs ({params.backend})", unit="clip")
    if params.workers == 1:
        results = (process_clip(job, backend) for job in jobs)
        outcomes = list(tqdm(results, **progress))
    else:
        with ProcessPoolExecutor(max_workers=params.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(params,)) as pool:
            outcomes = list(tqdm(pool.map(_process_in_worker, jobs, chunksize=4), **progress))
    for rows, clip_skips in outcomes:
        skips.extend(clip_skips)
        if rows is not None:
            parts.append(rows)
    frames = backend.finalize(pd.concat(parts, ignore_index=True)) if parts else pd.DataFrame()
    return frames, pd.DataFrame(skips, columns=["item", "reason"])

"""The shared extraction cache: where a clip's AU-backend result is kept, keyed by the clip's frame bytes.

``extract_aus`` (the dataset's chosen clips), ``tracks`` (every clip set the recognisers read) and
``evaluate`` extract through one cache (:func:`argen.extract.run.extract_cached`), so a clip is processed
once whatever stage, set, fold or clip id it appears under. It lives under ``$ARGEN_CACHE`` (default
``data/cache``): a ``dvc queue`` or ``dvc exp run --temp`` experiment runs in a temporary copy of the
project, and a shared ``ARGEN_CACHE`` lets every experiment reuse one extraction.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm


def shared_cache() -> Path:
    """``$ARGEN_CACHE`` (default ``data/cache``): what experiments may share, outside DVC's outputs."""
    return Path(os.environ.get("ARGEN_CACHE", "data/cache"))


def cache_root() -> Path:
    """The caches' top folder, ``$ARGEN_CACHE/recognition`` (default ``data/cache/recognition``): the AU
    backend's results under ``tracks/``, the recognisers' decoded clips beside them."""
    return shared_cache() / "recognition"


def cached_array(kind: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()``, kept as ``$ARGEN_CACHE/encoders/<kind>/<key>.npy``; ``key`` must be a digest of everything
    that determines the array, so that a hit returns exactly the bytes ``compute`` would. Written atomically
    (parallel processes, a killed run); an unreadable entry is computed and written again."""
    path = shared_cache() / "encoders" / kind / key[:2] / f"{key}.npy"
    if path.is_file():
        try:
            return np.load(path)
        except (OSError, ValueError):
            pass
    array = compute()
    save_array(path, array)
    return array


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a temporary file beside ``path``, then renamed: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def content_key(frames_dir: str | Path, frames: list[str]) -> str:
    """SHA-1 of a clip's frame names and bytes (a missing file counts as its name and 'missing')."""
    digest = hashlib.sha1()
    for name in frames:
        digest.update(name.encode() + b"\0")
        path = Path(frames_dir) / name
        digest.update(path.read_bytes() if path.is_file() else b"missing")
        digest.update(b"\0")
    return digest.hexdigest()


def content_keys(table: pd.DataFrame, desc: str = "hashing") -> list[str]:
    """:func:`content_key` of every row (``frames_dir``, ``frames``) of a clip table: all of each clip's frames,
    since the generated clips of one identity share frame 1 and a key of that frame alone would collide."""
    return [content_key(row.frames_dir, list(row.frames))
            for row in tqdm(table.itertuples(), total=len(table), desc=desc, unit="clip")]

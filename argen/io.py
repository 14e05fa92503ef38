"""File helpers shared by every stage: atomic outputs, natural frame order, frame checks, Parquet tables.

A stage never leaves a half-written output behind: files and folders are written under a temporary name
beside their target and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from natsort import natsorted

#: Image suffixes accepted as video frames.
FRAME_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def list_frames(folder: Path) -> list[str]:
    """File names of the image frames in ``folder``, in natural order (``2.jpg`` before ``10.jpg``)."""
    names = [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
    return natsorted(names)


def frame_problem(path: Path) -> str | None:
    """Why the frame at ``path`` cannot be used, or None when it decodes.

    Decoding runs at 1/8 scale (fast for JPEG) since only readability is in question. A JPEG without its
    end-of-image marker is reported as truncated, because OpenCV returns a grey-padded image for it.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        return f"unreadable file ({err.strerror})"
    if data.size == 0:
        return "empty file"
    if path.suffix.lower() in {".jpg", ".jpeg"} and b"\xff\xd9" not in data[-64:].tobytes():
        return "truncated JPEG (no end-of-image marker)"
    if cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
        return "not a decodable image"
    return None


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it onto ``target``, on error delete it.

    Works for a file or a folder written at the yielded path. An existing ``target`` is replaced.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_parquet(frame: pd.DataFrame, path: Path | str, schema: pa.Schema | None = None,
                  metadata: dict[str, str] | None = None) -> None:
    """Write ``frame`` atomically as Parquet, with an explicit ``schema`` and key-value ``metadata``.

    The metadata (for example the backend and params that produced the table) is stored in the Parquet
    footer and read back by :func:`read_parquet_metadata`.
    """
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({f"argen.{k}".encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet_metadata(path: Path | str) -> dict[str, str]:
    """The ``argen.*`` key-value metadata stored by :func:`write_parquet`, without the prefix."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode()[len("argen."):]: v.decode() for k, v in raw.items() if k.startswith(b"argen.")}


def write_json(obj: object, path: Path | str) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")

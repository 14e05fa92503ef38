"""File helpers shared by every stage: atomic outputs, input tables, text files, frame folders, frame checks.

* Outputs: a stage writes all its outputs through :func:`staged_outputs` (or, for a single file,
  :func:`atomic_path`, :func:`write_parquet`, :func:`write_json`): each is written under a temporary name
  beside its target, and all are moved into place together once the last one is complete. A stage that
  fails leaves its previous outputs as they were.
* Inputs: :func:`read_table` reads an upstream Parquet output and :func:`read_text_lines` a label or list
  file in whatever encoding it comes; both raise :class:`~argen.errors.InputError` naming the file.
* Frames: :func:`scan_frame_folder` accounts for every entry of a frame folder and :func:`decode_frame`
  judges a frame by decoding it, decoder warnings included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from natsort import natsorted

from argen.errors import InputError

log = logging.getLogger(__name__)

#: Image suffixes accepted as video frames.
FRAME_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


# --- Outputs ---------------------------------------------------------------------------------------------

class StagedOutputs:
    """Outputs written under temporary names, moved onto their targets together by :func:`staged_outputs`."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def path(self, target: Path | str) -> Path:
        """A temporary path beside ``target`` to write a file or a folder at."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
        self._pending.append((tmp, target))
        return tmp

    def parquet(self, frame: pd.DataFrame, target: Path | str, schema: pa.Schema | None = None,
                metadata: dict[str, str] | None = None) -> None:
        """Stage ``frame`` as Parquet with an explicit ``schema`` and ``argen.*`` key-value ``metadata``.

        The metadata (for example the backend and params that produced the table) is stored in the Parquet
        footer and read back by :func:`read_parquet_metadata`.
        """
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        if metadata:
            merged = dict(table.schema.metadata or {})
            merged.update({f"argen.{k}".encode(): v.encode() for k, v in metadata.items()})
            table = table.replace_schema_metadata(merged)
        pq.write_table(table, self.path(target))

    def json(self, obj: object, target: Path | str) -> None:
        """Stage ``obj`` as indented JSON."""
        self.path(target).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")

    def commit(self) -> None:
        """Move every staged output onto its target, replacing what was there."""
        for tmp, target in self._pending:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(tmp, target)

    def discard(self) -> None:
        """Delete the temporary folders (empty after a commit)."""
        for tmp, _ in self._pending:
            shutil.rmtree(tmp.parent, ignore_errors=True)


@contextlib.contextmanager
def staged_outputs() -> Iterator[StagedOutputs]:
    """Stage several outputs and move them into place together when the block ends without an error.

    On an error nothing is moved: the previous outputs stay as they were and the temporary files go.
    """
    staged = StagedOutputs()
    try:
        yield staged
        staged.commit()
    finally:
        staged.discard()


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it onto ``target``, on error delete it."""
    with staged_outputs() as staged:
        yield staged.path(target)


def write_parquet(frame: pd.DataFrame, path: Path | str, schema: pa.Schema | None = None,
                  metadata: dict[str, str] | None = None) -> None:
    """Write ``frame`` atomically as Parquet (see :meth:`StagedOutputs.parquet`)."""
    with staged_outputs() as staged:
        staged.parquet(frame, path, schema, metadata)


def write_json(obj: object, path: Path | str) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with staged_outputs() as staged:
        staged.json(obj, path)


def read_parquet_metadata(path: Path | str) -> dict[str, str]:
    """The ``argen.*`` key-value metadata stored by :meth:`StagedOutputs.parquet`, without the prefix."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode()[len("argen."):]: v.decode() for k, v in raw.items() if k.startswith(b"argen.")}


# --- Inputs ----------------------------------------------------------------------------------------------

def read_table(path: Path | str, columns: Sequence[str], made_by: str) -> pd.DataFrame:
    """Read an upstream stage's Parquet output, checking that it has ``columns``.

    Raises:
        InputError: the file is missing (run ``made_by`` first), is not Parquet, or lacks a column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} not found: run the {made_by} stage first (dvc repro {made_by})")
    try:
        table = pd.read_parquet(path)
    except (OSError, pa.ArrowException) as err:
        raise InputError(f"{path} is not a readable Parquet file ({err}): run `dvc repro {made_by}` again") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}: it was not written by this version of "
                         f"the {made_by} stage; run `dvc repro {made_by}` again")
    return table


#: Byte-order marks and the codec each announces, longest first (UTF-32's LE mark starts like UTF-16's).
_BOMS: tuple[tuple[bytes, str], ...] = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                                        (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                                        (b"\xfe\xff", "utf-16-be"))

#: Codec of a file without a byte-order mark whose lines are not UTF-8 (Windows' Western European).
FALLBACK_ENCODING = "cp1252"


@dataclass
class TextLines:
    """A text file's lines (1-based number, text without the line break) and its unreadable lines (number, why)."""

    lines: list[tuple[int, str]] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(default_factory=list)


def _bom_less_utf16(data: bytes) -> str | None:
    """``utf-16-le``/``-be`` when NUL bytes fill most odd/even positions (UTF-16 text without a BOM), else None."""
    head = data[:4096]
    even, odd = head[0::2], head[1::2]
    if not odd:
        return None
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def read_text_lines(path: Path | str) -> TextLines:
    """Read a label or list file in the encoding it was written in.

    Lines end with LF, CRLF or a lone CR (old Mac files). A byte-order mark picks UTF-8, UTF-16 or UTF-32
    (UTF-16 without a mark is recognised by its NUL bytes); a line that does not decode in that codec is
    unreadable. Without a mark each line is read as UTF-8, and
    a line that is not UTF-8 as :data:`FALLBACK_ENCODING` (logged as a warning naming the file and lines);
    a line that is neither is unreadable. Callers record unreadable lines as skips naming file and line.

    Raises:
        InputError: the file cannot be read at all (the message names it and says why).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    bom, codec = next(((b, c) for b, c in _BOMS if data.startswith(b)), (b"", _bom_less_utf16(data)))
    result = TextLines()
    if codec is not None:
        why = f"not valid {codec}" + (" (the codec its byte-order mark announces)" if bom else "")
        for number, line in enumerate(re.split(r"\r\n|\r|\n", data[len(bom):].decode(codec, "replace")), start=1):
            if "\ufffd" in line:
                result.unreadable.append((number, why))
            else:
                result.lines.append((number, line))
        return result
    fallback = []
    for number, raw in enumerate(re.split(rb"\r\n|\r|\n", data), start=1):
        for encoding in ("utf-8", FALLBACK_ENCODING):
            try:
                result.lines.append((number, raw.decode(encoding)))
            except UnicodeDecodeError:
                continue
            if encoding != "utf-8":
                fallback.append(number)
            break
        else:
            result.unreadable.append((number, f"neither UTF-8 nor {FALLBACK_ENCODING}"))
    if fallback:
        log.warning("%s is not UTF-8: read line(s) %s as %s", path, _shown(fallback), FALLBACK_ENCODING)
    return result


def _shown(numbers: list[int], limit: int = 10) -> str:
    """Line numbers for a message: the first ``limit`` and how many more."""
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return ", ".join(str(n) for n in numbers[:limit]) + more


# --- Frames ----------------------------------------------------------------------------------------------

def printable_name(name: str) -> str:
    """``name`` with bytes that are not UTF-8 (kept by Python as lone surrogates) written as escapes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _not_a_frame(entry: os.DirEntry) -> str | None:
    """Why a folder entry is not a frame, or None when it is a candidate frame."""
    if entry.name.startswith("."):
        return "hidden file"
    if printable_name(entry.name) != entry.name:
        return "file name is not valid UTF-8"
    if entry.is_dir():
        return "a folder"
    if not entry.is_file():
        return (f"broken symbolic link (to {os.readlink(entry.path)})" if entry.is_symlink()
                else "not a regular file")
    suffix = Path(entry.name).suffix
    if suffix.lower() not in FRAME_SUFFIXES:
        return f"not an image suffix ({suffix or 'none'}; frames are {', '.join(sorted(FRAME_SUFFIXES))})"
    return None


def scan_frame_folder(folder: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Every entry of a frame folder: the candidate frame files, and the others with why they are not frames.

    Both lists are in natural order (``2.jpg`` before ``10.jpg``). Hidden files, sub-folders, broken links,
    entries that cannot be inspected (a symbolic-link loop) and files without an image suffix are not
    frames; they are returned so that callers can record them, and never cost the clip its other frames.
    """
    frames, others = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                reason = _not_a_frame(entry)
            except OSError as err:  # e.g. two symbolic links pointing at each other: this entry only is lost
                reason = f"unreadable entry ({err.strerror or err})"
            if reason is None:
                frames.append(entry.name)
            else:
                others.append((printable_name(entry.name), reason))
    return natsorted(frames), natsorted(others)


def list_frames(folder: Path) -> list[str]:
    """File names of the image frames in ``folder``, in natural order."""
    return scan_frame_folder(folder)[0]


#: Decoder messages about metadata only (colour profile, text chunks, JFIF version): the pixels are intact.
BENIGN_DECODER_MESSAGES = re.compile(r"libpng warning: (iCCP|sRGB|cHRM|gAMA|tEXt|zTXt|iTXt|tIME|pHYs)|"
                                     r"unknown JFIF revision", re.IGNORECASE)

#: File signatures, to name what a file holds whatever its suffix.
_SIGNATURES: tuple[tuple[bytes, str], ...] = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"),
                                              (b"BM", "BMP"))

_stderr_lock = threading.Lock()
_stderr_sinks: dict[int, BinaryIO] = {}


def _stderr_sink() -> BinaryIO:
    """This process's temporary file for captured stderr, emptied (kept by process id: a child opens its own)."""
    sink = _stderr_sinks.get(os.getpid())
    if sink is None:
        sink = _stderr_sinks[os.getpid()] = tempfile.TemporaryFile()
    sink.seek(0)
    sink.truncate()
    return sink


def _imread_with_messages(path: Path, flags: int) -> tuple[np.ndarray | None, list[str]]:
    """``cv2.imread`` and the lines the image decoders printed meanwhile.

    libjpeg and libpng report damaged data as warnings printed to the C-level stderr (file descriptor 2) and
    still return an image (grey where data is missing), so fd 2 is pointed at a temporary file during the
    decode. The redirection is process-wide: a lock serialises decodes within the process, and anything
    another thread prints meanwhile would be captured too, so frames are checked from the main thread or
    from worker processes (:func:`argen.datasets.base.collect_frames`, :mod:`argen.extract.run`).
    """
    with _stderr_lock:
        sink = _stderr_sink()
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            image = cv2.imread(str(path), flags)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        printed = sink.read().decode("utf-8", errors="replace")
    return image, [line.strip() for line in printed.splitlines() if line.strip()]


def decode_frame(path: Path, flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray | None, str | None]:
    """Decode the frame at ``path``: (image, None), or (None, why the frame cannot be used).

    A frame is judged by its content, not its name or last bytes: a PNG named ``.jpg`` or a JPEG with
    padding after its end marker is fine; an unreadable, empty or undecodable file is not, nor is one whose
    decoder reported damaged data ("Premature end of JPEG file", "Corrupt JPEG data: ...", libpng errors),
    whose message is the reason given. Messages about metadata only (:data:`BENIGN_DECODER_MESSAGES`) are
    not held against a frame.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as err:
        return None, f"unreadable file ({err.strerror or err})"
    if not head:
        return None, "empty file"
    kind = next((name for signature, name in _SIGNATURES if head.startswith(signature)), "image")
    image, messages = _imread_with_messages(path, flags)
    damage = [m for m in messages if not BENIGN_DECODER_MESSAGES.search(m)]
    if damage:
        return None, f"damaged {kind} data (decoder: {'; '.join(damage)})"
    if image is None:
        return None, f"{kind} data cannot be decoded" if kind != "image" else "not a decodable image"
    return image, None


def frame_problem(path: Path) -> str | None:
    """Why the frame at ``path`` cannot be used, or None; decodes at 1/8 scale (fast for JPEG) in grey."""
    return decode_frame(path, cv2.IMREAD_REDUCED_GRAYSCALE_8)[1]

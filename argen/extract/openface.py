"""The ``openface`` and ``csv`` AU backends: OpenFace 2.x FeatureExtraction and the CSVs it writes.

OpenFace is run as a subprocess with an argument list (no shell)::

    FeatureExtraction -fdir <frames> -out_dir <tmp> -aus -2Dfp -pose [-au_static] -q

With ``-fdir`` OpenFace orders images by file name and writes timestamp 0, so the project links the
clip's frames, in its own natural order, into a temporary folder as ``000001.jpg, 000002.jpg, ...``: row
``frame`` k of the CSV is then frame k - 1 of the clip, whatever OpenFace's sort. ``-au_static`` turns
off OpenFace's person-specific calibration, which assumes long, mostly neutral videos; use it for short
or generated clips.

The CSV starts ``frame, face_id, timestamp, confidence, success`` (older builds separate names with
``", "``; names are stripped). Rows with ``success == 1`` keep their landmarks and AUs; others become
failed rows. With several faces in a frame, the most confident one is kept.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from argen.aus import INTENSITY_COLUMNS, MAX_INTENSITY
from argen.errors import InputError, UserError
from argen.extract import BOX_COLUMNS, LANDMARK_COLUMNS, empty_rows
from argen.io import read_text_lines

INSTALL_HINT = ("build OpenFace 2.x (github.com/TadasBaltrusaitis/OpenFace, wiki 'Unix Installation') and set "
                "extract_aus.openface_bin to its FeatureExtraction binary, or use extract_aus.backend: landmarks "
                "(CPU, no OpenFace needed) or csv (OpenFace CSVs you computed elsewhere)")


class OpenFaceError(UserError):
    """OpenFace is missing, failed, or wrote a CSV that cannot be read; the message says which and why.

    On one clip it becomes that clip's recorded skip (:func:`argen.extract.run.process_clip`); only a missing
    binary or CSV folder stops the stage.
    """


#: Numeric columns the project reads, with the condition every value must meet and what that means.
_COLUMN_RULES: tuple[tuple[str, str], ...] = (
    ("frame", "a frame number (an integer >= 1)"), ("success", "0 or 1"), ("confidence", "a finite number"),
    *((au, "an intensity from 0 to 5") for au in INTENSITY_COLUMNS),
    *((c, "a finite coordinate") for c in LANDMARK_COLUMNS),
)


def _meets_rule(column: str, values: pd.Series) -> pd.Series:
    """Where ``values`` (numbers, NaN where the CSV held none) meet ``column``'s rule in :data:`_COLUMN_RULES`."""
    if column == "frame":
        return (values >= 1) & (values % 1 == 0)
    if column == "success":
        return values.isin([0, 1])
    if column in INTENSITY_COLUMNS:
        return (values >= 0) & (values <= MAX_INTENSITY)
    return pd.Series(np.isfinite(values.to_numpy(float)), index=values.index)


def read_openface_csv(path: Path) -> pd.DataFrame:
    """Read an OpenFace CSV: names stripped, the columns the project uses present and holding valid numbers.

    Raises:
        OpenFaceError: the file cannot be read or parsed, lacks a column, or a value breaks its column's rule
            (:data:`_COLUMN_RULES`); the message names the file, the line and the column.
    """
    try:
        text = read_text_lines(path)
    except InputError as err:
        raise OpenFaceError(str(err)) from None
    if text.unreadable:
        number, why = text.unreadable[0]
        raise OpenFaceError(f"{path}, line {number} cannot be read: {why}")
    try:
        table = pd.read_csv(io.StringIO("\n".join(line for _, line in text.lines)), skipinitialspace=True, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise OpenFaceError(f"cannot read OpenFace CSV {path}: {err}") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in ("frame", "success", "confidence", *INTENSITY_COLUMNS) if c not in table.columns]
    if missing:
        raise OpenFaceError(f"{path} is not an OpenFace CSV with AU intensities: missing {', '.join(missing[:6])}"
                            " (run FeatureExtraction with -aus)")
    row_lines = [number for number, line in text.lines if line.strip()][1:]  # pandas skips blank lines
    for column, rule in _COLUMN_RULES:
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        broken = np.flatnonzero(~_meets_rule(column, values).to_numpy())
        if len(broken):
            raw = table[column].iloc[broken[0]]
            shown = repr(raw) if isinstance(raw, str) else "empty"
            raise OpenFaceError(f"{path}, line {row_lines[broken[0]]}: {column} is {shown}, expected {rule}")
        table[column] = values
    return table


def rows_from_openface(table: pd.DataFrame, clip_id: str, frame_files: list[str], source: Path) -> pd.DataFrame:
    """Map an OpenFace table onto the clip's frames (CSV ``frame`` k is the clip's frame k - 1).

    Raises:
        OpenFaceError: the CSV has frame numbers beyond the clip's frames.
    """
    rows = empty_rows(clip_id, frame_files)
    frames = table["frame"].astype(int).to_numpy()
    if len(frames) and (frames.min() < 1 or frames.max() > len(frame_files)):
        raise OpenFaceError(f"{source}: frame numbers {frames.min()}..{frames.max()} do not fit the clip's "
                            f"{len(frame_files)} frames")
    good = table[table["success"].astype(int) == 1]
    if "face_id" in good.columns:  # several faces in a frame: keep the most confident
        good = good.sort_values("confidence", ascending=False).drop_duplicates("frame")
    index = good["frame"].astype(int).to_numpy() - 1
    rows.loc[index, "success"] = True
    rows.loc[index, "confidence"] = good["confidence"].to_numpy(float)
    rows.loc[index, "detector"] = "openface"
    rows.loc[index, list(INTENSITY_COLUMNS)] = good[list(INTENSITY_COLUMNS)].to_numpy(float)
    if all(c in good.columns for c in LANDMARK_COLUMNS):
        landmarks = good[list(LANDMARK_COLUMNS)].to_numpy(float)
        rows.loc[index, list(LANDMARK_COLUMNS)] = landmarks
        xs, ys = landmarks[:, :68], landmarks[:, 68:]
        boxes = np.stack([xs.min(1), ys.min(1), xs.max(1) - xs.min(1), ys.max(1) - ys.min(1)], axis=1)
        rows.loc[index, list(BOX_COLUMNS)] = boxes
    return rows


class OpenFaceBackend:
    """Runs OpenFace 2.x FeatureExtraction on each clip's frames (module docstring).

    Args:
        binary: path or PATH name of ``FeatureExtraction``. It is resolved to the real file: OpenFace looks
            for ``model/`` and ``AU_predictors/`` beside the binary it was started as, so a symlink to it
            (``/usr/local/bin/FeatureExtraction``) would otherwise fail to load its models.
        au_static: pass ``-au_static`` (no person-specific calibration; right for short clips).
        timeout_s: seconds one clip may take; past that the clip is a recorded failure.
        model: landmark model passed as ``-mloc`` when set, e.g. ``model/main_clnf_general.txt`` for a build
            without the CEN patch experts. OpenFace resolves a relative path against the working directory
            first, then beside the binary.
        extra_args: further arguments a particular build needs, appended as given.
    """

    name = "openface"
    reads_only_frames = True   # the binary, its model and arguments are settings: part of the cache tag

    def __init__(self, binary: str, au_static: bool = True, timeout_s: float = 600.0, model: str = "",
                 extra_args: Sequence[str] = ()) -> None:
        found = shutil.which(binary) if os.sep not in binary else (binary if os.access(binary, os.X_OK) else None)
        if found is None:
            raise OpenFaceError(f"OpenFace FeatureExtraction not found or not executable: {binary!r}. "
                                f"To use the openface backend, {INSTALL_HINT}.")
        self.binary = os.path.realpath(found)
        self.au_static = au_static
        self.timeout_s = timeout_s
        self.model = model
        self.extra_args = list(extra_args)

    def command(self, frames_dir: Path, out_dir: Path) -> list[str]:
        """The FeatureExtraction argument list for one folder of frames."""
        cmd = [self.binary, "-fdir", str(frames_dir), "-out_dir", str(out_dir), "-aus", "-2Dfp", "-pose", "-q"]
        if self.au_static:
            cmd.append("-au_static")
        if self.model:
            cmd += ["-mloc", self.model]
        return cmd + self.extra_args

    def process_clip(self, clip_id: str, frames_dir: Path, frame_files: list[str],
                     images: list[np.ndarray]) -> pd.DataFrame:
        with tempfile.TemporaryDirectory(prefix="argen-openface-") as tmp:
            linked, out_dir = Path(tmp) / "frames", Path(tmp) / "out"
            linked.mkdir()
            for k, name in enumerate(frame_files, start=1):
                os.symlink((frames_dir / name).resolve(), linked / f"{k:06d}{Path(name).suffix.lower()}")
            try:
                done = subprocess.run(self.command(linked, out_dir), capture_output=True, text=True,
                                      timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise OpenFaceError(f"OpenFace timed out after {self.timeout_s:g} s on clip {clip_id} "
                                    f"(extract_aus.openface_timeout_s)") from None
            except OSError as err:  # the binary vanished or lost its permissions mid-run
                raise OpenFaceError(f"OpenFace could not be started on clip {clip_id}: {self.binary}: "
                                    f"{err.strerror or err}") from None
            csvs = sorted(out_dir.glob("*.csv"))
            if done.returncode != 0 or not csvs:
                # OpenFace prints most of its errors (a model it cannot load, no images) on stdout.
                said = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines() if line.strip()]
                raise OpenFaceError(f"OpenFace failed on clip {clip_id} ({frames_dir}), exit code {done.returncode}"
                                    + (", no CSV written" if done.returncode == 0 else "") + ": "
                                    + (" | ".join(said[-5:]) or "no output"))
            return rows_from_openface(read_openface_csv(csvs[0]), clip_id, frame_files, csvs[0])

    def finalize(self, frames: pd.DataFrame) -> pd.DataFrame:
        return frames


class CsvBackend:
    """Reads OpenFace CSVs computed beforehand: ``<csv_dir>/<clip_id>.csv`` ('/' in ids written as '__')."""

    name = "csv"
    reads_only_frames = False  # a clip's rows come from its CSV, which the frames' content key does not see

    def __init__(self, csv_dir: str) -> None:
        self.csv_dir = Path(csv_dir)
        if not self.csv_dir.is_dir():
            raise FileNotFoundError(f"extract_aus.csv_dir {self.csv_dir} is not a folder of OpenFace CSVs")

    def csv_path(self, clip_id: str) -> Path:
        """Where the CSV of ``clip_id`` is expected."""
        return self.csv_dir / f"{clip_id.replace('/', '__')}.csv"

    def process_clip(self, clip_id: str, frames_dir: Path, frame_files: list[str],
                     images: list[np.ndarray]) -> pd.DataFrame:
        path = self.csv_path(clip_id)
        if not path.is_file():
            raise OpenFaceError(f"no OpenFace CSV for clip {clip_id}: expected {path}")
        return rows_from_openface(read_openface_csv(path), clip_id, frame_files, path)

    def finalize(self, frames: pd.DataFrame) -> pd.DataFrame:
        return frames

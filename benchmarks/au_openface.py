"""Agreement of the ``landmarks`` AU backend with OpenFace 2.x on real face frames.

Both backends see the same decoded frames (cv2.imread, BGR) of every clip folder under ``--frames``; the
``landmarks`` backend's :meth:`finalize` runs once over all clips' rows, as in the extract_aus stage.
OpenFace either runs through the project's own ``openface`` backend (``--openface-bin``) or is read from
CSVs computed beforehand (``--openface-csv DIR``: ``DIR/<clip>.csv`` or ``DIR/<clip>/*.csv``, e.g. the
``-out_dir`` of ``FeatureExtraction -fdir <clip> -aus -2Dfp -pose -au_static``).

Per AU it prints, over the frames where both found a face: OpenFace's mean intensity, the share of frames
where OpenFace's intensity reaches ``--active-intensity`` and where its presence ``AUxx_c`` is 1, the
landmarks backend's mean, the mean absolute difference, Pearson r pooled over all clips, and the mean of
the per-clip r (where both series vary). "Active" AUs (marked ``*``) are those whose OpenFace intensity
reaches ``--active-intensity`` on at least ``--active-share`` of the frames; the summary line is the mean
pooled r over them. Per clip it prints the face-found rates and the mean r over the AUs active in it.

The landmarks backend's constructor options come from its signature: each keyword parameter is an option
(``--reference population``, ``--smooth-frames 3``, ...) and any of them can also be given as
``--backend-arg name=value`` (repeatable), so new parameters need no change here.

OpenFace runs with the settings the pipeline's ``openface`` backend uses: ``--openface-model`` (``-mloc``,
``extract_aus.openface_model``), ``--openface-arg`` (repeatable, ``extract_aus.openface_args``) and
``--openface-timeout`` (``extract_aus.openface_timeout_s``); with ``--params params.yaml`` their defaults are
read from that file's ``extract_aus`` section. When OpenFace fails on every clip there is nothing to
compare: the benchmark says why and exits with status 1 instead of printing a table of NaN.

Usage (from the repository root):
    python -m benchmarks.au_openface --frames FRAMES_DIR --openface-csv OPENFACE_OUT_DIR [--csv table.csv]
    python -m benchmarks.au_openface --frames FRAMES_DIR --openface-bin /path/to/FeatureExtraction \
        [--params params.yaml] [--openface-model model/main_clnf_general.txt] [--openface-arg ARG ...]
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from natsort import natsorted

import argen
import argen.extract.openface as openface_module
from argen.aus import INTENSITY_COLUMNS
from argen.extract.landmarks import LandmarkAUBackend
from argen.extract.openface import OpenFaceBackend, OpenFaceError, read_openface_csv, rows_from_openface
from argen.io import list_frames

#: Benchmark options that a backend parameter must not shadow (such parameters stay reachable by --backend-arg).
_OWN_OPTIONS = {"frames", "openface_bin", "openface_csv", "no_au_static", "clips", "max_frames", "active_intensity",
                "active_share", "csv", "backend_arg", "help", "openface_model", "openface_arg", "openface_timeout",
                "params"}


def backend_parameters() -> dict[str, inspect.Parameter]:
    """The keyword parameters of LandmarkAUBackend's constructor, by name."""
    params = inspect.signature(LandmarkAUBackend.__init__).parameters
    return {name: p for name, p in params.items()
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def convert(name: str, text: str, param: inspect.Parameter | None) -> object:
    """``text`` as the type of the parameter's default (bool, int, float, str), else as a Python literal."""
    default = param.default if param is not None else inspect.Parameter.empty
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SystemExit(f"backend argument {name}: expected a boolean, got {text!r}")
    if isinstance(default, (int, float)):
        try:
            return type(default)(text)
        except ValueError:
            raise SystemExit(f"backend argument {name}: expected {type(default).__name__}, got {text!r}") from None
    if isinstance(default, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def backend_kwargs(args: argparse.Namespace, params: dict[str, inspect.Parameter]) -> dict[str, object]:
    """Constructor keywords from the per-parameter options and the --backend-arg pairs (the latter win)."""
    takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(LandmarkAUBackend.__init__).parameters.values())
    kwargs = {name: convert(name, getattr(args, f"bk_{name}"), params[name]) for name in params
              if getattr(args, f"bk_{name}", None) is not None}
    for pair in args.backend_arg:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise SystemExit(f"--backend-arg expects name=value, got {pair!r}")
        if name not in params and not takes_any:
            raise SystemExit(f"LandmarkAUBackend has no parameter {name!r}; it takes: {', '.join(params)}")
        kwargs[name] = convert(name, text, params.get(name))
    return kwargs


def clip_folders(root: Path, only: list[str] | None) -> list[Path]:
    """Sub-folders of ``root`` holding frames, in natural order; ``root`` itself if it holds frames directly."""
    if list_frames(root):
        folders = [root]
    else:
        folders = [d for d in natsorted(root.iterdir(), key=lambda p: p.name) if d.is_dir() and list_frames(d)]
    if only:
        folders = [d for d in folders if d.name in only]
    if not folders:
        raise SystemExit(f"no folders of frames under {root}" + (f" named {', '.join(only)}" if only else ""))
    return folders


def openface_csv_path(csv_dir: Path, clip: str) -> Path | None:
    """``csv_dir/<clip>.csv``, else ``csv_dir/<clip>/<clip>.csv``, else the first ``csv_dir/<clip>/*.csv``."""
    for path in (csv_dir / f"{clip}.csv", csv_dir / clip / f"{clip}.csv"):
        if path.is_file():
            return path
    found = sorted((csv_dir / clip).glob("*.csv")) if (csv_dir / clip).is_dir() else []
    return found[0] if found else None


def presence_columns(table: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """OpenFace's ``AUxx_c`` per row of ``rows`` (NaN where OpenFace wrote none), mapped like rows_from_openface."""
    cols = [c.replace("_r", "_c") for c in INTENSITY_COLUMNS]
    out = pd.DataFrame(np.nan, index=rows.index, columns=cols)
    present = [c for c in cols if c in table.columns]
    if not present or not len(table):
        return out
    good = table[table["success"].astype(int) == 1].sort_values("confidence", ascending=False).drop_duplicates("frame")
    index = good["frame"].astype(int).to_numpy() - 1
    index_ok = (index >= 0) & (index < len(rows))
    out.iloc[index[index_ok], [cols.index(c) for c in present]] = good[present].to_numpy(float)[index_ok]
    return out


class CapturingOpenFace(OpenFaceBackend):
    """The project's OpenFace backend, keeping the raw table of the last clip (for the ``_c`` columns)."""

    def process_clip(self, clip_id, frames_dir, frame_files, images):  # noqa: ANN001, ANN201
        captured: list[pd.DataFrame] = []
        original = openface_module.read_openface_csv

        def capture(path: Path) -> pd.DataFrame:
            captured.append(original(path))
            return captured[-1]

        openface_module.read_openface_csv = capture
        try:
            rows = super().process_clip(clip_id, frames_dir, frame_files, images)
        finally:
            openface_module.read_openface_csv = original
        self.last_table = captured[-1] if captured else pd.DataFrame()
        return rows


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, NaN when fewer than 3 pairs or either series is constant."""
    if len(a) < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def openface_settings(args: argparse.Namespace) -> dict[str, object]:
    """OpenFaceBackend keywords: the options given, else ``extract_aus`` of ``--params``, else the backend's own."""
    settings: dict[str, object] = {}
    if args.params is not None:
        from argen.params import load_params

        cfg = load_params(args.params).extract_aus
        settings = {"model": cfg.openface_model, "extra_args": list(cfg.openface_args),
                    "timeout_s": cfg.openface_timeout_s, "au_static": cfg.au_static}
    if args.openface_model is not None:
        settings["model"] = args.openface_model
    if args.openface_arg:
        settings["extra_args"] = list(args.openface_arg)
    if args.openface_timeout is not None:
        settings["timeout_s"] = args.openface_timeout
    if args.no_au_static:
        settings["au_static"] = False
    return settings


def main(argv: list[str] | None = None) -> None:
    params = backend_parameters()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--frames", type=Path, required=True, help="folder of clip folders of frames")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--openface-bin", help="OpenFace FeatureExtraction, run via the project's openface backend")
    source.add_argument("--openface-csv", type=Path, help="folder of OpenFace CSVs: <clip>.csv or <clip>/*.csv")
    parser.add_argument("--no-au-static", action="store_true", help="--openface-bin without -au_static")
    parser.add_argument("--params", type=Path, help="read the OpenFace settings from this params.yaml's extract_aus")
    parser.add_argument("--openface-model", help="landmark model passed as -mloc (extract_aus.openface_model)")
    parser.add_argument("--openface-arg", action="append", default=[], metavar="ARG",
                        help="extra FeatureExtraction argument, repeatable (extract_aus.openface_args)")
    parser.add_argument("--openface-timeout", type=float, help="seconds per clip (extract_aus.openface_timeout_s)")
    parser.add_argument("--clips", nargs="+", help="only these clip folder names")
    parser.add_argument("--max-frames", type=int, default=0, help="first N frames of each clip (0: all)")
    parser.add_argument("--active-intensity", type=float, default=1.0,
                        help="OpenFace intensity at which an AU counts as active (default 1.0)")
    parser.add_argument("--active-share", type=float, default=0.05,
                        help="share of frames an AU must be active on to count as activated (default 0.05)")
    parser.add_argument("--csv", type=Path, help="also write the per-AU table here")
    parser.add_argument("--backend-arg", action="append", default=[], metavar="NAME=VALUE",
                        help="keyword for LandmarkAUBackend(...), repeatable")
    group = parser.add_argument_group("LandmarkAUBackend parameters (defaults: the backend's own)")
    for name, p in params.items():
        if name in _OWN_OPTIONS:
            continue
        default = "" if p.default is inspect.Parameter.empty else f" (default {p.default!r})"
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"bk_{name}", metavar="VALUE",
                           help=f"{name}{default}")
    args = parser.parse_args(argv)

    landmarks = LandmarkAUBackend(**backend_kwargs(args, params))
    openface = CapturingOpenFace(args.openface_bin, **openface_settings(args)) if args.openface_bin else None
    failures: list[str] = []
    folders = clip_folders(args.frames, args.clips)
    of_parts, lm_parts = [], []
    for folder in folders:
        clip = folder.name
        names_all = list_frames(folder)
        if args.max_frames > 0:
            names_all = names_all[: args.max_frames]
        images, names = [], []
        for name in names_all:
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is None:
                print(f"warning: {clip}/{name} cannot be decoded; dropped", file=sys.stderr)
                continue
            images.append(image)
            names.append(name)
        if not images:
            print(f"warning: clip {clip} has no decodable frame; skipped", file=sys.stderr)
            continue
        lm_parts.append(landmarks.process_clip(clip, folder, names, images))
        try:
            if openface is not None:
                of_rows = openface.process_clip(clip, folder, names, images)
                table = openface.last_table
            else:
                path = openface_csv_path(args.openface_csv, clip)
                if path is None:
                    raise OpenFaceError(f"no CSV for clip {clip} in {args.openface_csv}")
                table = read_openface_csv(path)
                # the CSV numbers every listed frame; map on the full list, then keep the decoded ones
                of_rows = rows_from_openface(table, clip, names_all, path)
            of_rows = pd.concat([of_rows, presence_columns(table, of_rows)], axis=1)
            of_rows = of_rows[of_rows.frame_file.isin(names)].reset_index(drop=True)
            of_rows["frame"] = np.arange(len(of_rows))
        except OpenFaceError as err:
            print(f"warning: OpenFace on clip {clip}: {err}; counted as no face", file=sys.stderr)
            failures.append(str(err))
            of_rows = lm_parts[-1][["clip_id", "frame", "frame_file"]].copy()
            of_rows["success"] = False
            for col in (*INTENSITY_COLUMNS, *(c.replace("_r", "_c") for c in INTENSITY_COLUMNS)):
                of_rows[col] = np.nan
        of_parts.append(of_rows)
        print(f"  {clip}: {len(names)} frames", file=sys.stderr)
    if not lm_parts:
        raise SystemExit("no clip could be read")
    if len(failures) == len(of_parts):
        raise SystemExit(f"OpenFace failed on every one of the {len(failures)} clips: nothing to compare. "
                         f"First failure: {failures[0]}")

    est = landmarks.finalize(pd.concat(lm_parts, ignore_index=True)).reset_index(drop=True)
    ref = pd.concat(of_parts, ignore_index=True).reset_index(drop=True)
    if not (est.clip_id.to_numpy() == ref.clip_id.to_numpy()).all() or \
            not (est.frame_file.to_numpy() == ref.frame_file.to_numpy()).all():
        raise SystemExit("internal error: the two backends' rows are not aligned frame by frame")
    of_ok, lm_ok = ref.success.to_numpy(bool), est.success.to_numpy(bool)
    both = of_ok & lm_ok
    kwargs = {name: getattr(landmarks, name, "?") for name in params}
    print(f"argen from {Path(argen.__file__).parent}; LandmarkAUBackend({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")
    print(f"OpenFace: {'binary ' + str(args.openface_bin) if args.openface_bin else 'CSVs in ' + str(args.openface_csv)}")
    print(f"{len(est)} frames of {len(folders)} clips; face found: OpenFace {100 * of_ok.mean():.1f}%, "
          f"landmarks {100 * lm_ok.mean():.1f}%, both {100 * both.mean():.1f}% ({both.sum()} frames)")

    clips = list(dict.fromkeys(est.clip_id))
    rows, active = [], []
    per_clip_r: dict[str, dict[str, float]] = {c: {} for c in clips}
    for col in INTENSITY_COLUMNS:
        of, lm = ref.loc[both, col].to_numpy(float), est.loc[both, col].to_numpy(float)
        presence = ref.loc[both, col.replace("_r", "_c")].to_numpy(float)
        share = float((of >= args.active_intensity).mean()) if len(of) else float("nan")
        is_active = share >= args.active_share
        clip_rs = []
        for clip in clips:
            sel = both & (est.clip_id == clip).to_numpy()
            r = pearson(ref.loc[sel, col].to_numpy(float), est.loc[sel, col].to_numpy(float))
            per_clip_r[clip][col] = r
            if np.isfinite(r):
                clip_rs.append(r)
        r_pooled = pearson(of, lm)
        if is_active:
            active.append(r_pooled)
        rows.append({"au": col, "active": is_active, "openface_mean": float(of.mean()) if len(of) else np.nan,
                     "openface_active_share": share,
                     "openface_c_share": float(np.nanmean(presence)) if np.isfinite(presence).any() else np.nan,
                     "landmarks_mean": float(lm.mean()) if len(lm) else np.nan,
                     "mae": float(np.abs(of - lm).mean()) if len(of) else np.nan, "r_pooled": r_pooled,
                     "r_clip_mean": float(np.mean(clip_rs)) if clip_rs else np.nan, "n_clips_r": len(clip_rs)})
    table = pd.DataFrame(rows)

    t = args.active_intensity
    print(f"\n{'AU':9s}{'OF mean':>8s}{f'OF>={t:g}':>8s}{'OF _c':>7s}{'LM mean':>8s}{'MAE':>6s}"
          f"{'r pooled':>9s}{'r clip':>8s}{'n':>4s}")
    for row in table.itertuples():
        print(f"{row.au + ('*' if row.active else ''):9s}{row.openface_mean:8.2f}{100 * row.openface_active_share:7.0f}%"
              f"{100 * row.openface_c_share:6.0f}%{row.landmarks_mean:8.2f}{row.mae:6.2f}{row.r_pooled:9.2f}"
              f"{row.r_clip_mean:8.2f}{row.n_clips_r:4d}")
    print(f"* active: OpenFace intensity >= {t:g} on >= {100 * args.active_share:g}% of the frames both found a face on")
    clip_means = table.loc[table.active, "r_clip_mean"].to_numpy(float)
    print(f"mean r over AUs OpenFace activates ({len(active)}): pooled {np.nanmean(active) if active else np.nan:.3f}, "
          f"per-clip {np.nanmean(clip_means) if np.isfinite(clip_means).any() else np.nan:.3f}; "
          f"over all 17 AUs: pooled {np.nanmean(table.r_pooled):.3f}")

    print(f"\n{'clip':24s}{'frames':>7s}{'OF face':>8s}{'LM face':>8s}{'active AUs':>11s}{'mean r':>8s}")
    for clip in clips:
        sel = (est.clip_id == clip).to_numpy()
        sb = sel & both
        act = [c for c in INTENSITY_COLUMNS
               if sb.any() and (ref.loc[sb, c].to_numpy(float) >= t).mean() >= args.active_share]
        rs = [per_clip_r[clip][c] for c in act if np.isfinite(per_clip_r[clip][c])]
        print(f"{clip[:23]:24s}{sel.sum():7d}{100 * of_ok[sel].mean():7.0f}%{100 * lm_ok[sel].mean():7.0f}%"
              f"{len(act):11d}{np.mean(rs) if rs else np.nan:8.2f}")
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.4f")
        print(f"\nwrote {args.csv}")


if __name__ == "__main__":
    main()

"""Accuracy and speed of the ``landmarks`` AU backend against the demo's rendered ground truth.

Prints, per AU, Pearson r and MAE (OpenFace 0-5 scale) between estimated and rendered intensities over
every frame with a detected face, the mean r over the AUs the demo renders (those with non-constant
ground truth), and frames per second of the whole extraction (decode, detect, landmarks, AUs) on the
requested number of worker processes.

Usage: python benchmarks/au_landmarks.py [--root data/raw/demo] [--clips 200] [--workers 2]
(run `make repro` first, or point --root at any demo dataset).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from argen.aus import INTENSITY_COLUMNS
from argen.extract.run import ClipJob, extract
from argen.io import list_frames
from argen.params import ExtractAUsParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("data/raw/demo"))
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reference", choices=["clip", "population"], default="clip")
    parser.add_argument("--smooth-frames", type=int, choices=[1, 3, 5], default=5)
    args = parser.parse_args()

    clip_dirs = sorted((args.root / "Clip" / "clip_224x224").iterdir())[: args.clips]
    chosen = pd.DataFrame([ClipJob(d.name, str(d), tuple(list_frames(d))).__dict__ for d in clip_dirs])
    params = ExtractAUsParams(workers=args.workers, reference=args.reference, smooth_frames=args.smooth_frames)
    start = time.perf_counter()
    estimated, skips = extract(chosen, params)
    seconds = time.perf_counter() - start
    truth = pd.concat([pd.read_csv(args.root / "demo_meta" / "aus" / f"{d.name}.csv") for d in clip_dirs],
                      ignore_index=True)
    found = estimated.success.to_numpy(bool)
    print(f"{len(estimated)} frames of {len(clip_dirs)} clips, faces found on {100 * found.mean():.1f}%, "
          f"{len(skips)} skipped; reference={args.reference}, smooth_frames={args.smooth_frames}")
    print(f"{'AU':8s}{'r':>7s}{'MAE':>7s}{'truth mean':>12s}{'est. mean':>11s}")
    rs = []
    for col in INTENSITY_COLUMNS:
        est, gt = estimated.loc[found, col].to_numpy(float), truth.loc[found, col].to_numpy(float)
        rendered = gt.std() > 0
        r = float(np.corrcoef(est, gt)[0, 1]) if rendered and est.std() > 0 else float("nan")
        if rendered:
            rs.append(r)
        print(f"{col:8s}{r:7.2f}{np.abs(est - gt).mean():7.2f}{gt.mean():12.2f}{est.mean():11.2f}"
              + ("" if rendered else "   (not rendered in these clips)"))
    print(f"mean r over the {len(rs)} rendered AUs: {np.nanmean(rs):.3f}")
    print(f"{len(estimated) / seconds:.1f} frames/s on {args.workers} worker process(es), "
          f"{seconds:.1f} s including worker start-up")


if __name__ == "__main__":
    main()

"""Throughput of the demo renderer: seconds per clip and frames per second on this machine, one process.

Usage: python benchmarks/demo_render.py [n_clips] [image_size]
"""

from __future__ import annotations

import sys
import time

from argen.demo.dataset import plan_clips, render_clip
from argen.params import DemoParams


def main() -> None:
    n_clips = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    params = DemoParams(n_clips=max(35, n_clips), image_size=size)
    specs, identities = plan_clips(params, seed=0)
    specs = specs[:n_clips]
    start = time.perf_counter()
    for spec in specs:
        render_clip(spec, *identities[spec.subject], params)
    elapsed = time.perf_counter() - start
    frames = n_clips * params.n_frames
    print(f"{n_clips} clips of {params.n_frames} frames at {size}px: {elapsed / n_clips:.3f} s/clip, "
          f"{frames / elapsed:.1f} frames/s (one process)")


if __name__ == "__main__":
    main()

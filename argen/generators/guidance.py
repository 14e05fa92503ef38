"""The per-frame guidance curve f(m; a, b) of paper eq. 12.

    f(m; a, b) = g_min + (g_max - g_min) * (m / M)^(a - 1) * (1 - m / M)^(b - 1)

``m`` indexes the output frame being generated (1-based; frame 1 is the input frame, so the first
generated frame is m = 2) and ``M`` is the number of output frames: in the TI2V sampler only the newest
frame of each window is new, so one guidance value applies per window. As written, the Beta-like kernel
peaks at 1/4 for (a, b) = (2, 2) and at 4/27 for (3, 2) and (2, 3), so g never reaches g_max.
``form="paper"`` keeps eq. 12 as written (the default); ``form="peak"`` divides the kernel by its maximum
over [0, 1] so that the curve rises from g_min to exactly g_max at the kernel's mode (a-1)/(a+b-2).
``form="constant"`` drops the curve (the paper's table 5 "without the guidance curve"): every frame gets
the midpoint (g_min + g_max) / 2 (TI2V-Zero's own constant guidance, 9, is the midpoint of 7 and 11), so
(a, b) have no effect.
"""

from __future__ import annotations

import numpy as np


def kernel_peak(a: float, b: float) -> float:
    """Maximum over x in [0, 1] of x^(a-1) (1-x)^(b-1), for a, b >= 1."""
    if a < 1 or b < 1:
        raise ValueError(f"the guidance curve needs a, b >= 1, got a={a}, b={b}")
    if a + b == 2:
        return 1.0
    mode = (a - 1) / (a + b - 2)
    return float(mode ** (a - 1) * (1 - mode) ** (b - 1))


def guidance_curve(m: np.ndarray | int, n_frames: int, a: float, b: float, g_min: float = 7.0, g_max: float = 11.0,
                   form: str = "paper") -> np.ndarray:
    """Guidance scale for output frame(s) ``m`` (1-based) of an ``n_frames``-frame video (eq. 12).

    Args:
        m: output frame index or indices, 1..n_frames.
        n_frames: M, the number of output frames.
        a, b: the curve's shape, from the policy's action (S_a x b = {(2, 2), (3, 2), (2, 3)}).
        g_min, g_max: guidance bounds (7 and 11 in the paper).
        form: ``paper`` (eq. 12 as written), ``peak`` (kernel normalised to reach g_max) or ``constant``
            (the midpoint of the bounds for every frame).
    """
    if form not in ("paper", "peak", "constant"):
        raise ValueError(f"form must be 'paper', 'peak' or 'constant', got {form!r}")
    peak = kernel_peak(a, b)  # also checks a, b >= 1
    m = np.asarray(m, dtype=float)
    if np.any((m < 1) | (m > n_frames)):
        raise ValueError(f"frame index out of 1..{n_frames}: {m}")
    if form == "constant":
        return np.full(m.shape, (g_min + g_max) / 2.0)
    x = m / n_frames
    kernel = x ** (a - 1) * (1 - x) ** (b - 1)
    if form == "peak":
        kernel = kernel / peak
    return g_min + (g_max - g_min) * kernel

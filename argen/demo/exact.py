"""Float maths for the demo renderer whose results do not depend on the CPU running it.

numpy dispatches its transcendental functions (``sin``, ``cos``, ``power``, ...) to SIMD kernels chosen at
run time (AVX-512 kernels use other approximations than the scalar C library), and ``@``, ``dot``,
``linalg.norm`` and ``convolve`` call OpenBLAS, whose kernel (and use of fused multiply-add) depends on
the CPU as well. Their last bits therefore differ between machines, and a demo dataset drawn with them
changed bytes on another CPU. The functions here use only IEEE-754 addition, multiplication, division,
square root, rounding to integers and ``frexp``/``ldexp``, which give the same bits on every IEEE-754
CPU whatever the vector width, as separate numpy ufunc calls never fuse a multiply with an add.

They are accurate to a few units in the last place of float64, which is all the renderer needs.
"""

from __future__ import annotations

import math

import numpy as np

_TWO_PI = 2.0 * math.pi
_HALF_PI = 0.5 * math.pi
_LN2 = math.log(2.0)
#: Taylor coefficients of sin(r) = r * (1 + sum_k c_k r^(2k)) on |r| <= pi / 4 and of cos(r) likewise.
_SIN = [(-1.0) ** k / math.factorial(2 * k + 1) for k in range(1, 11)]
_COS = [(-1.0) ** k / math.factorial(2 * k) for k in range(1, 11)]
_EXP = [1.0 / math.factorial(k) for k in range(1, 19)]


def _horner(coefficients: list[float], x: np.ndarray) -> np.ndarray:
    """1 + c_1 x + c_2 x^2 + ..., evaluated with separate multiplications and additions."""
    acc = np.zeros_like(x)
    for c in reversed(coefficients):
        acc = (acc + c) * x
    return acc + 1.0


def sin(x) -> np.ndarray:
    """sin(x) in float64, the same bits on every CPU (|x| up to about 1e6)."""
    x = np.asarray(x, dtype=np.float64)
    quadrant = np.rint(x / _HALF_PI)  # x = quadrant * pi / 2 + r with |r| <= pi / 4
    r = x - quadrant * _HALF_PI
    r2 = r * r
    sin_r = r * _horner(_SIN, r2)
    cos_r = _horner(_COS, r2)
    q = np.mod(quadrant, 4.0)
    return np.where(q == 0, sin_r, np.where(q == 1, cos_r, np.where(q == 2, -sin_r, -cos_r)))


def cos(x) -> np.ndarray:
    """cos(x) in float64, the same bits on every CPU: sin(x + pi / 2) up to the rounding of the shift."""
    x = np.asarray(x, dtype=np.float64)
    quadrant = np.rint(x / _HALF_PI)
    r = x - quadrant * _HALF_PI
    r2 = r * r
    sin_r = r * _horner(_SIN, r2)
    cos_r = _horner(_COS, r2)
    q = np.mod(quadrant, 4.0)
    return np.where(q == 0, cos_r, np.where(q == 1, -sin_r, np.where(q == 2, -cos_r, sin_r)))


def exp(x) -> np.ndarray:
    """exp(x) in float64 for |x| < 700, the same bits on every CPU."""
    x = np.asarray(x, dtype=np.float64)
    k = np.rint(x / _LN2)
    r = x - k * _LN2  # |r| <= ln(2) / 2
    return np.ldexp(_horner(_EXP, r), k.astype(np.int64))


def log(x) -> np.ndarray:
    """Natural logarithm of positive x in float64, the same bits on every CPU.

    x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| < 0.172.
    """
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(x)  # m in [0.5, 1)
    low = m < math.sqrt(0.5)
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e).astype(np.float64)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = np.zeros_like(s)
    for k in range(12, 0, -1):  # atanh(s) / s = 1 + s^2/3 + s^4/5 + ...
        series = (series + 1.0 / (2 * k + 1)) * s2
    return 2.0 * s * (series + 1.0) + e * _LN2


def power(x, p: float) -> np.ndarray:
    """x ** p for x >= 0 in float64 (0 ** p = 0 for p > 0), the same bits on every CPU."""
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0
    return np.where(positive, exp(p * log(np.where(positive, x, 1.0))), 0.0)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for 2-D float arrays, summed in a fixed order without BLAS."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = a[:, :1] * b[:1, :]
    for k in range(1, a.shape[1]):
        out = out + a[:, k:k + 1] * b[k:k + 1, :]
    return out


def norm(v: np.ndarray) -> float:
    """Euclidean length of a 1-D vector, summed in a fixed order without BLAS."""
    v = np.asarray(v, dtype=np.float64)
    total = 0.0
    for value in v:
        total += float(value) * float(value)
    return math.sqrt(total)


def dot(v: np.ndarray, w) -> float:
    """Dot product of two 1-D vectors, summed in a fixed order without BLAS."""
    total = 0.0
    for a, b in zip(np.asarray(v, dtype=np.float64), np.asarray(w, dtype=np.float64), strict=True):
        total += float(a) * float(b)
    return total


def smooth3(x: np.ndarray) -> np.ndarray:
    """Moving average of width 3 with zero padding: ``np.convolve(x, np.ones(3) / 3, mode="same")``."""
    padded = np.concatenate([[0.0], np.asarray(x, dtype=np.float64), [0.0]])
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0

"""A figure with its 95 % interval as text, with the intervals that mean nothing flagged in place.

An interval whose ends coincide ("+0.0 [+0.0, +0.0]", e.g. a recall on two clips both missed by every run)
says nothing about the uncertainty; one that does not contain its own point ("9.14 [7.51, 8.66]": a
bootstrap of a biased statistic, or point and interval from different runs) is not an interval of that
point. Both are printed with a flag instead of as results.
"""

from __future__ import annotations

import math
import re

#: Flags written after an interval that cannot be read as one.
DEGENERATE = "degenerate interval"
OUTSIDE = "interval misses its point"
#: The same flags in brackets, short enough for a narrow column.
SHORT = {DEGENERATE: "[degenerate]", OUTSIDE: "[misses point]"}


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def interval_flag(value: object, low: object, high: object, tolerance: float = 1e-9) -> str:
    """"" for a usable interval; :data:`DEGENERATE` or :data:`OUTSIDE` otherwise (no interval: "")."""
    point, lo, hi = _finite(value), _finite(low), _finite(high)
    if lo is None or hi is None:
        return ""
    if abs(hi - lo) <= tolerance:
        return DEGENERATE
    if point is not None and not (lo - tolerance <= point <= hi + tolerance):
        return OUTSIDE
    return ""


def with_interval(value: object, low: object = None, high: object = None, scale: float = 1.0, digits: int = 1,
                  signed: bool = False, short: bool = False) -> str:
    """``value [low, high]`` scaled (100 for percent), or ``n/a``; a flagged interval is named, not printed
    (``short``: as ``[degenerate]`` or ``[misses point]``).

    >>> with_interval(0.5, 0.4, 0.6, scale=100)
    '50.0 [40.0, 60.0]'
    >>> with_interval(0.0, 0.0, 0.0, scale=100, signed=True)
    '+0.0 (degenerate interval)'
    """
    point = _finite(value)
    if point is None:
        return "n/a"
    sign = "+" if signed else ""
    text = f"{point * scale:{sign}.{digits}f}"
    lo, hi = _finite(low), _finite(high)
    if lo is None or hi is None:
        return text
    flag = interval_flag(point, lo, hi)
    if flag:
        return f"{text} {SHORT[flag]}" if short else f"{text} ({flag})"
    return f"{text} [{lo * scale:{sign}.{digits}f}, {hi * scale:{sign}.{digits}f}]"


#: ``value [low, high]`` in text, with an optional ``± sd`` between (signed numbers, a Unicode minus too).
_NUMBER = r"[-+−]?\d+(?:\.\d+)?"
INTERVAL_TEXT = re.compile(rf"(?P<value>{_NUMBER})(?P<sd> ± {_NUMBER})? \[(?P<low>{_NUMBER}), (?P<high>{_NUMBER})\]")


def flag_intervals(text: str) -> str:
    """Every ``value [low, high]`` in ``text`` whose interval is degenerate or misses its point, flagged in place.

    For tables written elsewhere (a stage's Markdown, a committed table of older code):
    ``+0.0 [+0.0, +0.0]`` -> ``+0.0 (degenerate interval)``; ``9.14 [7.51, 8.66]`` -> ``9.14 (interval misses
    its point)``. The rounded numbers as printed are compared.
    """
    def number(text: str) -> float:
        return float(text.replace("−", "-"))

    def flagged(match: re.Match) -> str:
        flag = interval_flag(number(match["value"]), number(match["low"]), number(match["high"]))
        return f"{match['value']}{match['sd'] or ''} ({flag})" if flag else match.group(0)

    return INTERVAL_TEXT.sub(flagged, text)

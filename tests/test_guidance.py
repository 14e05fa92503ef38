"""Known values of the guidance curve f(m; a, b) (eq. 12)."""

from __future__ import annotations

import numpy as np
import pytest

from argen.generators.guidance import guidance_curve, kernel_peak


def test_paper_form_known_values() -> None:
    # (2, 2): kernel x(1-x), 0.25 at x = 1/2 -> 7 + 4 * 0.25 = 8
    assert guidance_curve(8, 16, 2, 2) == pytest.approx(8.0)
    # (3, 2): x^2 (1-x) at x = 1/2 = 0.125 -> 7.5; (2, 3) symmetric
    assert guidance_curve(8, 16, 3, 2) == pytest.approx(7.5)
    assert guidance_curve(8, 16, 2, 3) == pytest.approx(7.5)
    assert guidance_curve(16, 16, 2, 2) == pytest.approx(7.0), "the last frame returns to g_min"
    values = guidance_curve(np.arange(1, 17), 16, 2, 2)
    assert values.max() <= 8.0 + 1e-12, "as written, (2, 2) never exceeds g_min + (g_max - g_min) / 4"


def test_peak_form_reaches_g_max_at_the_mode() -> None:
    assert kernel_peak(2, 2) == pytest.approx(0.25) and kernel_peak(3, 2) == pytest.approx(4 / 27)
    assert guidance_curve(8, 16, 2, 2, form="peak") == pytest.approx(11.0)
    # (3, 2): mode at x = 2/3, frame m with m / 12 = 2/3 -> m = 8 of 12
    assert guidance_curve(8, 12, 3, 2, form="peak") == pytest.approx(11.0)
    assert guidance_curve(np.arange(1, 13), 12, 3, 2, form="peak").max() == pytest.approx(11.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="out of 1..16"):
        guidance_curve(0, 16, 2, 2)
    with pytest.raises(ValueError, match="a, b >= 1"):
        guidance_curve(3, 16, 0.5, 2)
    with pytest.raises(ValueError, match="form"):
        guidance_curve(3, 16, 2, 2, form="other")


def test_constant_form_is_the_midpoint_whatever_a_and_b() -> None:
    for a, b in ((2.0, 2.0), (3.0, 2.0), (2.0, 3.0)):
        np.testing.assert_array_equal(guidance_curve(np.arange(1, 17), 16, a, b, 7.0, 11.0, "constant"), np.full(16, 9.0))
    assert float(guidance_curve(3, 16, 2.0, 2.0, 0.0, 8.0, "constant")) == 4.0

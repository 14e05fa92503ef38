"""The action space of the sampler (paper sec. 3.3 and 4.2), shared by the rewards and the policy.

An action u = (T, a, b) is the number of denoising steps T in S_T = {5, 10, 15, 20} and the shape (a, b)
of the guidance curve (eq. 12) in S_a×b = {(2, 2), (3, 2), (2, 3)}. :data:`ACTIONS` lists the 12 actions
T-major: index = t_index * 3 + ab_index.
"""

from __future__ import annotations

#: S_T (sec. 4.2).
STEP_CHOICES: tuple[int, ...] = (5, 10, 15, 20)
#: S_a×b (sec. 4.2); (3, 3) is not an action.
CURVE_CHOICES: tuple[tuple[float, float], ...] = ((2.0, 2.0), (3.0, 2.0), (2.0, 3.0))
#: The values of the a and b heads, in logit order.
SHAPE_VALUES: tuple[float, ...] = (2.0, 3.0)
#: The 12 actions (T, a, b), T-major: index = t_index * 3 + ab_index.
ACTIONS: tuple[tuple[int, float, float], ...] = tuple((t, a, b) for t in STEP_CHOICES for a, b in CURVE_CHOICES)

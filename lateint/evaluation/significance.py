"""Multiple-testing correction for paired significance tests.

``ranx`` computes each test's p-value but corrects nothing, so comparing several runs on several
metrics against one baseline inflates the chance of a false "significant". The Holm-Bonferroni
step-down procedure controls the family-wise error rate over all those tests without assuming
anything about their dependence, and is uniformly more powerful than plain Bonferroni.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lateint.errors import InputError

#: Corrections :func:`adjust_p_values` knows.
CORRECTIONS = ("holm", "bonferroni", "none")


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Adjusted p-values, in the order given, for a family of tests.

    * ``holm``: sort ascending; the i-th smallest (1-based) gets ``(m - i + 1) * p``, made
      non-decreasing along the sorted order and capped at 1.
    * ``bonferroni``: ``m * p`` capped at 1.
    * ``none``: unchanged.

    A test whose p-value is undefined (NaN, as for two identical score vectors) counts as a test
    with p = 1: it is part of the family but can never be significant.

    Rejecting where the adjusted p-value is at most alpha is exactly Holm's (or Bonferroni's)
    procedure at level alpha.
    """
    if method not in CORRECTIONS:
        raise InputError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    clean = [1.0 if p is None or math.isnan(p) else float(p) for p in p_values]
    if any(p < 0 or p > 1 for p in clean):
        raise InputError(f"p-values must lie in [0, 1], got {list(p_values)!r}")
    m = len(clean)
    if method == "none":
        return clean
    if method == "bonferroni":
        return [min(1.0, m * p) for p in clean]
    order = sorted(range(m), key=lambda i: clean[i])
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * clean[index]))
        adjusted[index] = running
    return adjusted

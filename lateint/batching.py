"""Grouping length-sorted items into batches that waste little compute on padding."""

from __future__ import annotations

from typing import Sequence


def length_batches(order: Sequence[int], lengths: Sequence[int], max_items: int, max_growth: float = 1.2,
                   max_tokens: int | None = None) -> list[list[int]]:
    """Split ``order`` (indices sorted by ascending length) into batches.

    A batch closes when it holds ``max_items`` items or when the next item is more than
    ``max_growth`` times as long as the batch's first item, so padding costs at most about
    ``max_growth - 1`` of the batch's work, while short runs of similar lengths still batch;
    with ``max_tokens``, also when the padded batch would exceed that many rows.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be positive, got {max_items}")
    batches: list[list[int]] = []
    current: list[int] = []
    first = 0
    for i in order:
        n = lengths[i]
        if current and (len(current) >= max_items or n > first * max_growth
                        or (max_tokens is not None and (len(current) + 1) * n > max_tokens)):
            batches.append(current)
            current = []
        if not current:
            first = max(n, 1)
        current.append(i)
    if current:
        batches.append(current)
    return batches

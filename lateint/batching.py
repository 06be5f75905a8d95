"""Grouping length-sorted items into batches that waste little compute on padding, and padding them."""

from __future__ import annotations

from typing import Sequence

import torch


def length_batches(order: Sequence[int], lengths: Sequence[int], max_items: int, max_growth: float = 1.2,
                   max_tokens: int | None = None, packed: bool = False) -> list[list[int]]:
    """Split ``order`` (indices sorted by ascending length) into batches.

    A batch closes when it holds ``max_items`` items or when the next item is more than
    ``max_growth`` times as long as the batch's first item, so padding costs at most about
    ``max_growth - 1`` of the batch's work, while short runs of similar lengths still batch;
    with ``max_tokens``, also when the batch would exceed that many rows: padded rows, or with
    ``packed`` (items stored back to back) the sum of the lengths.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be positive, got {max_items}")
    batches: list[list[int]] = []
    current: list[int] = []
    first = rows = 0
    for i in order:
        n = lengths[i]
        grown = rows + n if packed else (len(current) + 1) * n
        if current and (len(current) >= max_items or n > first * max_growth
                        or (max_tokens is not None and grown > max_tokens)):
            batches.append(current)
            current = []
            rows = 0
        if not current:
            first = max(n, 1)
        current.append(i)
        rows += n
    if current:
        batches.append(current)
    return batches


def pad_rows(tensors: Sequence[torch.Tensor], device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[len_i, H]`` tensors into ``[B, max_len, H]`` (zeros in padding) with a bool mask,
    on ``device`` (default: where the tensors are)."""
    width = max(t.shape[0] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), width, tensors[0].shape[-1]))
    mask = torch.zeros((len(tensors), width), dtype=torch.bool, device=out.device)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return (out, mask) if device is None else (out.to(device), mask.to(device))

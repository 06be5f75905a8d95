"""Shape checks and masked reductions shared by the loss modules.

Every loss here reduces over *valid* elements only, so the helpers below turn an optional mask into
a boolean tensor, zero out the entries it excludes before any arithmetic (padded scores may be
garbage, even ``inf``), and divide by the number of valid elements rather than the tensor size.
"""

from __future__ import annotations

import torch

from lateint.errors import InputError


def shape_of(t: torch.Tensor) -> tuple[int, ...]:
    """The shape of ``t`` as a plain tuple, for error messages."""
    return tuple(t.shape)


def require_same_shape(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> None:
    """Raise :class:`InputError` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise InputError(
            f"{a_name} have shape {shape_of(a)} but {b_name} have shape {shape_of(b)}; "
            "they must be the same shape"
        )


def require_dim(t: torch.Tensor, dim: int, name: str, layout: str) -> None:
    """Raise :class:`InputError` unless ``t`` has ``dim`` dimensions (``layout`` names them)."""
    if t.dim() != dim:
        raise InputError(f"{name} must be {layout}, got shape {shape_of(t)}")


def valid_mask(mask: torch.Tensor | None, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """``mask`` as a bool tensor shaped like ``like`` (all True when ``mask`` is None).

    Nonzero entries mark valid (real) elements; zero entries mark padding.
    """
    if mask is None:
        return torch.ones(like.shape, dtype=torch.bool, device=like.device)
    if mask.shape != like.shape:
        raise InputError(
            f"{name} has shape {shape_of(mask)} but the scores have shape {shape_of(like)}; "
            "the mask must match the scores"
        )
    return mask.to(device=like.device) != 0


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the entries where ``valid`` is True.

    Returns a zero that is still attached to the graph when nothing is valid, so that a batch
    made entirely of padding neither crashes ``backward()`` nor produces ``nan``.
    """
    valid = valid.expand_as(values)
    total = torch.where(valid, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum()
    count = valid.sum().clamp_min(1).to(values.dtype)
    return total / count


def masked_log_softmax(scores: torch.Tensor, valid: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log_softmax`` over the valid entries of ``scores`` along ``dim``; 0 at invalid entries.

    Invalid entries are set to ``-inf`` so they get no probability mass, and afterwards to 0 so that
    no infinity reaches later arithmetic (``0 * -inf`` would be ``nan`` in the forward or backward
    pass). Rows with no valid entry at all come out as all zeros and must be dropped by the
    caller; their scores are replaced by zeros first so that even garbage (``nan``) padding
    stays finite in both passes.
    """
    row_has_valid = valid.any(dim=dim, keepdim=True)
    filled = scores.masked_fill(~valid, float("-inf")).masked_fill(~row_has_valid, 0.0)
    return torch.log_softmax(filled, dim=dim).masked_fill(~valid, 0.0)

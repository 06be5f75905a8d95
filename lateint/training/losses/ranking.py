"""Ranking losses with hard (relevance) labels.

Scores for a group of candidates of one query are laid out as ``[B, n]``: one row per query, one
column per candidate. Where a loss needs to know which candidate is relevant and no labels are
given, column 0 is the positive and columns ``1..n-1`` are negatives (the usual layout of a
training group). An optional ``mask`` of the same shape marks real candidates (nonzero) against
padding (zero); padded candidates never change a loss, whatever score they hold.

* pointwise: :func:`pointwise_bce`;
* pairwise: :func:`ranknet_loss` (Burges et al., 2005) and :func:`hinge_loss` (the margin ranking
  loss of Joachims, 2002), over every (more relevant, less relevant) pair of a group;
* listwise: :func:`listwise_ce`, softmax cross-entropy over the group, which covers in-batch
  negatives too (a ``[B, B]`` score matrix with targets ``arange(B)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lateint.errors import InputError
from lateint.training.losses._checks import (
    masked_log_softmax,
    masked_mean,
    require_dim,
    require_same_shape,
    shape_of,
    valid_mask,
)

__all__ = ["first_column_labels", "hinge_loss", "listwise_ce", "pointwise_bce", "ranknet_loss"]


def first_column_labels(scores: torch.Tensor) -> torch.Tensor:
    """Labels ``[B, n]`` with 1 in column 0 and 0 elsewhere: the positive-first group layout."""
    labels = torch.zeros_like(scores)
    labels[..., 0] = 1
    return labels


def pointwise_bce(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Pointwise binary cross-entropy on logits.

    ``loss = mean_i [ -y_i log σ(s_i) - (1 - y_i) log(1 - σ(s_i)) ]`` over the valid elements, in
    the numerically stable form ``softplus(s) - y s``
    (:func:`torch.nn.functional.binary_cross_entropy_with_logits`).

    Args:
        scores: logits, any shape.
        labels: targets in ``[0, 1]`` (hard 0/1, or soft), same shape as ``scores``.
        mask: optional, same shape; zero marks padding.

    Returns:
        A scalar: the mean over valid elements (0 when there is none).
    """
    require_same_shape(scores, labels, "scores", "labels")
    valid = valid_mask(mask, scores)
    labels = labels.to(scores.dtype)
    if ((labels < 0) | (labels > 1))[valid].any():
        raise InputError("pointwise BCE labels must lie in [0, 1]")
    # Padding may hold any value; replace it before the loss so no inf/nan is produced at all.
    safe_scores = scores.masked_fill(~valid, 0.0)
    safe_labels = labels.masked_fill(~valid, 0.0)
    losses = F.binary_cross_entropy_with_logits(safe_scores, safe_labels, reduction="none")
    return masked_mean(losses, valid)


def _pairs(
    scores: torch.Tensor, labels: torch.Tensor | None, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score differences ``s_i - s_j`` ``[B, n, n]`` and the mask of pairs with ``y_i > y_j``."""
    require_dim(scores, 2, "scores", "[B, n] (one row of candidate scores per query)")
    if labels is None:
        labels = first_column_labels(scores)
    require_same_shape(scores, labels, "scores", "labels")
    valid = valid_mask(mask, scores)
    safe = scores.masked_fill(~valid, 0.0)
    diff = safe[:, :, None] - safe[:, None, :]
    better = labels[:, :, None] > labels[:, None, :]
    pair_valid = better & valid[:, :, None] & valid[:, None, :]
    return diff, pair_valid


def ranknet_loss(
    scores: torch.Tensor, labels: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """RankNet pairwise logistic loss (Burges et al., ICML 2005).

    For every pair ``(i, j)`` of one row with ``y_i > y_j`` (i more relevant than j):
    ``loss_ij = log(1 + exp(s_j - s_i)) = softplus(s_j - s_i)``; the result is the mean over all
    such pairs of the batch. With one positive (column 0) and n-1 negatives that is the mean over
    the n-1 (positive, negative) pairs of each row.

    Args:
        scores: ``[B, n]``.
        labels: ``[B, n]`` relevance (binary or graded); None means column 0 is the only positive.
        mask: optional ``[B, n]``; zero marks padded candidates, which form no pair.

    Returns:
        A scalar (0 when the batch holds no pair).
    """
    diff, pair_valid = _pairs(scores, labels, mask)
    return masked_mean(F.softplus(-diff), pair_valid)


def hinge_loss(
    scores: torch.Tensor,
    labels: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    margin: float = 1.0,
) -> torch.Tensor:
    """Pairwise margin hinge loss (Joachims, KDD 2002; ``torch.nn.MarginRankingLoss``).

    For every pair ``(i, j)`` of one row with ``y_i > y_j``:
    ``loss_ij = max(0, margin - (s_i - s_j))``; the result is the mean over all such pairs.

    Args:
        scores: ``[B, n]``.
        labels: ``[B, n]`` relevance; None means column 0 is the only positive.
        mask: optional ``[B, n]``; zero marks padded candidates.
        margin: how far the more relevant candidate must score above the other to cost nothing.

    Returns:
        A scalar (0 when the batch holds no pair).
    """
    diff, pair_valid = _pairs(scores, labels, mask)
    return masked_mean(F.relu(margin - diff), pair_valid)


def listwise_ce(
    scores: torch.Tensor, labels: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Listwise softmax cross-entropy (the "localised contrastive" / InfoNCE loss of re-rankers).

    ``loss = mean_b [ -Σ_i q_bi log softmax(s_b)_i ]`` where the softmax runs over the valid
    candidates of row b and ``q_b`` is the target distribution:

    * ``labels`` None: one-hot on column 0, so ``loss_b = -s_b0 + log Σ_i exp(s_bi)``
      (one positive, n-1 negatives);
    * ``labels`` an integer tensor ``[B]``: one-hot on column ``labels[b]``. In-batch negatives
      are this case: a ``[B, B]`` query-by-document score matrix with ``labels = arange(B)``;
    * ``labels`` ``[B, n]`` relevance: ``q_bi = y_bi / Σ_j y_bj`` over valid candidates (several
      positives share the target mass). Rows without any positive are left out of the mean.

    Args:
        scores: ``[B, n]``.
        labels: see above.
        mask: optional ``[B, n]``; zero marks padded candidates, which get no probability.

    Returns:
        A scalar: the mean over rows that have a target (0 when none has).
    """
    require_dim(scores, 2, "scores", "[B, n] (one row of candidate scores per query)")
    valid = valid_mask(mask, scores)
    if labels is None:
        labels = first_column_labels(scores)
    elif labels.dim() == 1:
        if labels.shape[0] != scores.shape[0]:
            raise InputError(
                f"target indices have shape {shape_of(labels)} but the scores have shape "
                f"{shape_of(scores)}; give one index per row"
            )
        if labels.is_floating_point():
            raise InputError("target indices must be an integer tensor")
        n = scores.shape[1]
        if ((labels < 0) | (labels >= n)).any():
            raise InputError(f"target indices must lie in [0, {n - 1}] for {n} candidates")
        if not valid.gather(1, labels[:, None]).all():
            raise InputError("a target index points at a masked (padded) candidate")
        labels = F.one_hot(labels, n).to(scores.dtype)
    else:
        require_same_shape(scores, labels, "scores", "labels")
    target = labels.to(scores.dtype).masked_fill(~valid, 0.0)
    if (target < 0).any():
        raise InputError("listwise cross-entropy labels must be non-negative")
    mass = target.sum(dim=1, keepdim=True)
    has_target = mass[:, 0] > 0
    target = target / mass.clamp_min(torch.finfo(scores.dtype).tiny)
    log_probs = masked_log_softmax(scores, valid, dim=1)
    per_row = -(target * log_probs).sum(dim=1)
    return masked_mean(per_row, has_target)

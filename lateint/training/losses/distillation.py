"""Score distillation: the student's scores learn from a teacher's scores (soft labels).

Scores are ``[B, n]`` (column 0 the positive where that matters) and the teacher's have the same
shape. The teacher is always detached: these losses send gradient to the student only, so the
teacher may be a model under ``no_grad`` or a frozen one without affecting the result.
"""

from __future__ import annotations

import torch

from lateint.errors import InputError
from lateint.training.losses._checks import (
    masked_log_softmax,
    masked_mean,
    require_dim,
    require_same_shape,
    valid_mask,
)

__all__ = ["listwise_kl", "margin_mse", "score_mse"]


def score_mse(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error between student and teacher scores.

    ``loss = mean_i (s_i - t_i)^2`` over the valid elements (any shape; ``mask`` the same shape).
    """
    require_same_shape(student, teacher, "student scores", "teacher scores")
    valid = valid_mask(mask, student)
    diff = student.masked_fill(~valid, 0.0) - teacher.detach().masked_fill(~valid, 0.0)
    return masked_mean(diff.square(), valid)


def margin_mse(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Margin-MSE (Hofstätter et al., 2020, "Improving Efficient Neural Ranking Models with
    Cross-Architecture Knowledge Distillation").

    With column 0 the positive and every other column a negative j:
    ``loss = mean_{b, j >= 1} [ (s_b0 - s_bj) - (t_b0 - t_bj) ]^2``: the student matches the
    teacher's margin between the positive and each negative, not the raw scores, so the two
    models may score on different scales and offsets. With ``n = 2`` this is the original
    (query, positive, negative) triple loss.

    Args:
        student: ``[B, n]`` with ``n >= 2``.
        teacher: ``[B, n]``.
        mask: optional ``[B, n]``; a negative counts when it and the row's positive are valid.

    Returns:
        A scalar (0 when no valid pair exists).
    """
    require_dim(student, 2, "student scores", "[B, n] with the positive in column 0")
    require_same_shape(student, teacher, "student scores", "teacher scores")
    if student.shape[1] < 2:
        raise InputError(
            f"Margin-MSE needs a positive and at least one negative per row; scores have shape "
            f"{tuple(student.shape)}"
        )
    valid = valid_mask(mask, student)
    s = student.masked_fill(~valid, 0.0)
    t = teacher.detach().masked_fill(~valid, 0.0)
    student_margin = s[:, :1] - s[:, 1:]
    teacher_margin = t[:, :1] - t[:, 1:]
    pair_valid = valid[:, :1] & valid[:, 1:]
    return masked_mean((student_margin - teacher_margin).square(), pair_valid)


def listwise_kl(
    student: torch.Tensor,
    teacher: torch.Tensor,
    mask: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Listwise KL divergence from the teacher's to the student's softmax over each group, with
    temperature (Hinton et al., 2015, "Distilling the Knowledge in a Neural Network").

    ``loss = τ² · mean_b KL( softmax(t_b / τ) || softmax(s_b / τ) )
           = τ² · mean_b Σ_i p_bi (log p_bi - log q_bi)``, ``p = softmax(t/τ)``, ``q = softmax(s/τ)``,

    the softmaxes running over the valid candidates of each row. This equals
    ``τ² · F.kl_div(log q, log p, log_target=True, reduction="batchmean")`` when nothing is masked.

    The ``τ²`` factor is Hinton et al.'s convention: the gradient of the softened KL with respect
    to the logits shrinks like ``1/τ²``, so multiplying by ``τ²`` keeps the term's gradient
    magnitude roughly independent of τ and its weight against a hard-label loss meaningful when τ
    changes. At ``τ = 1`` the factor is 1. Drop it by dividing the result by ``τ²``.

    Args:
        student: ``[B, n]`` student scores (logits).
        teacher: ``[B, n]`` teacher scores (logits).
        mask: optional ``[B, n]``; padded candidates get no probability on either side. Rows
            without any valid candidate are left out of the mean.
        temperature: τ > 0.

    Returns:
        A scalar.
    """
    require_dim(student, 2, "student scores", "[B, n] (one row of candidate scores per query)")
    require_same_shape(student, teacher, "student scores", "teacher scores")
    if not temperature > 0:
        raise InputError(f"the temperature must be positive, got {temperature}")
    valid = valid_mask(mask, student)
    log_q = masked_log_softmax(student / temperature, valid, dim=1)
    log_p = masked_log_softmax(teacher.detach() / temperature, valid, dim=1)
    p = log_p.exp().masked_fill(~valid, 0.0)
    per_row = (p * (log_p - log_q)).sum(dim=1)
    return masked_mean(per_row, valid.any(dim=1)) * temperature**2

"""DeFormer's distillation objective (Cao et al., 2020, "DeFormer: Decomposing Pre-trained
Transformers for Faster Question Answering").

A split (decomposed) student runs its lower layers ``1..L`` on the query and the document
separately and its upper layers ``L+1..T`` jointly; it starts from the teacher's weights, so both
have the same depth T and width. DeFormer trains it with

``L = α_task · L_task + α_kd · L_kd + α_mimicry · L_lrs``

where ``L_lrs`` (layer representation similarity) pulls the student's upper-layer states towards
the teacher's at the same layers and ``L_kd`` is the KL divergence between the teacher's and the
student's output distributions (here: softmax over each query's candidate group).

Layer indices follow ``hidden_states`` of ``transformers``: index 0 is the embedding output, index
``m`` the output of layer ``m``; both lists hold ``T + 1`` tensors ``[B, S, d]`` whose token
positions must correspond.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lateint.errors import ConfigError, InputError
from lateint.training.losses.distillation import listwise_kl
from lateint.training.losses.intermediate import hidden_mse
from lateint.training.losses.ranking import listwise_ce

__all__ = ["deformer_loss", "upper_layer_mimicry"]


def upper_layer_mimicry(
    student_hidden: Sequence[torch.Tensor],
    teacher_hidden: Sequence[torch.Tensor],
    split: int,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """DeFormer's layer representation similarity loss over the upper (joint) layers.

    ``loss = Σ_{m = L+1}^{T} MSE_V(h^S_m, h^T_m)``, ``MSE_V`` the mean squared error over valid
    tokens and features (:func:`~lateint.training.losses.intermediate.hidden_mse` without a
    projection). DeFormer sums squared distances over those layers; taking the per-layer mean
    instead of the sum over tokens and features only rescales it and keeps it independent of
    sequence length and width. ``split = T`` (a twin model) has no upper layer and gives 0.

    Args:
        student_hidden: ``T + 1`` student states ``[B, S, d]``, embedding output first.
        teacher_hidden: ``T + 1`` teacher states ``[B, S, d]`` (detached).
        split: L, the number of lower (separate) layers, ``0 <= L <= T``.
        mask: optional ``[B, S]`` attention mask; zero marks padding.

    Returns:
        A scalar.
    """
    if len(student_hidden) != len(teacher_hidden):
        raise InputError(
            f"the student gives {len(student_hidden)} hidden states and the teacher "
            f"{len(teacher_hidden)}; both must give T + 1 (embedding output first)"
        )
    depth = len(student_hidden) - 1
    if depth < 1:
        raise InputError("hidden states must include at least one layer after the embedding output")
    if isinstance(split, bool) or not isinstance(split, int) or not 0 <= split <= depth:
        raise ConfigError(f"split must be an integer in [0, {depth}] for {depth} layers, got {split!r}")
    losses = [hidden_mse(student_hidden[m], teacher_hidden[m], mask) for m in range(split + 1, depth + 1)]
    if not losses:
        # A twin model has no joint layer to mimic; keep the result attached to the graph.
        return student_hidden[-1].sum() * 0.0
    return torch.stack(losses).sum()


def deformer_loss(
    student_scores: torch.Tensor,
    teacher_scores: torch.Tensor,
    student_hidden: Sequence[torch.Tensor],
    teacher_hidden: Sequence[torch.Tensor],
    split: int,
    *,
    labels: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    token_mask: torch.Tensor | None = None,
    alpha_task: float = 1.0,
    alpha_kd: float = 1.0,
    alpha_mimicry: float = 1.0,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DeFormer's combined objective for a split ranker.

    ``total = α_task · listwise_ce(s, y) + α_kd · listwise_kl(s, t; τ) + α_mimicry · upper_layer_mimicry``.

    Args:
        student_scores: ``[B, n]`` split-student scores, positive in column 0.
        teacher_scores: ``[B, n]`` scores of the unsplit teacher (detached).
        student_hidden, teacher_hidden: ``T + 1`` states each of the ``B · n`` scored sequences.
        split: L.
        labels: ``[B, n]`` relevance (or ``[B]`` target indices) for the task term; None means
            column 0 is the positive.
        mask: optional ``[B, n]`` candidate mask.
        token_mask: optional ``[B · n, S]`` attention mask.
        alpha_task, alpha_kd, alpha_mimicry: weights (a weight of 0 skips the term).
        temperature: τ of the KD term.

    Returns:
        ``(total, terms)`` with unweighted, detached ``"task"``, ``"kd"`` and ``"mimicry"``
        entries for the terms computed.
    """
    weights = {"alpha_task": alpha_task, "alpha_kd": alpha_kd, "alpha_mimicry": alpha_mimicry}
    for key, value in weights.items():
        if not value >= 0:
            raise ConfigError(f"{key} must be non-negative, got {value}")
    if not any(value > 0 for value in weights.values()):
        raise ConfigError("at least one of alpha_task, alpha_kd, alpha_mimicry must be positive")
    parts: list[torch.Tensor] = []
    terms: dict[str, torch.Tensor] = {}
    if alpha_task > 0:
        task = listwise_ce(student_scores, labels, mask)
        parts.append(alpha_task * task)
        terms["task"] = task.detach()
    if alpha_kd > 0:
        kd = listwise_kl(student_scores, teacher_scores, mask, temperature)
        parts.append(alpha_kd * kd)
        terms["kd"] = kd.detach()
    if alpha_mimicry > 0:
        mimicry = upper_layer_mimicry(student_hidden, teacher_hidden, split, token_mask)
        parts.append(alpha_mimicry * mimicry)
        terms["mimicry"] = mimicry.detach()
    return torch.stack(parts).sum(), terms

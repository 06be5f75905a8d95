"""The Simplified TinyBERT objective (Chen et al., 2021, "Simplified TinyBERT: Knowledge
Distillation for Document Retrieval").

TinyBERT (Jiao et al., 2020) distils in two stages: first the intermediate layers, then the
prediction layer. Simplified TinyBERT merges the stages into one step and adds the hard-label
loss, so each training step optimises

``L = α_intermediate · L_intermediate + α_soft · L_soft + α_hard · L_hard``

with ``L_intermediate`` the embedding, hidden-state and attention terms of
:class:`~lateint.training.losses.intermediate.IntermediateDistillation`, ``L_soft`` a score
distillation loss against the teacher and ``L_hard`` a ranking loss against the relevance labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lateint.errors import ConfigError, InputError
from lateint.training.losses.intermediate import IntermediateDistillation
from lateint.training.losses.registry import get_loss

__all__ = ["SOFT_CHOICES", "HARD_CHOICES", "SimplifiedTinyBertLoss"]

#: Score-distillation losses the soft term may use (registry names).
SOFT_CHOICES = ("kl", "mse", "margin_mse")
#: Ranking losses the hard term may use (registry names).
HARD_CHOICES = ("listwise_ce", "bce", "ranknet", "hinge")


class SimplifiedTinyBertLoss(nn.Module):
    """One-step TinyBERT distillation with a hard-label term.

    ``total = α_intermediate · (embedding + hidden + attention) + α_soft · soft + α_hard · hard``.

    The soft term defaults to the listwise KL with temperature τ (scaled by τ², see
    :func:`~lateint.training.losses.distillation.listwise_kl`); TinyBERT's prediction-layer
    soft cross-entropy ``-Σ softmax(t/τ) · log softmax(s/τ)`` differs from that KL only by the
    teacher's entropy, a constant, so the gradients agree up to the τ² factor. ``soft="mse"``
    uses score MSE instead. The hard term defaults to listwise cross-entropy with the positive in
    column 0; ``hard="bce"`` uses pointwise BCE on the labels.

    Terms whose weight is 0 are not computed, so their inputs may be omitted; at least one weight
    must be positive. The module owns the
    intermediate projections (as a submodule), so give ``loss.parameters()`` to the optimiser
    together with the student's.

    Args:
        alpha_intermediate: weight of the intermediate terms.
        alpha_soft: weight of the soft (teacher score) term.
        alpha_hard: weight of the hard (label) term.
        temperature: τ of the KL soft term (ignored by the others).
        intermediate: the intermediate-layer module; required when ``alpha_intermediate > 0``.
        soft: ``"kl"`` (default), ``"mse"`` or ``"margin_mse"``.
        hard: ``"listwise_ce"`` (default), ``"bce"``, ``"ranknet"`` or ``"hinge"``.
    """

    def __init__(
        self,
        alpha_intermediate: float = 1.0,
        alpha_soft: float = 1.0,
        alpha_hard: float = 1.0,
        temperature: float = 1.0,
        *,
        intermediate: IntermediateDistillation | None = None,
        soft: str = "kl",
        hard: str = "listwise_ce",
    ) -> None:
        super().__init__()
        weights = {"alpha_intermediate": alpha_intermediate, "alpha_soft": alpha_soft, "alpha_hard": alpha_hard}
        for key, value in weights.items():
            if not value >= 0:
                raise ConfigError(f"{key} must be non-negative, got {value}")
        if not any(value > 0 for value in weights.values()):
            raise ConfigError("at least one of alpha_intermediate, alpha_soft, alpha_hard must be positive")
        if not temperature > 0:
            raise ConfigError(f"the temperature must be positive, got {temperature}")
        if soft not in SOFT_CHOICES:
            raise ConfigError(f"unknown soft loss {soft!r}; valid choices are {', '.join(SOFT_CHOICES)}")
        if hard not in HARD_CHOICES:
            raise ConfigError(f"unknown hard loss {hard!r}; valid choices are {', '.join(HARD_CHOICES)}")
        if alpha_intermediate > 0 and intermediate is None:
            raise ConfigError("alpha_intermediate > 0 needs an IntermediateDistillation module")
        self.alpha_intermediate = float(alpha_intermediate)
        self.alpha_soft = float(alpha_soft)
        self.alpha_hard = float(alpha_hard)
        self.temperature = float(temperature)
        self.intermediate = intermediate
        self.soft_name = soft
        self.hard_name = hard
        self._soft = get_loss(soft, temperature=temperature) if soft == "kl" else get_loss(soft)
        self._hard = get_loss(hard)

    def forward(
        self,
        student_scores: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        student_hidden: Sequence[torch.Tensor] | None = None,
        teacher_hidden: Sequence[torch.Tensor] | None = None,
        student_attentions: Sequence[torch.Tensor] | None = None,
        teacher_attentions: Sequence[torch.Tensor] | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Compute the weighted total and its terms.

        Args:
            student_scores: ``[B, n]`` student scores, positive in column 0.
            teacher_scores: ``[B, n]`` teacher scores (needed when ``alpha_soft > 0``).
            labels: ``[B, n]`` relevance labels; None means column 0 is the only positive.
            mask: optional ``[B, n]`` candidate mask.
            student_hidden, teacher_hidden, student_attentions, teacher_attentions: the states
                and raw attention scores of every candidate pair (batch ``B · n`` rows) as
                :meth:`IntermediateDistillation.forward` takes them.
            token_mask: the ``[B · n, S]`` attention mask of those sequences.

        Returns:
            ``(total, terms)``: ``terms`` holds the unweighted ``"soft"``, ``"hard"`` and
            ``"intermediate"`` values (and the intermediate parts ``"embedding"``, ``"hidden"``,
            ``"attention"``) of the terms computed, detached for logging; ``total`` keeps the graph.
        """
        parts: list[torch.Tensor] = []
        terms: dict[str, torch.Tensor] = {}
        if self.alpha_soft > 0:
            if teacher_scores is None:
                raise InputError("the soft term (alpha_soft > 0) needs teacher_scores")
            soft = self._soft(student_scores, teacher_scores, mask)
            parts.append(self.alpha_soft * soft)
            terms["soft"] = soft.detach()
        if self.alpha_hard > 0:
            target = labels
            if target is None:
                target = torch.zeros_like(student_scores)
                target[..., 0] = 1
            hard = self._hard(student_scores, target, mask)
            parts.append(self.alpha_hard * hard)
            terms["hard"] = hard.detach()
        if self.alpha_intermediate > 0:
            assert self.intermediate is not None  # guaranteed by __init__
            if student_hidden is None or teacher_hidden is None:
                raise InputError(
                    "the intermediate term (alpha_intermediate > 0) needs student_hidden and teacher_hidden"
                )
            inner = self.intermediate(
                student_hidden, teacher_hidden, student_attentions, teacher_attentions, token_mask
            )
            intermediate = torch.stack(list(inner.values())).sum()
            parts.append(self.alpha_intermediate * intermediate)
            terms["intermediate"] = intermediate.detach()
            terms.update({k: v.detach() for k, v in inner.items()})
        return torch.stack(parts).sum(), terms

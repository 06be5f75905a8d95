"""The training objective: the weighted sum of the terms :class:`~lateint.training.config.LossSettings` enables.

``total = hard_weight · hard + soft_weight · soft + intermediate_weight · intermediate
+ mimicry_weight · mimicry``

* ``hard``: a ranking loss against the relevance labels (student scores times ``hard_scale``);
* ``soft``: a score-distillation loss against the teacher's scores;
* ``intermediate``: TinyBERT's embedding, hidden-state and attention terms (Simplified TinyBERT
  merges them with the soft and hard terms into one step, which is what this sum is);
* ``mimicry``: DeFormer's upper-layer representation similarity.

:func:`combine_terms` computes the sum from tensors alone; :class:`StudentObjective` runs the
student on a batch and hands its scores and states to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lateint.errors import ConfigError, InputError
from lateint.training.losses.deformer import upper_layer_mimicry
from lateint.training.losses.intermediate import IntermediateDistillation
from lateint.training.losses.registry import get_loss

__all__ = ["StudentObjective", "combine_terms", "default_hard_scale"]

#: Scale of cosine-twin scores in the hard loss: scores in [-1, 1] give a softmax too flat to
#: learn from; 20 is sentence-transformers' ranking-loss scale.
COSINE_HARD_SCALE = 20.0


def default_hard_scale(settings, head_config) -> float:
    """``settings.hard_scale``, or by default 20 for a cosine twin head and 1 otherwise."""
    if settings.hard_scale is not None:
        return settings.hard_scale
    cosine_twin = head_config.name == "twin" and head_config.crossing == "cosine"
    return COSINE_HARD_SCALE if cosine_twin else 1.0


def _hard_loss(settings):
    return get_loss(settings.hard, margin=settings.hinge_margin) if settings.hard == "hinge" else get_loss(settings.hard)


def _soft_loss(settings):
    return get_loss(settings.soft, temperature=settings.temperature) if settings.soft == "kl" else get_loss(settings.soft)


def combine_terms(
    settings,
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    teacher_scores: torch.Tensor | None = None,
    *,
    hard_scale: float = 1.0,
    intermediate: IntermediateDistillation | None = None,
    student_hidden: Sequence[torch.Tensor] | None = None,
    teacher_hidden: Sequence[torch.Tensor] | None = None,
    student_attentions: Sequence[torch.Tensor] | None = None,
    teacher_attentions: Sequence[torch.Tensor] | None = None,
    token_mask: torch.Tensor | None = None,
    split: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted total and its unweighted terms.

    Args:
        settings: a :class:`~lateint.training.config.LossSettings`.
        scores: ``[B, n]`` student scores.
        labels: ``[B, n]`` relevance labels (the hard term's target).
        mask: optional ``[B, n]`` candidate mask.
        teacher_scores: ``[B, n]`` teacher scores (the soft term's target).
        hard_scale: the student's scores are multiplied by this in the hard term.
        intermediate: the intermediate-layer module (owns the projections).
        student_hidden, teacher_hidden, student_attentions, teacher_attentions, token_mask: the
            per-layer internals of the ``B · n`` scored pairs (intermediate and mimicry terms).
        split: the student's L (the mimicry term compares the layers above it).

    Returns:
        ``(total, terms)``: ``terms`` holds the detached ``hard``, ``soft``, ``intermediate`` (with
        its parts ``embedding``, ``hidden``, ``attention``) and ``mimicry`` values of the terms
        computed; ``total`` keeps the graph.

    Raises:
        ConfigError: every enabled term has weight 0.
        InputError: a term is enabled but its inputs are missing.
    """
    s = settings
    parts: list[torch.Tensor] = []
    terms: dict[str, torch.Tensor] = {}
    if s.hard is not None and s.hard_weight > 0:
        hard = _hard_loss(s)(scores * hard_scale, labels, mask)
        parts.append(s.hard_weight * hard)
        terms["hard"] = hard.detach()
    if s.soft is not None and s.soft_weight > 0:
        if teacher_scores is None:
            raise InputError("the soft term needs teacher scores.")
        soft = _soft_loss(s)(scores, teacher_scores, mask)
        parts.append(s.soft_weight * soft)
        terms["soft"] = soft.detach()
    if s.intermediate or s.mimicry:
        if student_hidden is None or teacher_hidden is None:
            raise InputError("the intermediate and mimicry terms need the student's and teacher's hidden states.")
        hidden = [h.float() for h in student_hidden]
        t_hidden = [h.float() for h in teacher_hidden]
        if s.intermediate:
            if intermediate is None:
                raise InputError("the intermediate term needs an IntermediateDistillation module.")
            inner = intermediate(hidden, t_hidden, student_attentions, teacher_attentions, token_mask)
            value = torch.stack(list(inner.values())).sum()
            parts.append(s.intermediate_weight * value)
            terms["intermediate"] = value.detach()
            terms.update({k: v.detach() for k, v in inner.items()})
        if s.mimicry:
            mim = upper_layer_mimicry(hidden, t_hidden, split, token_mask)
            parts.append(s.mimicry_weight * mim)
            terms["mimicry"] = mim.detach()
    if not parts:
        raise ConfigError("every loss term has weight 0; give at least one a positive weight.")
    return torch.stack(parts).sum(), terms


class StudentObjective(nn.Module):
    """The student and the trainable parts of the loss, as one module (what the optimizer and
    ``accelerate`` see), whose forward returns the weighted total and its terms.

    Args:
        student: the ranker being trained.
        settings: the run's :class:`~lateint.training.config.LossSettings`.
        intermediate: the intermediate-layer module when ``settings.intermediate``.
    """

    def __init__(self, student, settings, intermediate: IntermediateDistillation | None = None,
                 inplace_loss=None, inplace_weight: float = 1.0):
        super().__init__()
        self.student = student
        self.intermediate = intermediate
        self.settings = settings
        self.hard_scale = default_hard_scale(settings, student.config.head)
        #: the in-place distillation loss of a sandwich dial (another split's scores over the same batch teach)
        self.inplace_loss = inplace_loss
        self.inplace_weight = inplace_weight
        #: the scores of the last forward, detached (a sandwich step's lowest split teaches the others with them)
        self.last_scores: torch.Tensor | None = None

    @property
    def needs_states(self) -> bool:
        return self.settings.intermediate or self.settings.mimicry

    def forward(self, batch, teacher_out=None, split: int | None = None,
                inplace_teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Score ``batch`` (a :class:`~lateint.training.batches.PairBatch`) and combine the terms;
        ``teacher_out`` is the teacher's captured forward when states are compared; ``split``: the
        split this step trains (a view of the same weights; default the student's own);
        ``inplace_teacher``: ``[B, n]`` scores of another split over the same batch, which teach this one
        through ``inplace_loss`` (the ``inplace`` term); they are detached, so that the teaching side learns
        nothing from this term."""
        from lateint.training.states import capture_forward, pair_batches

        s = self.settings
        student = self.student if split is None or split == self.student.split else self.student.at(split)
        captured = None
        if self.needs_states:
            attentions = s.intermediate and s.intermediate_attention
            captured = capture_forward(student, batch.q_sides, batch.d_sides, attentions=attentions)
            flat = captured.scores
        else:
            qb, db = pair_batches(student, batch.q_sides, batch.d_sides)
            flat = student(qb, db)
        scores = flat.float().view(*batch.shape)
        device = scores.device
        mask = batch.mask.to(device) if batch.mask is not None else None
        teacher = batch.teacher_scores.to(device) if batch.teacher_scores is not None else None
        states = {}
        if captured is not None:
            if teacher_out is None:
                raise InputError("the intermediate and mimicry terms need the teacher's states.")
            states = dict(
                student_hidden=captured.hidden, teacher_hidden=teacher_out.hidden,
                student_attentions=captured.attentions, teacher_attentions=teacher_out.attentions,
                token_mask=captured.mask,
            )
        total, terms = combine_terms(
            s, scores, batch.labels.to(device), mask, teacher, hard_scale=self.hard_scale,
            intermediate=self.intermediate, split=student.split, **states,
        )
        if inplace_teacher is not None:
            if self.inplace_loss is None:
                raise InputError("in-place distillation needs an inplace_loss.")
            inplace = self.inplace_loss(scores, inplace_teacher.detach().to(device).float(), mask)
            total = total + self.inplace_weight * inplace
            terms["inplace"] = inplace.detach()
        self.last_scores = scores.detach()
        return total, terms

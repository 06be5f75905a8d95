"""TinyBERT intermediate-layer distillation (Jiao et al., 2020, "TinyBERT: Distilling BERT for
Natural Language Understanding"), as used for ranking by Simplified TinyBERT (Chen et al., 2021,
"Simplified TinyBERT: Knowledge Distillation for Document Retrieval").

Layer indices follow the ``hidden_states`` convention of ``transformers``: index 0 is the
embedding layer's output and index ``m`` (1-based) is the output of transformer layer ``m``. So a
model with T layers gives ``T + 1`` hidden states, while attention scores exist for layers
``1..T`` only and are stored 0-based: ``attentions[m - 1]`` belongs to layer ``m``.

Student and teacher must tokenise a pair identically (same sequence length, same positions), so
that token ``i`` of one is token ``i`` of the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lateint.errors import ConfigError, InputError
from lateint.training.losses._checks import masked_mean, shape_of

__all__ = [
    "IntermediateDistillation",
    "attention_score_mse",
    "embedding_mse",
    "hidden_mse",
    "uniform_layer_map",
]

#: Attention scores at or below this value are taken to be masked (TinyBERT's own code zeroes
#: scores ``<= -1e2`` for the same reason: they come from an additive ``-1e4`` or ``finfo.min``
#: mask, and a real score that low gets no attention weight either).
MASKED_BELOW = -1e2


def uniform_layer_map(n_student: int, n_teacher: int) -> list[int]:
    """TinyBERT's uniform layer mapping ``g(m) = m · N / M`` (rounded down when M does not divide N).

    Args:
        n_student: M, the student's number of transformer layers (``1 <= M <= N``).
        n_teacher: N, the teacher's number of transformer layers.

    Returns:
        A list of ``M + 1`` teacher layer indices: element ``m`` is the teacher layer student layer
        ``m`` learns from, with the embedding layer 0 mapped to 0. For M = 4, N = 12:
        ``[0, 3, 6, 9, 12]``. The last student layer always maps to the last teacher layer.
    """
    if isinstance(n_student, bool) or isinstance(n_teacher, bool):
        raise ConfigError("layer counts must be integers")
    if not (isinstance(n_student, int) and isinstance(n_teacher, int)):
        raise ConfigError(f"layer counts must be integers, got {n_student!r} and {n_teacher!r}")
    if n_student < 1 or n_teacher < 1:
        raise ConfigError(
            f"both models need at least one layer, got {n_student} (student) and {n_teacher} (teacher)"
        )
    if n_student > n_teacher:
        raise ConfigError(
            f"the student has more layers ({n_student}) than the teacher ({n_teacher}); "
            "a uniform map needs n_student <= n_teacher"
        )
    return [m * n_teacher // n_student for m in range(n_student + 1)]


def _token_mask(mask: torch.Tensor | None, batch: int, seq: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(batch, seq, dtype=torch.bool, device=device)
    if tuple(mask.shape) != (batch, seq):
        raise InputError(
            f"the attention mask has shape {shape_of(mask)} but the states need ({batch}, {seq})"
        )
    return mask.to(device) != 0


def hidden_mse(
    student: torch.Tensor,
    teacher: torch.Tensor,
    mask: torch.Tensor | None = None,
    projection: nn.Module | None = None,
) -> torch.Tensor:
    """Hidden-state loss of TinyBERT: ``MSE(H_S W_h + b, H_T)`` over valid tokens.

    ``loss = 1 / (|V| · d_t) · Σ_{(b, i) ∈ V} || W h^S_bi + b - h^T_bi ||²``, V the valid
    (non-padding) tokens: the mean squared error over every valid token and every feature.

    Args:
        student: ``[B, S, d_s]`` student states.
        teacher: ``[B, S, d_t]`` teacher states (detached).
        mask: optional ``[B, S]`` attention mask; zero marks padding tokens.
        projection: maps ``d_s`` to ``d_t`` (TinyBERT's learned ``nn.Linear(d_s, d_t)``); None
            compares the states directly, which needs ``d_s == d_t``.

    Returns:
        A scalar.
    """
    if student.dim() != 3 or teacher.dim() != 3:
        raise InputError(
            f"hidden states must be [B, S, d]; got student {shape_of(student)} and "
            f"teacher {shape_of(teacher)}"
        )
    if student.shape[:2] != teacher.shape[:2]:
        raise InputError(
            f"student states have shape {shape_of(student)} but teacher states have shape "
            f"{shape_of(teacher)}; batch and sequence sizes must agree"
        )
    projected = projection(student) if projection is not None else student
    if projected.shape != teacher.shape:
        hint = "" if projection is not None else "; pass a projection to the teacher width"
        raise InputError(
            f"student states have shape {shape_of(projected)}"
            f"{' after projection' if projection is not None else ''} but teacher states have "
            f"shape {shape_of(teacher)}{hint}"
        )
    valid = _token_mask(mask, teacher.shape[0], teacher.shape[1], teacher.device)
    per_token = (projected - teacher.detach()).square().mean(dim=-1)
    return masked_mean(per_token, valid)


def embedding_mse(
    student: torch.Tensor,
    teacher: torch.Tensor,
    mask: torch.Tensor | None = None,
    projection: nn.Module | None = None,
) -> torch.Tensor:
    """Embedding-layer loss of TinyBERT: ``MSE(E_S W_e, E_T)`` over valid tokens.

    The same computation as :func:`hidden_mse`, applied to the embedding outputs (hidden state
    index 0); TinyBERT gives it its own projection ``W_e``.
    """
    return hidden_mse(student, teacher, mask, projection)


def _pair_mask(mask: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor:
    """A bool mask broadcastable to ``scores`` ``[B, H, S_q, S_k]`` from the caller's mask."""
    B, _, Sq, Sk = scores.shape
    if mask is None:
        return torch.ones(B, 1, Sq, Sk, dtype=torch.bool, device=scores.device)
    m = mask.to(scores.device) != 0
    if m.dim() == 2 and tuple(m.shape) == (B, Sk):
        pair = m[:, None, None, :]
        if Sq == Sk:
            pair = pair & m[:, None, :, None]
        return pair
    if m.dim() == 3 and tuple(m.shape) == (B, Sq, Sk):
        return m[:, None]
    if m.dim() == 4 and m.shape[0] == B and m.shape[2:] == (Sq, Sk) and m.shape[1] in (1, scores.shape[1]):
        return m
    raise InputError(
        f"the attention mask has shape {shape_of(mask)}; for scores of shape {shape_of(scores)} "
        f"give a key-padding mask ({B}, {Sk}) or a pair mask ({B}, {Sq}, {Sk})"
    )


def attention_score_mse(
    student: torch.Tensor,
    teacher: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    average_heads: bool = False,
    masked_below: float = MASKED_BELOW,
) -> torch.Tensor:
    """Attention-based loss of TinyBERT: MSE between raw attention scores, before the softmax.

    ``loss = mean_{(b, h, i, j) ∈ V} (A^S_bhij - A^T_bhij)²`` with ``A = Q Kᵀ / √d_head`` and V the
    valid entries. TinyBERT compares the unnormalised scores rather than the probabilities
    because that converged faster and better in its ablations.

    Heads: the student and teacher must have the same number of heads, compared head by head.
    With ``average_heads=True`` each side is first averaged over its heads (``[B, 1, S, S]``),
    which also allows different head counts.

    Masking: an entry is left out of the loss when ``mask`` excludes it (a key-padding mask
    ``[B, S_k]`` excludes padded keys, and padded queries too when ``S_q == S_k``; a pair mask
    ``[B, S_q, S_k]`` or ``[B, 1 or H, S_q, S_k]`` excludes the pairs it marks zero), or when
    either side's score there is not finite or is ``<= masked_below`` (already masked by the
    model, e.g. with ``finfo.min`` or an additive ``-1e4``; this also covers the block structure of
    a split encoder's lower layers). Such values are replaced by 0 before any arithmetic, so no
    ``inf`` or ``nan`` reaches the loss or its gradient.

    Args:
        student: ``[B, H_s, S_q, S_k]`` raw scores of one student layer.
        teacher: ``[B, H_t, S_q, S_k]`` raw scores of the mapped teacher layer (detached).
        mask: optional, see above.
        average_heads: average over heads before comparing (needed when ``H_s != H_t``).
        masked_below: scores at or below this are treated as masked.

    Returns:
        A scalar (0 when no entry is valid).
    """
    if student.dim() != 4 or teacher.dim() != 4:
        raise InputError(
            f"attention scores must be [B, heads, S_q, S_k]; got student {shape_of(student)} and "
            f"teacher {shape_of(teacher)}"
        )
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise InputError(
            f"student attention scores have shape {shape_of(student)} but teacher scores have "
            f"shape {shape_of(teacher)}; batch and sequence sizes must agree"
        )
    if student.shape[1] != teacher.shape[1] and not average_heads:
        raise InputError(
            f"the student has {student.shape[1]} attention heads and the teacher "
            f"{teacher.shape[1]} (shapes {shape_of(student)} and {shape_of(teacher)}); "
            "pass average_heads=True to compare head averages"
        )
    teacher = teacher.detach()
    ok_s = torch.isfinite(student) & (student > masked_below)
    ok_t = torch.isfinite(teacher) & (teacher > masked_below)
    zero = torch.zeros((), dtype=student.dtype, device=student.device)
    s = torch.where(ok_s, student, zero)
    t = torch.where(ok_t, teacher, zero)
    pair = _pair_mask(mask, student)
    if average_heads:
        # An entry is only comparable if every head on both sides saw it; masking is per position
        # in practice, so this loses nothing.
        valid = ok_s.all(dim=1, keepdim=True) & ok_t.all(dim=1, keepdim=True) & pair.all(dim=1, keepdim=True)
        s = s.mean(dim=1, keepdim=True)
        t = t.mean(dim=1, keepdim=True)
    else:
        valid = ok_s & ok_t & pair
    return masked_mean((s - t).square(), valid)


class IntermediateDistillation(nn.Module):
    """The intermediate-layer terms of TinyBERT: embedding, hidden-state and attention losses.

    Owns the learned projections from the student's width to the teacher's: one ``W_h`` shared by
    every hidden layer and a separate ``W_e`` for the embedding layer, as in Jiao et al. Their
    parameters must be given to the optimiser together with the student's; they are discarded after
    training.

    Student layer ``m`` (1-based) learns from teacher layer ``layer_map[m]``; the embedding layer
    (index 0) from the teacher's embedding layer. The hidden and attention terms are summed over
    the student's layers ``1..M``, as in the paper (each layer weighted 1).

    Args:
        student_dim: the student's hidden width ``d_s``.
        teacher_dim: the teacher's hidden width ``d_t``.
        n_student_layers: M.
        n_teacher_layers: N.
        layer_map: ``M + 1`` teacher indices with ``layer_map[0] == 0``; defaults to
            :func:`uniform_layer_map`.
        student_embedding_dim: width of the student's embedding output if it differs from
            ``student_dim``.
        teacher_embedding_dim: likewise for the teacher.
        average_heads: see :func:`attention_score_mse`.
        masked_below: see :func:`attention_score_mse`.
        embedding, hidden, attention: which terms to compute.
    """

    def __init__(
        self,
        student_dim: int,
        teacher_dim: int,
        n_student_layers: int,
        n_teacher_layers: int,
        *,
        layer_map: Sequence[int] | None = None,
        student_embedding_dim: int | None = None,
        teacher_embedding_dim: int | None = None,
        average_heads: bool = False,
        masked_below: float = MASKED_BELOW,
        embedding: bool = True,
        hidden: bool = True,
        attention: bool = True,
    ) -> None:
        super().__init__()
        if layer_map is None:
            layer_map = uniform_layer_map(n_student_layers, n_teacher_layers)
        layer_map = [int(i) for i in layer_map]
        if len(layer_map) != n_student_layers + 1 or layer_map[0] != 0:
            raise ConfigError(
                f"layer_map must hold {n_student_layers + 1} teacher indices starting with 0 (the "
                f"embedding layer), got {layer_map}"
            )
        if any(not 1 <= i <= n_teacher_layers for i in layer_map[1:]):
            raise ConfigError(
                f"layer_map entries after the first must be teacher layers 1..{n_teacher_layers}, "
                f"got {layer_map}"
            )
        if not (embedding or hidden or attention):
            raise ConfigError("at least one of embedding, hidden and attention must be enabled")
        self.n_student_layers = n_student_layers
        self.n_teacher_layers = n_teacher_layers
        self.layer_map = layer_map
        self.average_heads = average_heads
        self.masked_below = masked_below
        self.use_embedding = embedding
        self.use_hidden = hidden
        self.use_attention = attention
        self.hidden_projection = nn.Linear(student_dim, teacher_dim) if hidden else None
        self.embedding_projection = (
            nn.Linear(student_embedding_dim or student_dim, teacher_embedding_dim or teacher_dim)
            if embedding
            else None
        )

    def forward(
        self,
        student_hidden: Sequence[torch.Tensor],
        teacher_hidden: Sequence[torch.Tensor],
        student_attentions: Sequence[torch.Tensor] | None = None,
        teacher_attentions: Sequence[torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Compute the enabled terms.

        Args:
            student_hidden: ``M + 1`` states ``[B, S, d_s]``, embedding output first.
            teacher_hidden: ``N + 1`` states ``[B, S, d_t]``, embedding output first.
            student_attentions: ``M`` raw score tensors ``[B, heads, S, S]``, layer 1 first
                (needed when the attention term is enabled).
            teacher_attentions: ``N`` raw score tensors, layer 1 first.
            mask: optional ``[B, S]`` attention mask (zero marks padding), used by every term.

        Returns:
            ``{"embedding": ..., "hidden": ..., "attention": ...}`` (the enabled ones), hidden and
            attention summed over the student's layers.
        """
        M, N = self.n_student_layers, self.n_teacher_layers
        terms: dict[str, torch.Tensor] = {}
        if self.use_embedding or self.use_hidden:
            if len(student_hidden) != M + 1 or len(teacher_hidden) != N + 1:
                raise InputError(
                    f"expected {M + 1} student and {N + 1} teacher hidden states (embedding output "
                    f"first), got {len(student_hidden)} and {len(teacher_hidden)}"
                )
        if self.use_embedding:
            terms["embedding"] = embedding_mse(
                student_hidden[0], teacher_hidden[0], mask, self.embedding_projection
            )
        if self.use_hidden:
            terms["hidden"] = torch.stack(
                [
                    hidden_mse(student_hidden[m], teacher_hidden[self.layer_map[m]], mask, self.hidden_projection)
                    for m in range(1, M + 1)
                ]
            ).sum()
        if self.use_attention:
            if student_attentions is None or teacher_attentions is None:
                raise InputError("the attention term needs student_attentions and teacher_attentions")
            if len(student_attentions) != M or len(teacher_attentions) != N:
                raise InputError(
                    f"expected {M} student and {N} teacher attention score tensors (layer 1 "
                    f"first), got {len(student_attentions)} and {len(teacher_attentions)}"
                )
            terms["attention"] = torch.stack(
                [
                    attention_score_mse(
                        student_attentions[m - 1],
                        teacher_attentions[self.layer_map[m] - 1],
                        mask,
                        average_heads=self.average_heads,
                        masked_below=self.masked_below,
                    )
                    for m in range(1, M + 1)
                ]
            ).sum()
        return terms

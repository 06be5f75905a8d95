"""DeFormer's upper-layer mimicry (Cao et al., 2020, "DeFormer: Decomposing Pre-trained
Transformers for Faster Question Answering").

A split (decomposed) student runs its lower layers ``1..L`` on the query and the document
separately and its upper layers ``L+1..T`` jointly; it starts from the teacher's weights, so both
have the same depth T and width. DeFormer trains it with

``L = α_task · L_task + α_kd · L_kd + α_mimicry · L_lrs``

where ``L_lrs`` (layer representation similarity) pulls the student's upper-layer states towards
the teacher's at the same layers; that sum is the training objective's hard, soft and mimicry
terms (:mod:`lateint.training.losses.objective`).

Layer indices follow ``hidden_states`` of ``transformers``: index 0 is the embedding output, index
``m`` the output of layer ``m``; both lists hold ``T + 1`` tensors ``[B, S, d]`` whose token
positions must correspond.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lateint.errors import ConfigError, InputError
from lateint.training.losses.intermediate import hidden_mse

__all__ = ["upper_layer_mimicry"]


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

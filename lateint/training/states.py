"""A ranker's forward pass that also returns every layer's states and attention scores.

Intermediate-layer distillation (TinyBERT) and DeFormer's mimicry compare a student's and a
teacher's states token by token, so both must lay out a pair the same way: every pair is the
concatenation ``[query side (padded) | document side (padded)]`` at every layer, for any split
(see :class:`~lateint.modeling.split_encoder.SplitEncoderOutput`). A teacher at split 0 run this
way computes exactly its packed-sequence function (positions come from the position ids, padding
from the key mask), so student token ``i`` and teacher token ``i`` are the same token of the same
pair as long as both are given the same sides (:func:`capture_forward` takes the sides and lets
each model place them with its own layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lateint.ranker import SplitRanker
from lateint.tokenization import SideBatch, SideTokens


@dataclass
class CapturedForward:
    """Scores and per-layer internals of a batch of aligned pairs.

    Attributes:
        scores: ``[B]`` pair scores (equal to ``ranker(queries, docs)``).
        hidden: ``T + 1`` states ``[B, Sq + Sd, H]``, embedding output first.
        attentions: ``T`` raw attention scores ``[B, heads, Sq + Sd, Sq + Sd]`` (layer 1 first), or
            None when not asked for.
        mask: ``[B, Sq + Sd]`` bool, True for real tokens.
    """

    scores: torch.Tensor
    hidden: list[torch.Tensor]
    attentions: list[torch.Tensor] | None
    mask: torch.Tensor


def pair_batches(
    ranker: SplitRanker, q_sides: Sequence[SideTokens], d_sides: Sequence[SideTokens]
) -> tuple[SideBatch, SideBatch]:
    """Batches of aligned query and document sides placed by ``ranker``'s layout."""
    return ranker.pair_batches(q_sides, d_sides)


def capture_forward(
    ranker: SplitRanker,
    q_sides: Sequence[SideTokens],
    d_sides: Sequence[SideTokens],
    *,
    attentions: bool = True,
) -> CapturedForward:
    """Run ``ranker`` on aligned pairs of tokenized sides, keeping every layer's output.

    Differentiable (the student) or under ``no_grad`` (the teacher) alike. ``attentions=False``
    skips the attention scores and uses the faster fused attention.
    """
    qb, db = ranker.pair_batches(q_sides, d_sides)
    out = ranker.encode_pairs(qb, db, output_hidden_states=True, output_attentions=attentions)
    return CapturedForward(ranker.head(out), out.hidden_states, out.attentions, out.mask)

"""A ranker's forward pass that also returns every layer's states and attention scores.

Intermediate-layer distillation (TinyBERT) and DeFormer's mimicry compare a student's and a
teacher's states token by token, so both must lay out a pair the same way. Here every pair is the
concatenation ``[query side (padded) | document side (padded)]`` at every layer, for any split:

* layers below the split run on each side alone (the efficient split path); their states are
  concatenated afterwards and their attention scores are placed on the block diagonal of an
  ``S x S`` matrix whose cross-side blocks hold ``finfo.min`` (masked: those entries do not
  exist, and the attention losses leave out scores that low);
* the joint layers run on the concatenated sequence, as :meth:`SplitEncoder.encode_joint` does.

A teacher at split 0 run this way computes exactly its packed-sequence function (positions come
from the position ids, padding from the key mask), so student token ``i`` and teacher token ``i``
are the same token of the same pair as long as both are given the same sides
(:func:`capture_forward` takes the sides and lets each model place them with its own layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lateint.modeling.heads import ClsHead
from lateint.modeling.layers import layer_forward
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


def _block_diagonal(q_scores: torch.Tensor, d_scores: torch.Tensor) -> torch.Tensor:
    B, h, Sq, _ = q_scores.shape
    Sd = d_scores.shape[-1]
    full = q_scores.new_full((B, h, Sq + Sd, Sq + Sd), torch.finfo(q_scores.dtype).min)
    full[:, :, :Sq, :Sq] = q_scores
    full[:, :, Sq:, Sq:] = d_scores
    return full


def forward_with_states(
    ranker: SplitRanker, queries: SideBatch, docs: SideBatch, *, attentions: bool = True
) -> CapturedForward:
    """Run ``ranker`` on aligned pairs through its split path, keeping every layer's output.

    Differentiable (the student) or under ``no_grad`` (the teacher) alike. ``attentions=False``
    skips the attention scores and uses the faster fused attention.
    """
    encoder = ranker.encoder
    queries, docs = queries.to(ranker.device), docs.to(ranker.device)
    L, T = ranker.split, ranker.num_layers
    q, d = encoder.embed(queries), encoder.embed(docs)
    q_mask, d_mask = queries.mask, docs.mask
    hidden = [torch.cat([q, d], dim=1)]
    scores_out: list[torch.Tensor] = []
    for i in range(L):
        layer = encoder.layers[i]
        if attentions:
            q, qs = layer_forward(layer, q, q_mask, return_scores=True)
            d, ds = layer_forward(layer, d, d_mask, return_scores=True)
            scores_out.append(_block_diagonal(qs, ds))
        else:
            q, d = layer_forward(layer, q, q_mask), layer_forward(layer, d, d_mask)
        hidden.append(torch.cat([q, d], dim=1))
    mask = torch.cat([q_mask, d_mask], dim=1)
    joint = hidden[-1]
    for i in range(L, T):
        if attentions:
            joint, s = layer_forward(encoder.layers[i], joint, mask, return_scores=True)
            scores_out.append(s)
        else:
            joint = layer_forward(encoder.layers[i], joint, mask)
        hidden.append(joint)
    Sq = q_mask.shape[1]
    if isinstance(ranker.head, ClsHead):
        scores = ranker.head(joint[:, 0])
    else:
        scores = ranker.head(joint[:, :Sq], q_mask, joint[:, Sq:], d_mask)
    return CapturedForward(scores, hidden, scores_out if attentions else None, mask)


def pair_batches(
    ranker: SplitRanker, q_sides: Sequence[SideTokens], d_sides: Sequence[SideTokens]
) -> tuple[SideBatch, SideBatch]:
    """Batches of aligned query and document sides placed by ``ranker``'s layout."""
    tok = ranker.pair_tokenizer
    qb = tok.query_batch(q_sides)
    lengths = [len(s) for s in q_sides] if tok.doc_positions_depend_on_query else None
    return qb, tok.doc_batch(d_sides, lengths)


def capture_forward(
    ranker: SplitRanker,
    q_sides: Sequence[SideTokens],
    d_sides: Sequence[SideTokens],
    *,
    attentions: bool = True,
) -> CapturedForward:
    """:func:`forward_with_states` on tokenized sides, placed by the ranker's own layout.

    Give a student and a teacher the same sides (tokenized once, by either) and their captured
    sequences are aligned token by token.
    """
    qb, db = pair_batches(ranker, q_sides, d_sides)
    return forward_with_states(ranker, qb, db, attentions=attentions)

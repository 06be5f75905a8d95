"""Running one ``transformers`` encoder layer: the efficient way and the reference way.

The efficient runner reuses the layer's own submodules (query/key/value projections, output
projection with its residual LayerNorm, feed-forward) and does the attention itself with
``scaled_dot_product_attention``, so that it can (a) take a key-padding mask without building an
``S x S`` mask, (b) compute only some query rows (the last layer of a [CLS] head needs one row)
and (c) take keys and values computed elsewhere (from a cache).

The reference runner calls the ``transformers`` layer module itself with a full additive mask, so
the tests compare our attention against the library's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _heads(layer: nn.Module) -> tuple[int, int]:
    attn = layer.attention.self
    n = getattr(attn, "num_attention_heads", None) or attn.config.num_attention_heads
    return n, attn.attention_head_size


def project_keys_values(layer: nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of ``hidden`` ``[B, S, H]`` in ``layer``, as ``[B, heads, S, head_dim]``."""
    attn = layer.attention.self
    n, d = _heads(layer)
    B, S, _ = hidden.shape
    k = attn.key(hidden).view(B, S, n, d).transpose(1, 2)
    v = attn.value(hidden).view(B, S, n, d).transpose(1, 2)
    return k, v


def layer_forward(
    layer: nn.Module,
    hidden: torch.Tensor,
    key_mask: torch.Tensor,
    *,
    first_only: bool = False,
    keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
    return_scores: bool = False,
):
    """Run one encoder layer with a key-padding mask.

    Args:
        layer: a BERT-family layer (``BertLayer``, ``ElectraLayer``, ``RobertaLayer`` ...).
        hidden: ``[B, S, H]`` input states.
        key_mask: ``[B, S]`` bool, True where a token may be attended to.
        first_only: compute the output of row 0 only (returns ``[B, 1, H]``); keys and values are
            still taken from every row.
        keys_values: precomputed keys and values ``[B, heads, S, head_dim]`` for all S rows; when
            given, only the queries are projected here.
        return_scores: also return the raw attention scores (before softmax, mask applied), which
            intermediate-layer distillation needs; this takes the slower explicit path.

    Returns:
        The layer output ``[B, S or 1, H]`` (and the scores ``[B, heads, S_q, S]`` if asked).
    """
    attn = layer.attention.self
    n, d = _heads(layer)
    rows = hidden[:, :1] if first_only else hidden
    B, R, _ = rows.shape
    q = attn.query(rows).view(B, R, n, d).transpose(1, 2)
    k, v = keys_values if keys_values is not None else project_keys_values(layer, hidden)
    dropout = attn.dropout.p if layer.training else 0.0
    allowed = key_mask[:, None, None, :]
    if return_scores:
        scores = torch.matmul(q, k.transpose(-1, -2)) * (d**-0.5)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=layer.training)
        context = torch.matmul(probs, v)
    else:
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
    context = context.transpose(1, 2).reshape(B, R, n * d)
    attended = layer.attention.output(context, rows)
    out = layer.output(layer.intermediate(attended), attended)
    return (out, scores) if return_scores else out


def reference_layer_forward(layer: nn.Module, hidden: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Run one layer through its own ``transformers`` forward with a full ``[B, S, S]`` bool mask."""
    additive = torch.zeros(allowed.shape, dtype=hidden.dtype, device=hidden.device)
    additive = additive.masked_fill(~allowed, torch.finfo(hidden.dtype).min)[:, None]
    out = layer(hidden, attention_mask=additive)
    return out[0] if isinstance(out, tuple) else out


def first_row_over_blocks(
    layer: nn.Module,
    first_row: torch.Tensor,
    query_kv: tuple[torch.Tensor, torch.Tensor],
    query_mask: torch.Tensor,
    doc_kv: tuple[torch.Tensor, torch.Tensor],
    doc_mask: torch.Tensor,
) -> torch.Tensor:
    """Row 0 of a layer whose keys and values are one query block shared by every candidate
    followed by each candidate's document block.

    This is the last layer of a [CLS] head at L = T - 1 with cached document keys and values: the
    softmax runs over the two blocks' scores side by side, so the query's keys and values are
    never copied once per candidate, and the documents' keys and values are read where they lie
    (heads merged, as stored) instead of being copied into a per-head layout first.

    Args:
        first_row: ``[1, 1, H]`` the query's row-0 state entering the layer.
        query_kv: the query's keys and values ``[1, heads, Sq, d]``; ``query_mask`` ``[1, Sq]``.
        doc_kv: the candidates' keys and values ``[B, Sd, H]`` (heads merged; any strides whose
            last is 1, e.g. the two halves of one stored keys-and-values row); ``doc_mask`` ``[B, Sd]``.

    Returns:
        ``[B, 1, H]``, the layer's output at row 0 for each candidate.
    """
    attn = layer.attention.self
    n, d = _heads(layer)
    dk, dv = doc_kv
    B, Sd, H = dk.shape
    q = attn.query(first_row).view(n, d) * (d**-0.5)
    low = torch.finfo(q.dtype).min
    s_q = torch.matmul(q.view(1, n, 1, d), query_kv[0].transpose(-1, -2)).masked_fill(~query_mask[:, None, None, :], low)
    # One query row: a broadcast product and sum beats a batched matmul, which would first copy
    # the keys into a per-head layout.
    s_d = (dk.view(B, Sd, n, d) * q).sum(-1).transpose(1, 2).masked_fill(~doc_mask[:, None, :], low)  # [B, n, Sd]
    probs = torch.cat([s_q.view(1, n, -1).expand(B, -1, -1), s_d], dim=-1).softmax(dim=-1)
    width = s_q.shape[-1]
    from_query = torch.matmul(probs[..., :width].unsqueeze(2), query_kv[1]).view(B, n * d)
    from_docs = torch.einsum("bhs,bshd->bhd", probs[..., width:], dv.view(B, Sd, n, d))
    context = (from_query + from_docs.reshape(B, n * d)).view(B, 1, n * d)
    rows = first_row.expand(B, 1, first_row.shape[-1])
    attended = layer.attention.output(context, rows)
    return layer.output(layer.intermediate(attended), attended)

"""Running one ``transformers`` encoder layer: the efficient way and the reference way.

The efficient runner reuses the layer's own submodules through the family's
:class:`~lateint.modeling.backbones.LayerOps` (query/key/value projections, output projection with
its residual and norm, feed-forward) and does the attention itself with
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

from lateint.errors import ConfigError
from lateint.modeling.backbones import LayerContext, ops_for


def project_keys_values(layer: nn.Module, hidden: torch.Tensor, ctx: LayerContext | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of ``hidden`` ``[B, S, H]`` in ``layer``, as ``[B, heads, S, head_dim]``."""
    return ops_for(layer).keys_values(layer, hidden, ctx or LayerContext(None))


def layer_forward(
    layer: nn.Module,
    hidden: torch.Tensor,
    key_mask: torch.Tensor,
    *,
    first_only: bool = False,
    keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
    return_scores: bool = False,
    ctx: LayerContext | None = None,
):
    """Run one encoder layer with a key-padding mask.

    Args:
        layer: an encoder layer of a supported family (see :mod:`lateint.modeling.backbones`).
        hidden: ``[B, S, H]`` input states.
        key_mask: ``[B, S]`` bool, True where a token may be attended to.
        first_only: compute the output of row 0 only (returns ``[B, 1, H]``); keys and values are
            still taken from every row.
        keys_values: precomputed keys and values ``[B, heads, S, head_dim]`` for all S rows; when
            given, only the queries are projected here.
        return_scores: also return the raw attention scores (before softmax, mask applied), which
            intermediate-layer distillation needs; this takes the slower explicit path.
        ctx: the pass's :class:`LayerContext` (the positions of the S rows).

    Returns:
        The layer output ``[B, S or 1, H]`` (and the scores ``[B, heads, S_q, S]`` if asked).
    """
    ops = ops_for(layer)
    ctx = ctx or LayerContext(None)
    row_ctx = ctx.rows(1) if first_only else ctx
    rows = hidden[:, :1] if first_only else hidden
    B, R, _ = rows.shape
    q = ops.query(layer, rows, row_ctx)
    k, v = keys_values if keys_values is not None else ops.keys_values(layer, hidden, ctx)
    dropout = ops.attention_dropout(layer) if layer.training else 0.0
    allowed = ops.allowed(layer, key_mask, row_ctx, ctx)
    bias = ops.bias(layer, q, k, row_ctx, ctx)
    scale = ops.scale(layer)
    if return_scores or bias is not None:
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        if bias is not None:
            scores = scores + bias
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=layer.training)
        context = torch.matmul(probs, v)
    else:
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout, scale=scale)
    context = context.transpose(1, 2).reshape(B, R, -1)
    out = ops.finish(layer, context, rows)
    return (out, scores) if return_scores else out


def reference_layer_forward(layer: nn.Module, hidden: torch.Tensor, allowed: torch.Tensor,
                            ctx: LayerContext | None = None) -> torch.Tensor:
    """Run one layer through its own ``transformers`` forward with a full ``[B, S, S]`` bool mask."""
    return ops_for(layer).reference(layer, hidden, allowed, ctx or LayerContext(None))


# Rows per chunk of packed keys or values: 3 MiB of fp32 for a 384-wide model, small enough to stay
# in the CPU's caches; of 512, 1024, 2048 and 4096 the fastest on the DL19 top-100.
_PACKED_CHUNK = 2048


def first_row_over_packed(
    layer: nn.Module,
    first_row: torch.Tensor,
    query_kv: tuple[torch.Tensor, torch.Tensor],
    query_mask: torch.Tensor,
    doc_kv: tuple[torch.Tensor, torch.Tensor],
    doc_lengths: torch.Tensor,
) -> torch.Tensor:
    """Row 0 of a layer whose keys and values are one query block shared by every candidate
    followed by each candidate's document block.

    This is the last layer of a [CLS] head at L = T - 1 with cached document keys and values. Each
    candidate's softmax runs over the query block's scores and its own rows' side by side, so the
    query's keys and values are never copied once per candidate. The documents' rows lie back to
    back, not padded: scores, per-candidate maxima and sums run over the packed rows, so no padded
    row is read or multiplied (length-sorted batches of the DL19 top-100 are about 40% padding).

    Args:
        first_row: ``[1, 1, H]`` the query's row-0 state entering the layer.
        query_kv: the query's keys and values ``[1, heads, Sq, d]``; ``query_mask`` ``[1, Sq]``.
        doc_kv: keys and values ``[N, H]`` (heads merged; last stride 1) of all candidates' rows,
            candidate i's ``doc_lengths[i]`` rows following candidate i - 1's; in the layer's
            dtype or a narrower float one (fp16 as stored), widened as they are read.
        doc_lengths: int64 ``[B]``.

    Returns:
        ``[B, 1, H]``, the layer's output at row 0 for each candidate.
    """
    ops = ops_for(layer)
    if not ops.packed_first_row:
        raise ConfigError(f"{type(layer).__name__}: the [CLS] row over packed keys and values needs position-free attention.")
    n, d = ops.heads(layer)
    dk, dv = doc_kv
    N = dk.shape[0]
    B = doc_lengths.shape[0]
    q = ops.query(layer, first_row, LayerContext(None)).reshape(n, d) * ops.scale(layer)
    s_q = torch.matmul(q.view(n, 1, d), query_kv[0][0].transpose(-1, -2)).view(n, -1)
    s_q = s_q.masked_fill(~query_mask[0], float("-inf"))  # [n, Sq]
    # Rows are read in chunks, so the products (and the widening of stored fp16 rows) stay in the
    # CPU's caches instead of making batch-sized temporaries.
    chunks = [slice(a, min(a + _PACKED_CHUNK, N)) for a in range(0, N, _PACKED_CHUNK)]
    rows_buffer = q.new_empty(min(N, _PACKED_CHUNK), n, d)  # one chunk of rows, widened, reused
    product = torch.empty_like(rows_buffer)
    s_d = q.new_empty(N, n)
    for c in chunks:
        m = c.stop - c.start
        rows_buffer[:m].copy_(dk[c].view(m, n, d))
        torch.mul(rows_buffer[:m], q, out=product[:m])
        torch.sum(product[:m], -1, out=s_d[c])
    owner = torch.repeat_interleave(torch.arange(B, device=dk.device), doc_lengths, output_size=N)
    # The softmax's shift, per candidate and head: the larger of the query block's and the
    # candidate's own largest score, so no candidate's weights can all underflow.
    shift = s_q.amax(-1).expand(B, n).contiguous()
    shift.scatter_reduce_(0, owner[:, None].expand(N, n), s_d, "amax")
    w_d = (s_d - shift[owner]).exp_()  # [N, n]
    w_q = (s_q - shift[:, :, None]).exp_()  # [B, n, Sq]
    total = w_q.sum(-1).index_add_(0, owner, w_d)  # [B, n]
    context = torch.matmul(w_q.unsqueeze(2), query_kv[1]).view(B, n, d)  # the query block's part
    for c in chunks:
        m = c.stop - c.start
        rows_buffer[:m].copy_(dv[c].view(m, n, d))
        torch.mul(rows_buffer[:m], w_d[c, :, None], out=product[:m])
        context.index_add_(0, owner[c], product[:m])
    context = (context / total[..., None]).view(B, 1, n * d)
    rows = first_row.expand(B, 1, first_row.shape[-1])
    return ops.finish(layer, context, rows)

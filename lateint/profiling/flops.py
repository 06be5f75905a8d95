"""Floating-point operation counts of the work left at query time.

Counts are multiply-adds times two, for the matrix products only (projections, attention, feed-
forward); LayerNorm, softmax and activations are a few percent at these sizes and are left out, so
"time / (FLOPs / matmul peak)" is a lower bound on how far a run is from the machine's limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class LayerShape:
    """Sizes of one transformer layer: hidden width H and feed-forward width I."""

    hidden: int
    intermediate: int

    @classmethod
    def of(cls, config) -> "LayerShape":
        """From a ``transformers`` config (DistilBERT names its feed-forward width ``hidden_dim``)."""
        intermediate = getattr(config, "intermediate_size", None) or config.hidden_dim
        return cls(int(config.hidden_size), int(intermediate))


def layer_flops(shape: LayerShape, rows: int, keys: int, *, project_keys: int | None = None) -> float:
    """FLOPs of one layer computing ``rows`` output rows that attend over ``keys`` keys.

    Args:
        rows: query rows computed (the whole sequence, or 1 for a [CLS]-only last layer).
        keys: keys attended to.
        project_keys: how many of the keys need their key/value projection computed here
            (default all of them; fewer when document keys/values come from a cache).
    """
    H, I = shape.hidden, shape.intermediate
    kp = keys if project_keys is None else project_keys
    q_proj = 2 * rows * H * H
    kv_proj = 2 * 2 * kp * H * H
    attention = 2 * 2 * rows * keys * H
    out_proj = 2 * rows * H * H
    ffn = 2 * 2 * rows * H * I
    return float(q_proj + kv_proj + attention + out_proj + ffn)


def encode_flops(shape: LayerShape, layers: int, length: int) -> float:
    """FLOPs of running ``layers`` full layers over one sequence of ``length`` tokens."""
    return layers * layer_flops(shape, length, length)


def rerank_flops(
    shape: LayerShape,
    num_layers: int,
    split: int,
    query_length: int,
    doc_lengths: Sequence[int],
    *,
    cls_only_last: bool = True,
    cached_keys_values: bool = False,
) -> float:
    """FLOPs to re-rank ``doc_lengths`` cached candidates for one query at split L.

    The query's first L layers run once; each candidate then runs the T - L joint layers over
    ``query_length + doc_length`` tokens, with only the [CLS] row in the last layer when
    ``cls_only_last``; when the first joint layer's keys and values are cached, the documents'
    come from the cache and the query's are projected once per query, not per candidate. At L = T the joint part is empty (twin heads cost a dot product per candidate).
    """
    T, L = num_layers, split
    total = encode_flops(shape, L, query_length)
    if L == T:
        return total + 2.0 * shape.hidden * len(doc_lengths)
    if cached_keys_values:
        # The query's keys and values in the first joint layer are projected once per query.
        total += 2 * 2 * query_length * shape.hidden * shape.hidden
    for d in doc_lengths:
        S = query_length + d
        for layer in range(L, T):
            last = layer == T - 1
            rows = 1 if (cls_only_last and last) else S
            project = 0 if (cached_keys_values and layer == L) else S
            total += layer_flops(shape, rows, S, project_keys=project)
    return total

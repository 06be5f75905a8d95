"""The roofline bound of a re-ranking: the larger of its arithmetic time and its memory time.

``bound = max(FLOPs / matmul peak, bytes moved / memory bandwidth)``. At the slow end of the dial
the joint layers' arithmetic dominates; at the fast end (a few query tokens, one [CLS] row or a dot
product per candidate) a query moves more bytes than it multiplies: the layer weights it runs
(read from DRAM on every pass when they do not fit in the last-level cache) and the cached
document representations it reads. Both rates are measured on the machine
(:func:`lateint.profiling.machine.matmul_peak`, :func:`lateint.profiling.machine.memory_bandwidth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def roofline_seconds(flops: float, bytes_moved: float, peak_flops: float, bandwidth: float) -> float:
    """``max(flops / peak_flops, bytes_moved / bandwidth)`` (rates per second)."""
    if not peak_flops > 0 or not bandwidth > 0:
        raise ValueError(f"peak ({peak_flops}) and bandwidth ({bandwidth}) must be positive")
    return max(flops / peak_flops, bytes_moved / bandwidth)


@dataclass(frozen=True)
class RerankBytes:
    """What one query's re-ranking reads from memory, in bytes."""

    query_weights: float  #: the lower L layers' weights (the query side runs once)
    joint_weights: float  #: the T - L joint layers' weights, as often as they are read from DRAM
    cache: float  #: the candidates' cached representations

    @property
    def total(self) -> float:
        return self.query_weights + self.joint_weights + self.cache


def rerank_bytes(layer_weight_bytes: float, num_layers: int, split: int, candidates: int, batch_size: int,
                 cache_bytes_per_doc: float, last_level_cache: int | None) -> RerankBytes:
    """Bytes one query moves from DRAM at split L, in the steady state of many queries.

    Weights count only when the layers a query runs exceed the last-level cache (otherwise they stay
    resident from one query to the next): then the query's L layers are read once and the T - L
    joint layers once per batch of ``batch_size`` candidates. Each candidate's
    ``cache_bytes_per_doc`` is read once. ``layer_weight_bytes``: one layer's weights in the precision
    they run in; ``last_level_cache`` None counts the weights as never resident.
    """
    weights = num_layers * layer_weight_bytes
    cached = cache_bytes_per_doc * candidates
    if last_level_cache is not None and weights <= last_level_cache:
        return RerankBytes(0.0, 0.0, float(cached))
    batches = math.ceil(candidates / batch_size) if num_layers > split else 0
    return RerankBytes(float(split * layer_weight_bytes), float((num_layers - split) * layer_weight_bytes * batches),
                       float(cached))

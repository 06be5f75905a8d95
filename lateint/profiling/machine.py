"""Measuring the machine: the matrix-multiply peak that FLOP bounds are taken against."""

from __future__ import annotations

import time

import torch


def matmul_peak(size: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """Best sustained FLOP/s of a square ``size`` matrix product (after a warm-up)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def linear_peak(size: int = 2048, repeats: int = 10, quantization: str = "none") -> float:
    """Best sustained FLOP/s of a ``size x size`` Linear layer on ``size`` rows with the CPU
    inference kernel of :mod:`lateint.modeling.linear_kernels` (packed fp32, or dynamic int8),
    so that rows run by those kernels are held against their own peak."""
    from torch import nn

    from lateint.modeling.linear_kernels import use_fast_linears

    layer = nn.Linear(size, size)
    use_fast_linears(layer, quantization)
    x = torch.randn(size, size)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(2):
            layer(x)
        for _ in range(repeats):
            start = time.perf_counter()
            layer(x)
            best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best

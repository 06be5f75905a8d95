"""Measuring the machine: the matrix-multiply peak that FLOP bounds are taken against."""

from __future__ import annotations

import time

import torch


def _best_seconds(run, repeats: int, sync=lambda: None) -> float:
    """The fastest of ``repeats`` timed calls of ``run``, after two warm-up calls."""
    for _ in range(2):
        run()
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        run()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak(size: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """Best sustained FLOP/s of a square ``size`` matrix product (after a warm-up)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    return 2.0 * size**3 / _best_seconds(lambda: a @ b, repeats, sync)


def linear_peak(size: int = 2048, repeats: int = 10, quantization: str = "none") -> float:
    """Best sustained FLOP/s of a ``size x size`` Linear layer on ``size`` rows with the CPU
    inference kernel of :mod:`lateint.modeling.linear_kernels` (packed fp32, or dynamic int8),
    so that rows run by those kernels are held against their own peak."""
    from torch import nn

    from lateint.modeling.linear_kernels import use_fast_linears

    layer = nn.Linear(size, size)
    use_fast_linears(layer, quantization)
    x = torch.randn(size, size)
    with torch.inference_mode():
        return 2.0 * size**3 / _best_seconds(lambda: layer(x), repeats)


def memory_bandwidth(mib: int = 512, repeats: int = 5, device: str = "cpu") -> float:
    """Best sustained bytes/s of copying a ``mib`` MiB buffer (read once, written once), measured as
    :func:`matmul_peak` measures FLOP/s. Pick ``mib`` well above the last-level cache."""
    n = mib * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    return 2.0 * src.numel() * 4 / _best_seconds(lambda: dst.copy_(src), repeats, sync)


def last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The size of the CPU's largest (last-level) cache in bytes, from sysfs; None where unknown."""
    from pathlib import Path

    best = None
    for index in Path(root).glob("index*"):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            size = int(text.rstrip("KMG")) * scale
        except ValueError:
            continue
        if best is None or level > best[0] or (level == best[0] and size > best[1]):
            best = (level, size)
    return None if best is None else best[1]

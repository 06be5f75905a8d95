"""The roofline bound: its two terms, the bytes a re-ranking moves, and the machine measurements."""

from __future__ import annotations

import pytest

from lateint.profiling.machine import last_level_cache_bytes, memory_bandwidth
from lateint.profiling.roofline import rerank_bytes, roofline_seconds


def test_the_bound_is_the_larger_of_arithmetic_and_memory_time():
    assert roofline_seconds(2e9, 1e6, peak_flops=1e11, bandwidth=1e10) == pytest.approx(0.02)   # compute-bound
    assert roofline_seconds(1e6, 2e9, peak_flops=1e11, bandwidth=1e10) == pytest.approx(0.2)    # memory-bound
    with pytest.raises(ValueError):
        roofline_seconds(1, 1, 0, 1)


def test_rerank_bytes():
    layer = 7.1e6  # a MiniLM layer in fp32 (1.77M parameters x 4 bytes); 42.6 MB for the six
    llc = 32 * 2**20
    # fp32 exceeds the last-level cache: the query side once, the joint layer once per batch (4 of 32)
    b = rerank_bytes(layer, 6, 5, 100, 32, cache_bytes_per_doc=69_000, last_level_cache=llc)
    assert (b.query_weights, b.joint_weights, b.cache) == (5 * layer, 4 * layer, 6.9e6)
    assert b.total == pytest.approx(9 * layer + 6.9e6)
    assert rerank_bytes(layer, 6, 0, 100, 32, 0, last_level_cache=llc).joint_weights == 6 * layer * 4
    # bf16 halves the weights, which then stay resident: only the cache is read
    half = rerank_bytes(layer / 2, 6, 5, 100, 32, 69_000, last_level_cache=llc)
    assert (half.query_weights, half.joint_weights, half.cache) == (0.0, 0.0, 6.9e6)
    # the twin end: no joint layers; unknown cache size counts the weights as never resident
    twin = rerank_bytes(layer, 6, 6, 100, 32, 768, last_level_cache=None)
    assert (twin.query_weights, twin.joint_weights, twin.cache) == (6 * layer, 0.0, 76_800.0)


def test_the_machine_measurements(tmp_path):
    assert memory_bandwidth(mib=8, repeats=1) > 1e8  # any machine copies more than 100 MB/s
    for level, size in ((1, "48K"), (2, "2048K"), (3, "105M")):
        folder = tmp_path / f"index{level}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "size").write_text(f"{size}\n")
    assert last_level_cache_bytes(str(tmp_path)) == 105 * 2**20
    assert last_level_cache_bytes(str(tmp_path / "none")) is None

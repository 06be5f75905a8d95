"""Gathering into reused buffers gives what fresh buffers give, padding included."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from lateint.cache.checksums import crc32
from lateint.cache.fields import FieldSpec
from lateint.cache.writer import CacheWriter


def test_crc32_is_zlibs_crc32():
    rng = np.random.default_rng(0)
    for n in (0, 1, 1500, 100_003):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32(data) == zlib.crc32(data)


def test_workspace_gather_equals_fresh_gather_and_zeroes_padding(tmp_path):
    from lateint.cache.reader import CacheReader

    rng = np.random.default_rng(0)
    lengths = {f"d{i}": int(n) for i, n in enumerate([3, 9, 1, 6, 12])}
    values = {d: rng.standard_normal((n, 8)).astype(np.float32) for d, n in lengths.items()}
    with CacheWriter.open(tmp_path / "c", fields=[FieldSpec("x", "fp16", 8)], metadata={}) as w:
        for d, v in values.items():
            w.add(d, {"x": v})
    reader = CacheReader.open(tmp_path / "c")
    workspace: dict = {}
    # The long batch first, so that the later short batches' padding rows hold stale data.
    for ids in (["d4", "d1"], ["d0", "d2", "d3"], ["d2", "d0"], ["d4"]):
        fresh, fresh_mask = reader.gather_padded(ids, "x")
        reused, mask = reader.gather_padded(ids, "x", workspace=workspace)
        assert torch.equal(mask, fresh_mask)
        assert torch.equal(reused, fresh)
        assert torch.count_nonzero(reused[~mask]) == 0
        for row, d in enumerate(ids):
            np.testing.assert_allclose(reused[row, : lengths[d]].numpy(), values[d], atol=2e-3, rtol=1e-3)

"""Packed fp32 products pad their rows to a few bucket sizes, so that oneDNN's per-row-count memory
stays bounded over a long re-rank (whose row counts follow the candidates' lengths); the padding
changes no result."""

from __future__ import annotations

import torch
from torch import nn

from lateint.modeling.linear_kernels import packed_fp32_available, row_bucket, use_fast_linears


def test_buckets_are_few_and_close():
    counts = range(1, 20001)
    buckets = {row_bucket(r) for r in counts}
    assert all(r <= row_bucket(r) <= max(64, r * 1.125) for r in counts)
    assert len(buckets) <= 64 + 8 * 9  # exact up to 64, then about eight sizes per doubling


def test_padded_products_equal_the_plain_ones():
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(24, 40))
    reference = nn.Linear(24, 40)
    reference.load_state_dict(layer[0].state_dict())
    use_fast_linears(layer)
    with torch.inference_mode():
        for rows in (3, 65, 100, 777):
            x = torch.randn(rows // 3 + 1, 3, 24)
            got, want = layer(x), reference(x)
            assert got.shape == want.shape
            assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
            # the padded rows are independent of the real ones: same result as without padding
            if packed_fp32_available():
                alone = torch.cat([layer(x[i:i + 1]) for i in range(len(x))])
                assert torch.allclose(got, alone, atol=1e-5, rtol=1e-5)

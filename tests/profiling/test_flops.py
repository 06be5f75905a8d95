"""Hand-checked FLOP counts."""

from __future__ import annotations

import pytest

from lateint.profiling.flops import LayerShape, encode_flops, layer_flops, rerank_flops

SHAPE = LayerShape(hidden=4, intermediate=8)


def test_one_layer_by_hand():
    # rows = keys = 3, H = 4, I = 8:
    # Q 2*3*4*4 = 96, K+V 2*2*3*4*4 = 192, scores+context 2*2*3*3*4 = 144, out 96, FFN 2*2*3*4*8 = 384
    assert layer_flops(SHAPE, 3, 3) == 96 + 192 + 144 + 96 + 384


def test_cls_row_and_cached_keys():
    # One row attending over 5 keys, only 2 of which are projected here:
    # Q 2*1*16 = 32, K+V 2*2*2*16 = 128, attention 2*2*1*5*4 = 80, out 32, FFN 2*2*1*32 = 128
    assert layer_flops(SHAPE, 1, 5, project_keys=2) == 32 + 128 + 80 + 32 + 128


def test_rerank_sums_query_and_joint_work():
    T, L, q, docs = 3, 1, 2, [3, 4]
    expected = encode_flops(SHAPE, 1, 2)
    for d in docs:
        S = q + d
        expected += layer_flops(SHAPE, S, S) + layer_flops(SHAPE, 1, S)
    assert rerank_flops(SHAPE, T, L, q, docs) == pytest.approx(expected)
    twin = rerank_flops(SHAPE, T, T, q, docs)
    assert twin == pytest.approx(encode_flops(SHAPE, T, q) + 2 * 4 * 2)
    # More split layers leave less work per candidate.
    costs = [rerank_flops(SHAPE, T, split, q, docs * 50) for split in range(T + 1)]
    assert costs == sorted(costs, reverse=True)


def test_cached_keys_values_project_the_query_once():
    T, L, q, docs = 2, 1, 2, [3, 4]
    expected = encode_flops(SHAPE, 1, 2) + 2 * 2 * q * 4 * 4
    for d in docs:
        expected += layer_flops(SHAPE, 1, q + d, project_keys=0)
    assert rerank_flops(SHAPE, T, L, q, docs, cached_keys_values=True) == pytest.approx(expected)

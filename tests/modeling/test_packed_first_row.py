"""The last layer's [CLS] row over packed cached keys and values (L = T - 1, kv cache) against the
``transformers`` layer itself run on each candidate's padded query + document sequence."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from lateint.modeling import layers
from lateint.modeling.layers import first_row_over_packed, project_keys_values, reference_layer_forward


def _layer(seed: int = 0) -> BertLayer:
    torch.manual_seed(seed)
    config = BertConfig(hidden_size=64, num_attention_heads=4, intermediate_size=128, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertLayer(config).eval()


def _merged(x: torch.Tensor) -> torch.Tensor:  # [1, heads, S, d] -> [S, heads * d]
    return x[0].transpose(0, 1).reshape(x.shape[2], -1)


def _oracle(layer, query: torch.Tensor, docs: list[torch.Tensor]) -> torch.Tensor:
    """Row 0 of ``transformers``' layer over [query; doc] for each doc, padded, with a key mask."""
    width = query.shape[0] + max(d.shape[0] for d in docs)
    hidden = torch.zeros(len(docs), width, query.shape[1])
    allowed = torch.zeros(len(docs), width, width, dtype=torch.bool)
    for i, d in enumerate(docs):
        n = query.shape[0] + d.shape[0]
        hidden[i, :n] = torch.cat([query, d])
        allowed[i, :, :n] = True
    return reference_layer_forward(layer, hidden, allowed)[:, 0]


def _packed(layer, query: torch.Tensor, docs: list[torch.Tensor], dtype=torch.float32) -> torch.Tensor:
    q_kv = project_keys_values(layer, query[None])
    d_kv = [torch.cat([_merged(t) for t in project_keys_values(layer, d[None])], dim=-1) for d in docs]
    kv = torch.cat(d_kv).to(dtype)
    H = query.shape[1]
    lengths = torch.tensor([d.shape[0] for d in docs])
    mask = torch.ones(1, query.shape[0], dtype=torch.bool)
    return first_row_over_packed(layer, query[None, :1], q_kv, mask, (kv[:, :H], kv[:, H:]), lengths)[:, 0]


@pytest.mark.parametrize("chunk", [3, 7, 2048])  # chunks that split documents, and one that holds them all
def test_packed_first_row_equals_transformers_layer(monkeypatch, chunk):
    monkeypatch.setattr(layers, "_PACKED_CHUNK", chunk)
    layer = _layer()
    torch.manual_seed(1)
    query = torch.randn(5, 64)
    docs = [torch.randn(n, 64) for n in (4, 1, 9, 2, 6)]
    with torch.inference_mode():
        got, want = _packed(layer, query, docs), _oracle(layer, query, docs)
    assert got.shape == (5, 64)
    assert (got - want).abs().max() <= 1e-5


def test_one_candidates_extreme_scores_do_not_disturb_another():
    # One document's keys give scores ~1e3 above everything else: a softmax shifted by one maximum
    # shared across candidates would underflow every weight of the others (0 / 0).
    layer = _layer()
    torch.manual_seed(2)
    query = torch.randn(4, 64)
    loud = torch.randn(3, 64) * 300
    docs = [torch.randn(5, 64), loud, torch.randn(2, 64)]
    with torch.inference_mode():
        got, want = _packed(layer, query, docs), _oracle(layer, query, docs)
    assert torch.isfinite(got).all()
    assert (got - want).abs().max() <= 1e-4


def test_fp16_rows_are_widened_exactly():
    # Stored fp16 keys and values read as they are give what their fp32 widening gives.
    layer = _layer()
    torch.manual_seed(3)
    query = torch.randn(5, 64)
    docs = [torch.randn(n, 64) for n in (3, 8)]
    with torch.inference_mode():
        half = _packed(layer, query, docs, dtype=torch.float16)
        q_kv = project_keys_values(layer, query[None])
        kv = torch.cat([torch.cat([_merged(t) for t in project_keys_values(layer, d[None])], dim=-1) for d in docs])
        widened = kv.half().float()
        mask = torch.ones(1, 5, dtype=torch.bool)
        exact = first_row_over_packed(layer, query[None, :1], q_kv, mask, (widened[:, :64], widened[:, 64:]),
                                      torch.tensor([3, 8]))[:, 0]
    assert torch.equal(half, exact)

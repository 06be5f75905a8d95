"""Invariant 1: the efficient split path and the block-masked reference path give the same scores,
for every split, layout and head, on the real MiniLM and on tiny BERT/ELECTRA/RoBERTa models."""

from __future__ import annotations

import pytest
import torch

from lateint import SplitRanker
from lateint.config import LAYOUTS

HEADS_AT_T = [("twin", {"pooling": "mean", "crossing": "cosine"}),
              ("twin", {"pooling": "cls", "crossing": "dot"}),
              ("twin", {"pooling": "weighted", "crossing": "residual"}),
              ("maxsim", {}),
              ("dipair", {"dipair_tokens": 4, "dipair_layers": 2})]
ATOL = 2e-5


def _check(ranker: SplitRanker, queries, docs) -> float:
    fast = ranker.score(queries, docs, batch_size=2)
    ref = ranker.score(queries, docs, batch_size=3, reference=True)
    assert torch.isfinite(fast).all()
    diff = (fast - ref).abs().max().item()
    assert diff <= ATOL * max(1.0, ref.abs().max().item()), (ranker, fast, ref)
    return diff


@pytest.mark.parametrize("split", range(0, 7))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_minilm_every_split_and_layout_cls_head(minilm_path, pairs, split, layout):
    if split == 6:
        ranker = SplitRanker.from_pretrained(minilm_path, split=6, head="twin", layout=layout)
    else:
        ranker = SplitRanker.from_pretrained(minilm_path, split=split, head="cls", layout=layout, max_doc_length=96)
    _check(ranker, *pairs)


@pytest.mark.parametrize("head,options", HEADS_AT_T)
@pytest.mark.parametrize("split", [0, 2, 5, 6])
def test_minilm_pair_heads_at_several_splits(minilm_path, pairs, head, options, split):
    ranker = SplitRanker.from_pretrained(minilm_path, split=split, head=head, **options)
    _check(ranker, *pairs)


@pytest.mark.parametrize("family", ["bert", "electra", "roberta"])
@pytest.mark.parametrize("layers", [1, 2, 4])
def test_tiny_models_every_split_layout_head(tiny_model, pairs, family, layers):
    folder = tiny_model(family, layers)
    for split in range(layers + 1):
        for layout in LAYOUTS:
            heads = ([("cls", {})] if split < layers else []) + HEADS_AT_T
            for head, options in heads:
                ranker = SplitRanker.from_pretrained(folder, split=split, head=head, layout=layout,
                                                     max_query_length=12, max_doc_length=40, **options)
                _check(ranker, *pairs)


def test_split_really_changes_the_function(minilm_path, pairs):
    """The check above would pass for a split that is ignored; the scores must depend on L."""
    scores = [SplitRanker.from_pretrained(minilm_path, split=L, head="twin").score(*pairs) for L in (0, 3, 6)]
    assert (scores[0] - scores[1]).abs().max() > 1e-3
    assert (scores[1] - scores[2]).abs().max() > 1e-3


def test_forward_matches_reference_with_gradients(tiny_model, pairs):
    """The differentiable forward (training) agrees with the reference and back-propagates."""
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=64).eval()
    q = ranker.query_batch(ranker.query_sides(pairs[0]))
    d = ranker.doc_batch(ranker.doc_sides(pairs[1]))
    out = ranker(q, d)
    ref = ranker.forward_reference(q, d)
    assert torch.allclose(out, ref, atol=1e-5)
    out.sum().backward()
    grad = ranker.encoder.layers[0].attention.self.query.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_bfloat16_runs_both_paths_close_to_fp32(minilm_path, pairs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=3, head="twin")
    fp32 = ranker.score(*pairs)
    ranker.to(dtype=torch.bfloat16)
    fast, ref = ranker.score(*pairs), ranker.score(*pairs, reference=True)
    assert fast.dtype == torch.float32  # scores are returned as fp32 whatever the compute dtype
    assert (fast - fp32).abs().max() < 0.03 and (fast - ref).abs().max() < 0.03

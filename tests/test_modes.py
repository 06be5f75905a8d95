"""Evaluation mode for one call: every module off, and exactly the ones that were training back on."""

from __future__ import annotations

from torch import nn

from lateint import DocCache, SplitRanker, rerank
from lateint.modes import evaluating


def test_evaluating_restores_each_module_as_it_was():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2)))
    model.eval()
    model[2][0].train()  # a caller's own choice for one submodule
    before = [m.training for m in model.modules()]
    with evaluating(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before


def test_evaluating_restores_after_an_error():
    model = nn.Sequential(nn.Dropout(0.5)).train()
    try:
        with evaluating(model):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert all(m.training for m in model.modules())


def test_rerank_of_a_training_ranker_scores_without_dropout(tmp_path, minilm_path):
    ranker = SplitRanker.from_pretrained(minilm_path, split=5, head="cls", max_doc_length=32)
    docs = [("a", "a lobster roll is a sandwich"), ("b", "rain falls from clouds"), ("c", "the sea is salty")]
    cache = DocCache.build(ranker, docs, tmp_path / "kv", storage="fp32", precompute="kv", progress=False)
    expected = rerank(ranker, "lobster", ["a", "b", "c"], cache)
    ranker.train()
    assert rerank(ranker, "lobster", ["a", "b", "c"], cache) == expected
    assert all(m.training for m in ranker.modules())

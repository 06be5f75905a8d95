"""The PreTTR compressor: tuning through the frozen joint layers brings the scores of decompressed
states closer to the scores of the original states than the auto-encoder alone, and leaves the
ranker untouched."""

from __future__ import annotations

import pytest
import torch

from lateint import ConfigError, DocCache, SplitRanker
from lateint.cache.compression import StateCompressor, train_compressor, tune_compressor


@pytest.fixture(scope="module")
def ranker(minilm_path):
    return SplitRanker.from_pretrained(minilm_path, split=3, head="twin", max_doc_length=64)


@pytest.fixture(scope="module")
def lists(pairs):
    queries, docs = pairs
    unique_docs = list(dict.fromkeys(docs))
    return [(q, unique_docs) for q in dict.fromkeys(queries)]


def cached_scores(ranker, compressor, docs, query, folder):
    ids = [f"doc-{i}" for i in range(len(docs))]
    cache = DocCache.build(ranker, list(zip(ids, docs)), folder, storage="fp32", compressor=compressor, progress=False)
    return torch.tensor(list(ranker.rerank(query, ids, cache).values()))


def centred_error(scores, exact):
    return ((scores - scores.mean()) - (exact - exact.mean())).abs().max().item()


def test_tuning_keeps_scores_better_than_the_auto_encoder(tmp_path, ranker, lists):
    docs = lists[0][1]
    before = {k: v.clone() for k, v in ranker.state_dict().items()}
    flags = [p.requires_grad for p in ranker.parameters()]
    # A deliberately narrow code (16 of 384 dims) so that the auto-encoder loses ranking information.
    auto, _ = train_compressor(ranker, docs * 4, dim=16, steps=60, seed=0)
    tuned = StateCompressor(auto.hidden_size, auto.dim)
    tuned.load_state_dict(auto.state_dict())
    tuned, info = tune_compressor(ranker, tuned, lists, steps=80, group=5, lr=3e-3, seed=0)
    assert info.final_loss < 0.5 * info.initial_loss
    assert info.lists == len(lists) and info.steps == 80

    for k, v in ranker.state_dict().items():
        assert torch.equal(v, before[k]), f"tune_compressor changed the ranker's {k}"
    assert [p.requires_grad for p in ranker.parameters()] == flags

    err_auto, err_tuned = 0.0, 0.0
    for i, (query, candidates) in enumerate(lists):
        exact = ranker.score([query] * len(candidates), candidates)
        err_auto = max(err_auto, centred_error(cached_scores(ranker, auto, candidates, query, tmp_path / f"a{i}"), exact))
        err_tuned = max(err_tuned, centred_error(cached_scores(ranker, tuned, candidates, query, tmp_path / f"t{i}"), exact))
    assert err_tuned < err_auto


def test_tuning_is_seeded(ranker, lists):
    def run():
        torch.manual_seed(0)
        comp = StateCompressor(ranker.encoder.hidden_size, 32)
        return tune_compressor(ranker, comp, lists, steps=3, group=3, seed=7)[0].state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_tuning_refuses_bad_input(minilm_path, ranker, lists):
    comp = StateCompressor(ranker.encoder.hidden_size, 32)
    with pytest.raises(ConfigError, match="two or more candidates"):
        tune_compressor(ranker, comp, [("q", ["only one"])], steps=1)
    with pytest.raises(ConfigError, match="hidden size"):
        tune_compressor(ranker, StateCompressor(128, 32), lists, steps=1)
    twin = SplitRanker.from_pretrained(minilm_path, max_doc_length=64)  # L = T: nothing is cached as states
    with pytest.raises(ConfigError, match="0 < split < T"):
        tune_compressor(twin, comp, lists, steps=1)

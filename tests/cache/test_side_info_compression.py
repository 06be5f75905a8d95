"""SDR-style side information: a compressor that also reads each token's static embedding.

The cache stores the codes plus the token ids and types, and query time rebuilds the static
embeddings from them: cached scores equal the in-memory ``decompress(compress(states, static),
static)`` scoring exactly; the side information is used (it reconstructs better than a plain
compressor of the same width); save, load and the cache's settings keep it; misuse is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lateint import ConfigError, DocCache, SplitRanker, rerank
from lateint.cache.compression import StateCompressor, train_compressor
from lateint.training.compressor import simulate_storage, train_compressor_through_ranker

QUERY = "what is a lobster roll"


@pytest.fixture(scope="module")
def ranker(minilm_path):
    return SplitRanker.from_pretrained(minilm_path, split=1, head="twin", num_layers=2, max_query_length=16,
                                       max_doc_length=48)


@pytest.fixture(scope="module")
def texts(pairs):
    return list(dict.fromkeys(pairs[1]))


@pytest.fixture(scope="module")
def side_comp(ranker, texts):
    return train_compressor(ranker, texts * 3, dim=8, steps=120, seed=0, side_info=True)


def _in_memory(ranker, comp, docs: list[str], storage: str = "fp32") -> np.ndarray:
    with torch.no_grad():
        qb = ranker.query_batch(ranker.query_sides([QUERY] * len(docs)))
        db = ranker.doc_batch(ranker.doc_sides(docs))
        static = ranker.encoder.embed(db)
        codes = simulate_storage(comp.compress(ranker.lower_states(db), static), storage)
        return ranker.score_states(ranker.lower_states(qb), qb.mask, comp.decompress(codes, static), db.mask).numpy()


def test_side_information_reconstructs_better_than_the_same_width_without(ranker, texts, side_comp):
    _, with_side = side_comp
    _, plain = train_compressor(ranker, texts * 3, dim=8, steps=120, seed=0)
    assert with_side.initial_mse > with_side.final_mse
    assert with_side.final_mse < 0.7 * plain.final_mse


@pytest.mark.parametrize("storage", ["fp32", "int8"])
def test_cache_rebuilds_the_static_embeddings_from_stored_ids(tmp_path, ranker, texts, side_comp, storage):
    comp, _ = side_comp
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    cache = DocCache.build(ranker, docs, tmp_path / "c", storage=storage, compressor=comp, batch_size=3, progress=False)
    fields = cache.info()["fields"]
    assert fields["states"]["shape"] == [8]
    assert fields["input_ids"]["codec"] == "raw-uint16" and fields["input_ids"]["bytes_per_token"] == 2
    assert fields["token_type_ids"]["bytes_per_token"] == 1
    assert cache.settings["compression_side_info"] is True
    ids = [d for d, _ in docs][::-1]
    got = rerank(ranker, QUERY, ids, cache)
    want = dict(zip([d for d, _ in docs], _in_memory(ranker, comp, texts, storage).tolist()))
    assert max(abs(got[d] - want[d]) for d in ids) <= 1e-5
    # Reopened, the cache brings its compressor back with the side information.
    reopened = DocCache.open(tmp_path / "c")
    assert reopened.compressor.side_info
    assert rerank(ranker, QUERY, ids, reopened) == got


def test_plain_compressors_keep_their_cache_settings(tmp_path, ranker, texts):
    comp, _ = train_compressor(ranker, texts, dim=8, steps=2, seed=0)
    cache = DocCache.build(ranker, [("d0", texts[0])], tmp_path / "c", compressor=comp, progress=False)
    assert "compression_side_info" not in cache.settings
    assert set(cache.info()["fields"]) == {"states"}


def test_save_and_load_keep_side_information(tmp_path, side_comp):
    comp, _ = side_comp
    comp.save(tmp_path / "comp")
    loaded = StateCompressor.load(tmp_path / "comp")
    assert loaded.side_info and loaded.dim == 8
    x, s = torch.randn(5, comp.hidden_size), torch.randn(5, comp.hidden_size)
    with torch.no_grad():
        assert torch.equal(loaded(x, s), comp(x, s))


def test_static_embeddings_are_required_and_aligned(side_comp):
    comp, _ = side_comp
    x = torch.randn(2, 3, comp.hidden_size)
    with pytest.raises(ConfigError, match="takes side information"):
        comp.compress(x)
    with pytest.raises(ConfigError, match="aligned"):
        comp.decompress(torch.randn(2, 3, 8), torch.randn(2, 4, comp.hidden_size))


def test_through_the_ranker_with_side_information(ranker, texts, side_comp):
    groups = [(QUERY, texts[:4]), ("how do plants make energy", texts[4:8])]
    comp, student, info = train_compressor_through_ranker(ranker, groups, dim=8, steps=3, queries_per_step=2,
                                                          docs_per_query=3, reconstruction_steps=2, seed=0,
                                                          side_info=True)
    assert comp.side_info and info.steps == 3
    scores = _in_memory(student, comp, texts[:3])
    assert np.isfinite(scores).all()
    with pytest.raises(ConfigError, match="side information"):
        train_compressor_through_ranker(ranker, groups, dim=8, steps=1, init=side_comp[0], side_info=False)

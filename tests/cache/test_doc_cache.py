"""Invariant 4: scores from cached document representations equal end-to-end scores (exactly in
fp32, within stated tolerances for fp16, int8 and learned compression); a cache refuses a ranker
it was not built for; interrupted builds resume; corruption is detected."""

from __future__ import annotations

import pytest
import torch

from lateint import CacheMismatchError, ConfigError, CorruptionError, DocCache, InputError, SplitRanker, rerank
from lateint.cache.compression import train_compressor
from lateint.errors import MissingResourceError

QUERY = "what is a lobster roll"
# Tolerances on scores of the real MiniLM relative to fp32 states (cosine scores lie in [-1, 1];
# cls logits of a seeded head are of order 1).
TOLERANCE = {"fp32": 1e-6, "fp16": 1e-3, "int8": 1e-2}


@pytest.fixture(scope="module")
def docs(pairs):
    return [(f"doc-{i}", t) for i, t in enumerate(dict.fromkeys(pairs[1]))]


def end_to_end(ranker, docs):
    return ranker.score([QUERY] * len(docs), [t for _, t in docs])


CASES = [(0, "cls", {}), (2, "cls", {}), (5, "cls", {}), (3, "twin", {}), (6, "twin", {}),
         (6, "twin", {"pooling": "weighted", "crossing": "residual"}), (6, "maxsim", {}), (6, "dipair", {})]


@pytest.mark.parametrize("split,head,options", CASES)
@pytest.mark.parametrize("storage", ["fp32", "fp16", "int8"])
def test_cached_scores_equal_end_to_end(tmp_path, minilm_path, docs, split, head, options, storage):
    ranker = SplitRanker.from_pretrained(minilm_path, split=split, head=head, max_doc_length=64, **options)
    cache = DocCache.build(ranker, docs, tmp_path / "c", storage=storage, batch_size=2, progress=False)
    ids = [i for i, _ in docs][::-1]  # request order differs from build order
    got = rerank(ranker, QUERY, ids, cache)
    assert list(got) == ids
    expected = dict(zip([i for i, _ in docs], end_to_end(ranker, docs).tolist()))
    diff = max(abs(got[i] - expected[i]) for i in ids)
    # fp32 differs from end-to-end only by float rounding (batches of other shapes round differently).
    assert diff <= TOLERANCE[storage]


@pytest.mark.parametrize("split,head", [(2, "cls"), (5, "cls"), (3, "twin")])
def test_cached_keys_values(tmp_path, minilm_path, docs, split, head):
    ranker = SplitRanker.from_pretrained(minilm_path, split=split, head=head, max_doc_length=64)
    cache = DocCache.build(ranker, docs, tmp_path / "kv", storage="fp32", precompute="kv", progress=False)
    fields = cache.reader_fields()
    assert "keys_values" in fields
    assert ("states" in fields) == (not (split == 5 and head == "cls"))  # L = T-1 with cls: K/V only
    got = torch.tensor(list(rerank(ranker, QUERY, [i for i, _ in docs], cache).values()))
    assert (got - end_to_end(ranker, docs)).abs().max() <= 1e-6


@pytest.mark.parametrize("storage", ["fp32", "fp16"])
def test_keys_values_only_read_packed_in_chunks(tmp_path, minilm_path, docs, monkeypatch, storage):
    # Chunks of 16 rows split documents; fp16 rows are read as stored and widened chunk by chunk.
    from lateint.modeling import layers

    monkeypatch.setattr(layers, "_PACKED_CHUNK", 16)
    ranker = SplitRanker.from_pretrained(minilm_path, split=5, head="cls", max_doc_length=64)
    cache = DocCache.build(ranker, docs, tmp_path / "kv", storage=storage, precompute="kv", progress=False)
    ids = [i for i, _ in docs]
    assert sum(cache.lengths(ids)) > 3 * 16
    got = torch.tensor(list(rerank(ranker, QUERY, ids, cache, batch_size=3).values()))
    assert (got - end_to_end(ranker, docs)).abs().max() <= TOLERANCE[storage]


def test_learned_compression(tmp_path, minilm_path, docs, pairs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=3, head="twin", max_doc_length=64)
    comp, info = train_compressor(ranker, [t for _, t in docs] * 4, dim=96, steps=150, seed=0)
    assert info.final_mse < 0.5 * info.initial_mse
    cache = DocCache.build(ranker, docs, tmp_path / "comp", storage="fp16", compressor=comp, progress=False)
    assert cache.info()["fields"]["states"]["shape"] == [96]
    got = torch.tensor(list(rerank(ranker, QUERY, [i for i, _ in docs], cache).values()))
    exact = end_to_end(ranker, docs)
    assert (got - exact).abs().max() < 0.1
    reopened = DocCache.open(tmp_path / "comp")
    assert reopened.compressor is not None and reopened.compressor.dim == 96


def test_fingerprint_mismatch(tmp_path, minilm_path, docs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)
    cache = DocCache.build(ranker, docs, tmp_path / "c", progress=False)
    other_split = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", max_doc_length=64)
    with pytest.raises(CacheMismatchError, match="split: cache 3 vs ranker 2"):
        rerank(other_split, QUERY, ["doc-0"], cache)
    other_weights = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)
    with torch.no_grad():
        other_weights.encoder.layers[1].output.dense.bias.add_(1e-3)
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(other_weights, QUERY, ["doc-0"], cache)
    # Upper layers and the cls head are not in the cache: changing them keeps it valid.
    upper = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)
    with torch.no_grad():
        upper.encoder.layers[4].output.dense.bias.add_(1e-3)
    rerank(upper, QUERY, ["doc-0"], cache)
    # Building into the same folder with another configuration is refused too.
    with pytest.raises(CacheMismatchError):
        DocCache.build(other_split, docs, tmp_path / "c", progress=False)


def test_interrupted_build_resumes_without_loss_or_duplicates(tmp_path, minilm_path, docs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)

    def interrupted():
        for n, item in enumerate(docs):
            if n == 3:
                raise KeyboardInterrupt
            yield item

    with pytest.raises(KeyboardInterrupt):
        DocCache.build(ranker, interrupted(), tmp_path / "c", batch_size=1, chunk_docs=1, shard_size=1, progress=False)
    with pytest.raises(MissingResourceError, match="incomplete"):
        DocCache.open(tmp_path / "c")
    cache = DocCache.build(ranker, docs, tmp_path / "c", batch_size=1, chunk_docs=1, shard_size=1, progress=False)
    assert cache.last_build.documents_skipped == 3 and cache.last_build.documents_added == len(docs) - 3
    assert sorted(cache.reader.iter_ids()) == sorted(i for i, _ in docs)
    fresh = DocCache.build(ranker, docs, tmp_path / "fresh", batch_size=1, progress=False)
    for doc_id, _ in docs:
        assert torch.equal(cache.gather([doc_id], "states")[0], fresh.gather([doc_id], "states")[0])


def test_corrupted_shard_is_detected(tmp_path, minilm_path, docs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", max_doc_length=64)
    DocCache.build(ranker, docs, tmp_path / "c", shard_size=2, progress=False)
    data = sorted((tmp_path / "c").rglob("states*"))[0]
    raw = bytearray(data.read_bytes())
    raw[10] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(CorruptionError, match="checksum|rebuild"):
        DocCache.open(tmp_path / "c").verify()


def test_bad_inputs(tmp_path, minilm_path, docs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", max_doc_length=64)
    with pytest.raises(InputError, match="empty text"):
        DocCache.build(ranker, [("a", "text"), ("b", "  ")], tmp_path / "e", progress=False)
    with pytest.raises(InputError, match="must be strings"):
        DocCache.build(ranker, [(7, "text")], tmp_path / "f", progress=False)
    with pytest.raises(ConfigError, match="storage='bf8' is unknown"):
        DocCache.build(ranker, docs, tmp_path / "g", storage="bf8", progress=False)
    packed = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", layout="packed", max_doc_length=64)
    with pytest.raises(ConfigError, match="cannot be cached"):
        DocCache.build(packed, docs, tmp_path / "h", progress=False)
    cache = DocCache.build(ranker, docs, tmp_path / "ok", progress=False)
    with pytest.raises(InputError, match="not-there"):
        rerank(ranker, QUERY, ["doc-0", "not-there"], cache)
    with pytest.raises(MissingResourceError):
        DocCache.open(tmp_path / "nothing")

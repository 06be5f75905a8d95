"""Writing and reading a store: round trips, sharding, batches, lookups and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lateint.cache import CacheReader, CacheWriter, FieldSpec, IncompleteCacheError
from lateint.errors import CacheMismatchError, ConfigError, InputError, MissingResourceError

META = {"fingerprint": "abc123", "split": 3, "layers": [1, 2]}


def build(kit, path, docs, **kwargs):
    with CacheWriter.open(path, fields=kit.fields(), metadata=META, **kwargs) as writer:
        kit.add_all(writer, docs)
    return CacheReader.open(path, expected_metadata=META)


def test_round_trip_across_shards_is_exact(tmp_path, kit):
    docs = kit.make_docs(40)
    reader = build(kit, tmp_path / "c", docs, shard_size=7)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["complete"] and [s["docs"] for s in manifest["shards"]] == [7, 7, 7, 7, 7, 5]
    assert sum(s["tokens"]["states"] for s in manifest["shards"]) == sum(len(d["states"]) for d in docs.values())
    kit.assert_store_equals(reader, docs)
    # per shard: ids, and per field a data, an offsets and a CRC file; plus 3 index files
    assert reader.verify() == {"shards": 6, "files": 6 * 10 + 3, "bytes": reader.info()["bytes"], "docs": 40}


def test_requests_in_any_order_with_repeats(tmp_path, kit):
    docs = kit.make_docs(30)
    reader = build(kit, tmp_path / "c", docs, shard_size=4)
    ids = list(docs)[::-3] + [list(docs)[0]] * 2
    for doc_id, value in zip(ids, reader.get(ids, "states")):
        assert np.array_equal(value, docs[doc_id]["states"])
    assert reader.lengths(ids, "states").tolist() == [len(docs[d]["states"]) for d in ids]
    one_shard = [list(docs)[i] for i in (3, 1, 2, 3, 0)]  # all in shard 0, shuffled, one repeated
    for doc_id, value in zip(one_shard, reader.get(one_shard, "states")):
        assert np.array_equal(value, docs[doc_id]["states"])
    one = reader.get_doc(ids[0])
    assert set(one) == {"states", "input_ids", "pooled"} and one["input_ids"].dtype == np.int32


def test_gather_padded(tmp_path, kit):
    docs = kit.make_docs(25)
    reader = build(kit, tmp_path / "c", docs, shard_size=6)
    ids = ["7000000", "doc-1", "dóc/2#é", "doc-4", "7000009"]
    lens = [len(docs[d]["states"]) for d in ids]
    values, mask = reader.gather_padded(ids, "states")
    assert values.dtype == torch.float32 and mask.dtype == torch.bool
    assert values.shape == (5, max(lens), kit.DIM) and mask.sum(1).tolist() == lens
    for i, d in enumerate(ids):
        assert torch.equal(values[i, :lens[i]], torch.from_numpy(docs[d]["states"]))
        assert torch.all(values[i, lens[i]:] == 0)
    values, mask = reader.gather_padded(ids, "states", pad_to=20)
    assert values.shape[1] == 20 and not mask[:, max(lens):].any()
    with pytest.raises(InputError, match="pad_to=1 is shorter"):
        reader.gather_padded(ids, "states", pad_to=1)
    ids_t, ids_mask = reader.gather_padded(ids, "input_ids")
    assert ids_t.dtype == torch.int32 and ids_t.shape == (5, max(lens))
    pooled, pooled_mask = reader.gather_padded(ids, "pooled")
    assert pooled.shape == (5, 1, kit.DIM) and pooled_mask.all()


def test_gather_packed_lays_documents_back_to_back(tmp_path, kit):
    docs = kit.make_docs(25)
    reader = build(kit, tmp_path / "c", docs, shard_size=6)
    ids = ["7000000", "doc-1", "dóc/2#é", "doc-4", "7000009", "doc-1"]  # across shards, one repeated
    lens = [len(docs[d]["states"]) for d in ids]
    for workspace in (None, {}):
        values, lengths = reader.gather_packed(ids, "states", workspace=workspace)
        assert lengths.tolist() == lens and values.shape == (sum(lens), kit.DIM) and values.dtype == torch.float32
        assert torch.equal(values, torch.from_numpy(np.concatenate([docs[d]["states"] for d in ids])))
    # fp16 rows come back as stored when asked (the reader of them widens), decoded otherwise.
    stored, _ = reader.gather_packed(ids, "pooled", as_stored=True)
    decoded, _ = reader.gather_packed(ids, "pooled")
    assert stored.dtype == torch.float16 and decoded.dtype == torch.float32
    assert torch.equal(stored.float(), decoded)
    ids_t, _ = reader.gather_packed(ids, "input_ids", as_stored=True)  # not a float codec: decoded as usual
    assert ids_t.dtype == torch.int32 and ids_t.tolist() == [t for d in ids for t in docs[d]["input_ids"].tolist()]
    with CacheWriter.open(tmp_path / "int8", fields=kit.fields("int8"), metadata=META) as writer:
        kit.add_all(writer, docs)
    quantized = CacheReader.open(tmp_path / "int8", expected_metadata=META)
    packed, _ = quantized.gather_packed(ids, "states", as_stored=True)  # int8 needs decoding: it is decoded
    padded, mask = quantized.gather_padded(ids, "states")
    assert packed.dtype == torch.float32 and torch.equal(packed, padded[mask])


def test_padded_and_masked_batches_equal_lists(tmp_path, kit):
    docs = kit.make_docs(9)
    ids = list(docs)
    lens = [len(docs[d]["states"]) for d in ids]
    width = max(lens)
    padded = torch.zeros(len(ids), width, kit.DIM, dtype=torch.float64)  # any float dtype is accepted
    token_ids = torch.full((len(ids), width), -1)
    for i, d in enumerate(ids):
        padded[i, :lens[i]] = torch.from_numpy(docs[d]["states"]).double()
        token_ids[i, :lens[i]] = torch.from_numpy(docs[d]["input_ids"])
    mask = torch.arange(width)[None] < torch.tensor(lens)[:, None]
    pooled = np.stack([docs[d]["pooled"] for d in ids])
    with CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META, shard_size=4) as writer:
        stored = writer.add_batch(ids[:5], {"states": padded[:5], "input_ids": token_ids[:5], "pooled": pooled[:5]},
                                  lengths={"states": lens[:5], "input_ids": mask[:5]})
        stored += writer.add_batch(ids[5:], {"states": padded[5:], "input_ids": token_ids[5:], "pooled": pooled[5:]},
                                   lengths={"states": mask[5:], "input_ids": np.array(lens[5:])})
        assert stored == 9
        with pytest.raises(InputError, match="lengths must be"):
            writer.add_batch(["x"], {"states": padded[:1], "input_ids": token_ids[:1], "pooled": pooled[:1]},
                             lengths={"states": [width + 1], "input_ids": [1]})
    kit.assert_store_equals(CacheReader.open(tmp_path / "c"), docs)


def test_shards_sealed_by_bytes(tmp_path, kit):
    docs = kit.make_docs(30, max_len=10)
    # fp32 states: 32 bytes/token; int32 ids: 4; pooled fp16: 16 per doc.
    reader = build(kit, tmp_path / "c", docs, shard_size=1000, shard_bytes=600)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert len(manifest["shards"]) > 3
    for shard in manifest["shards"][:-1]:
        nbytes = sum(f["bytes"] for name, f in shard["files"].items() if name.endswith(".bin"))
        assert 600 <= nbytes < 600 + 10 * 36 + 16  # passes the limit by less than one document
    kit.assert_store_equals(reader, docs)


def test_int8_store_and_info(tmp_path, kit):
    rng = np.random.default_rng(5)
    states = {f"p{i}": rng.standard_normal((int(rng.integers(1, 9)), 384)).astype(np.float32) for i in range(12)}
    spec = [FieldSpec("states", "int8", 384), FieldSpec("small", "int8", 128)]  # a projected 128-d copy
    with CacheWriter.open(tmp_path / "c", fields=spec, metadata={}, shard_size=5) as writer:
        for doc_id, x in states.items():
            assert writer.add(doc_id, {"states": x, "small": x[:, :128]})
    reader = CacheReader.open(tmp_path / "c")
    for doc_id, y in zip(states, reader.get(list(states), "states")):
        scale = np.abs(states[doc_id]).max(axis=1, keepdims=True) / 127
        assert np.all(np.abs(y - states[doc_id]) <= scale / 2 * (1 + 1e-5))
    info = reader.info()
    tokens = sum(len(x) for x in states.values())
    assert info["docs"] == 12 and info["shards"] == 3 and info["metadata"] == {}
    assert info["fields"]["states"] == {"codec": "int8", "shape": [384], "length": None, "tokens": tokens,
                                        "bytes": 388 * tokens, "bytes_per_token": 388,
                                        "bytes_per_doc": 388 * tokens / 12, "mean_tokens": tokens / 12}
    assert info["fields"]["small"]["bytes_per_token"] == 132


def test_duplicates_are_skipped_or_refused(tmp_path, kit):
    docs = kit.make_docs(6)
    ids = list(docs)
    with CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META) as writer:
        assert kit.add_all(writer, docs, ids[:3]) == 3
        assert ids[0] in writer and writer.contains(ids[2]) and ids[4] not in writer
        assert writer.missing(ids) == ids[3:]
        assert not writer.add(ids[0], docs[ids[1]])  # skipped: the stored value is kept
        assert kit.add_all(writer, docs, [ids[3], ids[3], ids[1]]) == 1  # repeats inside a batch too
        assert writer.done_ids() == set(ids[:4]) and writer.num_docs == 4
    with CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META, duplicates="error") as writer:
        with pytest.raises(InputError, match="already stored"):
            kit.add_all(writer, docs, [ids[4], ids[0]])
        assert ids[4] not in writer  # nothing from the refused batch was written
        kit.add_all(writer, docs, ids[4:])
    kit.assert_store_equals(CacheReader.open(tmp_path / "c"), docs)


def test_unknown_ids_and_fields(tmp_path, kit):
    reader = build(kit, tmp_path / "c", kit.make_docs(10))
    with pytest.raises(InputError, match=r"2 of 3 doc ids are not in .*\['nope', '7000001x'\]"):
        reader.get(["nope", "7000000", "7000001x"], "states")
    with pytest.raises(InputError, match="no field 'colbert'"):
        reader.gather_padded(["7000000"], "colbert")
    assert reader.missing(["7000000", "zz"]) == ["zz"] and "doc-1" in reader and "doc-2" not in reader
    with pytest.raises(InputError, match="NUL"):
        reader.get(["a\x00"], "states")


def test_bad_documents_are_refused(tmp_path, kit):
    docs = kit.make_docs(3)
    d = docs["7000000"]
    with CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META) as writer:
        with pytest.raises(InputError, match="exactly the fields"):
            writer.add("a", {"states": d["states"]})
        with pytest.raises(InputError, match="shape"):
            writer.add("a", {**d, "states": d["states"][:, :3]})
        with pytest.raises(InputError, match="exactly 1 tokens"):
            writer.add("a", {**d, "pooled": np.zeros((2, kit.DIM), np.float32)})
        with pytest.raises(InputError, match="must be str"):
            writer.add(7, d)
        assert writer.num_docs == 0


def test_metadata_and_field_mismatch(tmp_path, kit):
    path = tmp_path / "c"
    build(kit, path, kit.make_docs(5))
    other = {**META, "split": 4, "pooling": "mean"}
    with pytest.raises(CacheMismatchError, match=r"differing keys: pooling, split.*new path.*delete"):
        CacheWriter.open(path, fields=kit.fields(), metadata=other)
    with pytest.raises(CacheMismatchError, match="differing keys: pooling, split"):
        CacheReader.open(path, expected_metadata=other)
    with pytest.raises(CacheMismatchError, match="stores fields"):
        CacheWriter.open(path, fields=kit.fields("fp16"), metadata=META)
    # Tuples and lists compare equal, as they do after a JSON round trip.
    assert len(CacheReader.open(path, expected_metadata={**META, "layers": (1, 2)})) == 5


def test_opening_errors(tmp_path, kit):
    with pytest.raises(MissingResourceError, match="does not exist"):
        CacheReader.open(tmp_path / "absent")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a document cache"):
        CacheWriter.open(tmp_path / "junk", fields=kit.fields(), metadata=META)
    with pytest.raises(ConfigError, match="unknown codec"):
        CacheWriter.open(tmp_path / "c", fields=[FieldSpec("x", "int4", 8)], metadata=META)
    writer = CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META)
    with pytest.raises(InputError, match="another CacheWriter"):
        CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META)
    with pytest.raises(IncompleteCacheError, match="incomplete.*Rerun the build with the same path"):
        CacheReader.open(tmp_path / "c")
    writer.close()
    assert len(CacheReader.open(tmp_path / "c")) == 0
    with pytest.raises(InputError, match="closed"):
        writer.add("x", {})


def test_empty_batch_and_empty_docs(tmp_path, kit):
    with CacheWriter.open(tmp_path / "c", fields=kit.fields(), metadata=META) as writer:
        assert writer.add_batch([], {"states": [], "input_ids": [], "pooled": []}) == 0
        empty = {"states": np.zeros((0, kit.DIM), np.float32), "input_ids": np.zeros(0, np.int64),
                 "pooled": np.ones((1, kit.DIM), np.float32)}
        assert writer.add("empty", empty)
    reader = CacheReader.open(tmp_path / "c")
    values, mask = reader.gather_padded(["empty"], "states")
    assert values.shape == (1, 0, kit.DIM) and mask.shape == (1, 0)
    assert reader.get(["empty"], "states")[0].shape == (0, kit.DIM)
    assert reader.get([], "states") == []

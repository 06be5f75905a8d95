"""Interrupted builds, damaged shards and how a rerun repairs them."""

from __future__ import annotations

import gc
import json
import shutil

import numpy as np
import pytest

from lateint.cache import CacheReader, CacheWriter, IncompleteCacheError
from lateint.errors import CorruptionError

META = {"fingerprint": "f00d"}


def manifest(path):
    return json.loads((path / "manifest.json").read_text())


def resume(kit, path, docs, **kwargs):
    """What a rerun of the build does: reopen, add only the missing ids, close."""
    with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7, **kwargs) as writer:
        todo = writer.missing(list(docs))
        kit.add_all(writer, docs, todo)
    return todo


def test_writer_dropped_without_close_resumes(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(40)
    ids = list(docs)
    writer = CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7)
    kit.add_all(writer, docs, ids[:24])  # 3 sealed shards of 7, 3 docs in the open shard
    assert (path / "shards" / ".tmp-000003").is_dir()
    del writer  # like a killed process: nothing more is written
    gc.collect()
    with pytest.raises(IncompleteCacheError, match="stopped after 21 documents in 3 sealed shards"):
        CacheReader.open(path)

    todo = resume(kit, path, docs)
    assert todo == ids[21:]  # the unsealed shard's docs are redone, the sealed ones are not
    assert not (path / "shards" / ".tmp-000003").exists()
    reader = CacheReader.open(path, expected_metadata=META)
    kit.assert_store_equals(reader, docs)
    reader.verify()
    assert resume(kit, path, docs) == []  # a rerun of a finished build does nothing
    kit.assert_store_equals(CacheReader.open(path), docs)


def test_exception_inside_with_block_keeps_added_docs(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(20)
    ids = list(docs)
    with pytest.raises(RuntimeError, match="out of memory"):
        with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7) as writer:
            kit.add_all(writer, docs, ids[:10])
            raise RuntimeError("out of memory")
    assert [s["docs"] for s in manifest(path)["shards"]] == [7, 3] and not manifest(path)["complete"]
    assert resume(kit, path, docs) == ids[10:]
    kit.assert_store_equals(CacheReader.open(path), docs)


def test_leftovers_of_a_crash_are_discarded(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(20)
    with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7) as writer:
        kit.add_all(writer, docs, list(docs)[:14])
        writer.abort()  # stop without close, as a crash would
    # A shard renamed into place but never listed (crash before the manifest update), and junk.
    shutil.copytree(path / "shards" / "000001", path / "shards" / "000002")
    (path / "shards" / ".tmp-000007").mkdir()
    assert resume(kit, path, docs) == list(docs)[14:]
    assert [s["name"] for s in manifest(path)["shards"]] == ["000000", "000001", "000002"]
    kit.assert_store_equals(CacheReader.open(path), docs)


def build(kit, path, docs):
    with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7) as writer:
        kit.add_all(writer, docs)


def flip_byte(file, position=None):
    data = bytearray(file.read_bytes())
    i = len(data) // 2 if position is None else position
    data[i] ^= 0x40
    file.write_bytes(bytes(data))


def test_flipped_byte_is_caught_by_verify_and_repaired(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(30)
    build(kit, path, docs)
    damaged = path / "shards" / "000002" / "states.bin"
    flip_byte(damaged)
    reader = CacheReader.open(path)  # sizes are unchanged: only the checksum can tell
    with pytest.raises(CorruptionError, match=r"shards/000002/states\.bin: sha256 checksum mismatch.*Delete the "
                                              r"shard folders named.*rerun the build"):
        reader.verify()
    stored = [raw.decode("utf-8") for raw in np.load(path / "shards" / "000002" / "ids.npy").tolist()]
    # The advertised fix: delete the shard, rerun the build; only that shard's docs are recomputed.
    shutil.rmtree(path / "shards" / "000002")
    with pytest.raises(CorruptionError, match="000002.*missing"):
        CacheReader.open(path)
    with pytest.warns(UserWarning, match="shard 000002 is damaged"):
        todo = resume(kit, path, docs)
    assert sorted(todo) == sorted(stored) and len(todo) == 7
    reader = CacheReader.open(path)
    reader.verify()
    kit.assert_store_equals(reader, docs)


def test_writer_verify_drops_a_corrupt_shard(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(21)
    build(kit, path, docs)
    flip_byte(path / "shards" / "000001" / "input_ids.bin")
    assert resume(kit, path, docs) == []  # a cheap reopen checks sizes only
    with pytest.warns(UserWarning, match="000001 is damaged.*checksum"):
        todo = resume(kit, path, docs, verify=True)
    assert len(todo) == 7
    CacheReader.open(path).verify()
    kit.assert_store_equals(CacheReader.open(path), docs)


def test_truncation_is_caught_on_open(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(21)
    build(kit, path, docs)
    data = path / "shards" / "000000" / "states.bin"
    data.write_bytes(data.read_bytes()[:-5])
    with pytest.raises(CorruptionError, match=r"000000/states\.bin: \d+ bytes, the manifest records \d+"):
        CacheReader.open(path)
    with pytest.warns(UserWarning, match="000000 is damaged"):
        assert len(resume(kit, path, docs)) == 7
    kit.assert_store_equals(CacheReader.open(path), docs)


def test_damaged_index_is_rebuilt(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(15)
    build(kit, path, docs)
    index = path / manifest(path)["index"]["name"]
    flip_byte(index / "row.npy", position=-1)
    with pytest.raises(CorruptionError, match=r"index-000000/row\.npy: sha256"):
        CacheReader.open(path).verify()
    assert resume(kit, path, docs) == []
    assert manifest(path)["index"]["name"] == "index-000001" and not index.exists()
    reader = CacheReader.open(path)
    reader.verify()
    kit.assert_store_equals(reader, docs)


def test_manifest_garbage_is_reported(tmp_path, kit):
    path = tmp_path / "c"
    build(kit, path, kit.make_docs(3))
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(CorruptionError, match="manifest.json cannot be read"):
        CacheReader.open(path)

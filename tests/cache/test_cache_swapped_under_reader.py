"""A cache folder replaced while a reader has it open is reported as replaced (reopen it), not as
damage with advice to delete shards; real damage is still reported as damage."""

from __future__ import annotations

import shutil

import pytest

from lateint.cache import CacheReader, CacheWriter
from lateint.errors import CacheMismatchError, CorruptionError


def build(kit, path, docs, meta):
    with CacheWriter.open(path, fields=kit.fields(), metadata=meta, shard_size=7) as writer:
        kit.add_all(writer, docs)


@pytest.mark.parametrize("how", ["rebuilt", "deleted"])
@pytest.mark.parametrize("read", ["get", "gather_padded", "verify"])
def test_a_folder_swapped_under_a_reader(tmp_path, kit, how, read):
    path = tmp_path / "c"
    docs = kit.make_docs(20)
    build(kit, path, docs, {"fingerprint": "a"})
    reader = CacheReader.open(path)
    shutil.rmtree(path)
    if how == "rebuilt":
        build(kit, path, kit.make_docs(20, seed=9), {"fingerprint": "b"})
    ids = list(docs)
    with pytest.raises(CacheMismatchError, match="replaced while it was open") as info:
        if read == "verify":
            reader.verify()
        else:
            getattr(reader, read)(ids, "states")
    assert "Delete the shard" not in str(info.value)


def test_real_damage_is_still_damage(tmp_path, kit):
    path = tmp_path / "c"
    docs = kit.make_docs(20)
    build(kit, path, docs, {"fingerprint": "a"})
    reader = CacheReader.open(path)
    offsets = path / "shards" / "000000" / "states.offsets.npy"
    data = bytearray(offsets.read_bytes())
    data[-1] ^= 0xFF
    offsets.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match="Delete the shard folders"):
        reader.get(list(docs), "states")

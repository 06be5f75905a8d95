"""A cache folder from elsewhere never makes lateint read, write or delete outside it.

Names read from a manifest (the index, side folders and their files) must be plain names inside
the cache, even when the manifest's checksum is valid; no write follows a symbolic link planted in
the folder (a resumed shard, the side folder, the shards folder, the build record).
"""

from __future__ import annotations

import gc
import json
import os

import numpy as np
import pytest

from lateint.cache import CacheReader, CacheWriter
from lateint.cache.files import member_path, open_nofollow, plain_name
from lateint.cache.manifest import MANIFEST_FILE, manifest_checksum
from lateint.errors import CorruptionError, InputError

META = {"fingerprint": "f00d"}


def build(kit, path, docs, close=True):
    writer = CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7)
    kit.add_all(writer, docs)
    if close:
        writer.close()
    return writer


def rewrite_manifest(path, change):
    """Edit the manifest and give it a valid checksum (what a crafted folder would hold)."""
    m = json.loads((path / MANIFEST_FILE).read_text())
    change(m)
    m["checksum"] = manifest_checksum(m)
    (path / MANIFEST_FILE).write_text(json.dumps(m))


@pytest.mark.parametrize("name", ["../x", "..", ".", "/etc", "index-000000/../../x", "a\\b", "", "x\0y", 7, None])
def test_plain_name_check(name, tmp_path):
    assert not plain_name(name)
    with pytest.raises(CorruptionError, match="not a plain file name"):
        member_path(tmp_path, name, "a record")


@pytest.mark.parametrize("name", ["index-000001", "ids.npy", "a..b", "..x", "dóc"])
def test_plain_names_pass(name, tmp_path):
    assert member_path(tmp_path, name, "a record") == tmp_path / name


@pytest.mark.parametrize("bad", ["../outside", "index-000000/../../outside", "/tmp/outside", "index-../../x"])
def test_index_name_outside_the_folder_is_refused(tmp_path, kit, bad):
    docs = kit.make_docs(10)
    path = tmp_path / "c"
    build(kit, path, docs)
    index = json.loads((path / MANIFEST_FILE).read_text())["index"]["name"]
    # the same index files outside the cache: a reader that followed the name would accept them
    outside = tmp_path / "outside"
    (path / index).rename(outside)
    rewrite_manifest(path, lambda m: m["index"].__setitem__("name", bad))
    with pytest.raises(CorruptionError, match="index name"):
        CacheReader.open(path)


def test_resuming_a_crafted_build_deletes_nothing_outside(tmp_path, kit):
    docs = kit.make_docs(10)
    path = tmp_path / "c"
    build(kit, path, docs)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    rewrite_manifest(path, lambda m: m["index"].__setitem__("name", "../victim"))
    with pytest.raises(CorruptionError):
        with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7) as writer:
            kit.add_all(writer, kit.make_docs(3, seed=5))
    assert (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("side, files", [("../victim", {"x": {"bytes": 1, "sha256": "0"}}),
                                         ("compressor", {"../../victim/x": {"bytes": 1, "sha256": "0"}}),
                                         ("compressor", {"/abs/x": {"bytes": 1, "sha256": "0"}})])
def test_side_folder_names_outside_are_refused(tmp_path, kit, side, files):
    path = tmp_path / "c"
    build(kit, path, kit.make_docs(10))
    rewrite_manifest(path, lambda m: m.__setitem__("side", {side: {"files": files}}))
    with pytest.raises(CorruptionError, match="side folder"):
        CacheReader.open(path)


def open_shard_folder(kit, path, docs):
    """A build killed with committed documents in its open shard."""
    writer = CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=100, commit_docs=2)
    kit.add_all(writer, docs, batch=2)
    writer.commit()
    del writer
    gc.collect()
    (tmp,) = [p for p in (path / "shards").iterdir() if p.name.startswith(".tmp-")]
    return tmp


@pytest.mark.parametrize("planted", ["ids.raw", "states.bin", "states.ends", "progress.json"])
def test_resume_never_writes_through_a_planted_symlink(tmp_path, kit, planted):
    docs = kit.make_docs(9)
    path = tmp_path / "c"
    tmp = open_shard_folder(kit, path, docs)
    outside = tmp_path / "outside.bin"
    original = (tmp / planted).read_bytes() + b"tail that a truncate would cut" * 3
    outside.write_bytes(original)
    (tmp / planted).unlink()
    os.symlink(outside, tmp / planted)
    with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=100) as writer:
        kit.add_all(writer, docs, writer.missing(list(docs)))
    assert outside.read_bytes() == original  # neither truncated nor appended to
    kit.assert_store_equals(CacheReader.open(path), docs)


def test_resume_of_an_open_shard_that_is_a_symlink(tmp_path, kit):
    docs = kit.make_docs(9)
    path = tmp_path / "c"
    tmp = open_shard_folder(kit, path, docs)
    elsewhere = tmp_path / "elsewhere"
    tmp.rename(elsewhere)
    os.symlink(elsewhere, tmp)
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}
    with CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=100) as writer:
        kit.add_all(writer, docs, writer.missing(list(docs)))
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before
    kit.assert_store_equals(CacheReader.open(path), docs)


def test_shards_folder_that_is_a_symlink_is_refused(tmp_path, kit):
    path = tmp_path / "c"
    build(kit, path, kit.make_docs(10))
    (path / "shards").rename(tmp_path / "real_shards")
    os.symlink(tmp_path / "real_shards", path / "shards")
    with pytest.raises(CorruptionError, match="symbolic link"):
        CacheWriter.open(path, fields=kit.fields(), metadata=META, shard_size=7)


def test_lock_and_manifest_writes_do_not_follow_links(tmp_path, kit):
    path = tmp_path / "c"
    path.mkdir()
    outside = tmp_path / "outside"
    outside.write_text("keep")
    os.symlink(outside, path / ".lock")
    with pytest.raises(CorruptionError, match="symbolic link"):
        CacheWriter.open(path, fields=kit.fields(), metadata=META)
    assert outside.read_text() == "keep"


def test_open_nofollow_refuses_links_and_non_files(tmp_path):
    target = tmp_path / "t"
    target.write_bytes(b"abc")
    os.symlink(target, tmp_path / "link")
    for mode in ("wb", "ab", "r+b"):
        with pytest.raises(CorruptionError, match="symbolic link"):
            open_nofollow(tmp_path / "link", mode)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(CorruptionError, match="not a regular file"):
        open_nofollow(tmp_path / "fifo", "r+b")
    assert target.read_bytes() == b"abc"


def test_pickled_arrays_are_refused_with_a_cache_error(tmp_path, kit):
    """A cache's .npy file holding pickled objects is refused, never unpickled."""
    path = tmp_path / "c"
    build(kit, path, kit.make_docs(10))
    m = json.loads((path / MANIFEST_FILE).read_text())
    index = path / m["index"]["name"]
    np.save(index / "ids.npy", np.array([object()], dtype=object), allow_pickle=True)
    data = (index / "ids.npy").read_bytes()
    import hashlib

    rewrite_manifest(path, lambda m: m["index"]["files"]["ids.npy"].update(
        bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
    with pytest.raises(CorruptionError, match="not a readable array"):
        CacheReader.open(path)


def test_record_store_keys_use_the_same_check(tmp_path):
    from lateint.records import RecordStore

    store = RecordStore(tmp_path)
    for key in ("../x", "..", "a/b", "", "a\\b"):
        with pytest.raises(InputError, match="plain file name"):
            store.path(key)

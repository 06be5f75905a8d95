"""Merged shares prove they come from one collection: each part records the identity of the whole
document stream it was cut from, and ``cache merge`` refuses parts of different collections (even
of equal size) or of two versions of one collection whose texts differ."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lateint import CacheMismatchError, DocCache, InputError, SplitRanker
from lateint.cache import CacheWriter, FieldSpec
from lateint.cache.merge import merge_parts
from lateint.cache.shards import CollectionDigest, part_description, share_of
from lateint.cli.main import main


def digest(pairs):
    d = CollectionDigest()
    for pair in pairs:
        d.add(pair)
    return d.hexdigest()


COLLECTION = [(f"d{i}", f"text number {i} about lobsters") for i in range(30)]


def test_digest_is_order_free_and_sees_every_id_and_text():
    base = digest(COLLECTION)
    shuffled = COLLECTION[:]
    random.Random(0).shuffle(shuffled)
    assert digest(shuffled) == base
    edited = COLLECTION[:]
    edited[7] = ("d7", "text number 7 about crabs")
    renamed = COLLECTION[:]
    renamed[7] = ("x7", COLLECTION[7][1])
    assert len({base, digest(edited), digest(renamed), digest(COLLECTION[:-1]), digest(COLLECTION + COLLECTION[:1])}) == 5
    # an id/text boundary moved is another collection too
    assert digest([("ab", "c")]) != digest([("a", "bc")])


@pytest.fixture(scope="module")
def ranker(tiny_model):
    return SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=24)


def build_parts(ranker, folder, docs, shares=2):
    for i in range(shares):
        DocCache.build(ranker, docs, folder / f"p{i}", storage="fp32", progress=False, num_shards=shares, shard_index=i)
    return [folder / f"p{i}" for i in range(shares)]


def test_parts_of_one_collection_merge(ranker, tmp_path):
    shuffled = COLLECTION[:]
    random.Random(1).shuffle(shuffled)
    a = build_parts(ranker, tmp_path / "a", COLLECTION)
    b = build_parts(ranker, tmp_path / "b", shuffled)  # the same collection read in another order
    report = merge_parts(tmp_path / "m", [a[0], b[1]])
    assert report.documents == len(COLLECTION)


def test_parts_of_two_collections_of_equal_size_are_refused(ranker, tmp_path):
    other = [(f"e{i}", f"another text {i}") for i in range(len(COLLECTION))]
    a = build_parts(ranker, tmp_path / "a", COLLECTION)
    b = build_parts(ranker, tmp_path / "b", other)
    with pytest.raises(CacheMismatchError, match="different collections"):
        merge_parts(tmp_path / "m", [a[0], b[1]])
    assert not (tmp_path / "m").exists()


def test_parts_of_two_versions_with_edited_texts_are_refused(ranker, tmp_path):
    edited = [(d, t + " (revised)") if i % 5 == 0 else (d, t) for i, (d, t) in enumerate(COLLECTION)]
    a = build_parts(ranker, tmp_path / "a", COLLECTION)
    b = build_parts(ranker, tmp_path / "b", edited)
    with pytest.raises(CacheMismatchError, match="versions of a collection whose texts differ"):
        merge_parts(tmp_path / "m", [a[0], b[1]])


FIELDS = [FieldSpec("states", "fp32", 4)]


def test_a_part_without_the_collection_identity_is_refused(tmp_path):
    ids = [f"doc{i}" for i in range(20)]
    parts = []
    for share in range(2):
        mine = [d for d in ids if share_of(d, 2) == share]
        path = tmp_path / f"p{share}"
        writer = CacheWriter.open(path, FIELDS, {"fingerprint": "f"}, part=part_description(2, share))
        writer.add_batch(mine, {"states": [np.zeros((1, 4), np.float32)] * len(mine)})
        writer.close(collection_docs=len(ids), collection_sha256="abc" if share else None)
        parts.append(path)
    with pytest.raises(CacheMismatchError, match="does not record which collection"):
        merge_parts(tmp_path / "m", parts)


def test_merge_into_a_file_says_it_is_a_file(tmp_path, capsys):
    target = tmp_path / "out.bin"
    target.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        merge_parts(target, [tmp_path / "p0"])
    assert main(["cache", "merge", str(tmp_path / "p0"), str(tmp_path / "p1"), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "not empty" not in err

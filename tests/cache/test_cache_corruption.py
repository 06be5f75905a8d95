"""Corruption sweep: every kind of damage to every file of a document cache is refused with a
:class:`CorruptionError` (on open, on re-rank or on verify) and never used silently.

The cache holds PreTTR-compressed fp32 states of a tiny ranker at L = 1 in three shards, so that
its folder has every file type: the manifest, per shard the ids, data, offsets and CRC files, the id
index (ids, shard, row) and the compressor's weights. Each damage is applied to a fresh copy.
(``build.json`` holds build statistics only and is not read for scoring; ``.lock`` holds nothing.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lateint import CorruptionError, DocCache, SplitRanker, rerank
from lateint.cache.compression import StateCompressor

QUERY = "what is a lobster roll"
SKIPPED = {"build.json", ".lock"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model, pairs):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=48)
    torch.manual_seed(0)
    compressor = StateCompressor(ranker.encoder.hidden_size, 16)
    docs = [(f"d{i}", text) for i, text in enumerate(pairs[1] * 3)]
    path = tmp_path_factory.mktemp("pristine") / "cache"
    cache = DocCache.build(ranker, docs, path, storage="fp32", compressor=compressor, shard_size=6, progress=False)
    ids = [d for d, _ in docs]
    return ranker, path, ids, rerank(ranker, QUERY, ids, cache)


def cache_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in SKIPPED)


def flip(position):
    def damage(file: Path) -> None:
        data = bytearray(file.read_bytes())
        data[position(len(data))] ^= 0x10
        file.write_bytes(bytes(data))
    return damage


def truncate(keep):
    def damage(file: Path) -> None:
        data = file.read_bytes()
        file.write_bytes(data[:keep(len(data))])
    return damage


FILE_DAMAGES = {
    "flip first byte": flip(lambda n: 0),
    "flip middle byte": flip(lambda n: n // 2),
    "flip last byte": flip(lambda n: n - 1),
    "truncate by one byte": truncate(lambda n: n - 1),
    "truncate to half": truncate(lambda n: n // 2),
    "empty": truncate(lambda n: 0),
    "delete": lambda file: file.unlink(),
}


def edit_manifest(change):
    def damage(path: Path) -> None:
        manifest = json.loads((path / "manifest.json").read_text())
        change(manifest)
        (path / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return damage


def swap_folders(a: str, b: str):
    def damage(path: Path) -> None:
        (path / "shards" / a).rename(path / "shards" / "tmp")
        (path / "shards" / b).rename(path / "shards" / a)
        (path / "shards" / "tmp").rename(path / "shards" / b)
    return damage


def swap_files(name: str):
    def damage(path: Path) -> None:
        one, two = path / "shards" / "000000" / name, path / "shards" / "000001" / name
        a, b = one.read_bytes(), two.read_bytes()
        one.write_bytes(b)
        two.write_bytes(a)
    return damage


def swap_entries(m):
    m["shards"][0], m["shards"][1] = m["shards"][1], m["shards"][0]


STORE_DAMAGES = {
    "manifest: two shards swapped": edit_manifest(swap_entries),
    "manifest: settings.split edited": edit_manifest(lambda m: m["metadata"]["settings"].update(split=2)),
    "manifest: max_doc_length edited": edit_manifest(lambda m: m["metadata"]["settings"].update(max_doc_length=32)),
    "manifest: a shard's first_id edited": edit_manifest(lambda m: m["shards"][1].update(first_id="d0")),
    "manifest: a shard's docs edited": edit_manifest(lambda m: m["shards"][0].update(docs=5)),
    "manifest: a file's sha256 edited": edit_manifest(
        lambda m: m["shards"][0]["files"]["states.bin"].update(sha256="0" * 64)),
    "manifest: fingerprint edited": edit_manifest(lambda m: m["metadata"].update(fingerprint="0" * 64)),
    "manifest: two shards swapped, checksum removed": edit_manifest(lambda m: (swap_entries(m), m.pop("checksum"))),
    "shard folders 000000 and 000001 swapped": swap_folders("000000", "000001"),
    "states.bin of two shards swapped": swap_files("states.bin"),
    "states.offsets.npy of two shards swapped": swap_files("states.offsets.npy"),
    "ids.npy of two shards swapped": swap_files("ids.npy"),
    "a whole shard folder deleted": lambda path: shutil.rmtree(path / "shards" / "000002"),
    "the index folder deleted": lambda path: shutil.rmtree(next(path.glob("index-*"))),
    "the compressor folder deleted": lambda path: shutil.rmtree(path / "compressor"),
}


def outcome(ranker, path: Path, ids: list[str], pristine: dict) -> str:
    """Where the damage was caught, or whether it was used silently."""
    try:
        cache = DocCache.open(path)
    except CorruptionError:
        return "open"
    try:
        scores = rerank(ranker, QUERY, ids, cache)
    except CorruptionError:
        return "rerank"
    try:
        cache.verify()
    except CorruptionError:
        return "verify"
    return "unchanged" if scores == pristine else "SILENT"


def test_every_damage_to_every_file_is_a_corruption_error(built, tmp_path):
    ranker, pristine_path, ids, pristine = built
    files = cache_files(pristine_path)
    kinds = {p.name if p.parent.name not in ("compressor",) else "compressor/*" for p in files}
    for required in ("manifest.json", "ids.npy", "states.bin", "states.offsets.npy", "states.crc.npy",
                     "shard.npy", "row.npy", "compressor/*"):
        assert required in kinds, f"no {required} in the sweep"
    cases = [(f"{rel}: {what}", rel, damage) for rel in (p.relative_to(pristine_path) for p in files)
             for what, damage in FILE_DAMAGES.items()]
    cases += [(what, None, damage) for what, damage in STORE_DAMAGES.items()]
    results: dict[str, list[str]] = {}
    for n, (what, rel, damage) in enumerate(cases):
        path = tmp_path / f"c{n}"
        shutil.copytree(pristine_path, path)
        damage(path / rel if rel is not None else path)
        results.setdefault(outcome(ranker, path, ids, pristine), []).append(what)
        shutil.rmtree(path)
    detected = sum(len(v) for k, v in results.items() if k in ("open", "rerank", "verify"))
    print(f"corruption sweep: {detected}/{len(cases)} detected "
          f"({', '.join(f'{k} {len(v)}' for k, v in sorted(results.items()))})")
    assert not results.get("SILENT") and not results.get("unchanged"), results
    assert detected == len(cases) and len(cases) > 100
    # The cheap checks catch data damage before verify: flipped data bytes at re-rank at the latest.
    assert "shards/000001/states.bin: flip middle byte" in results["rerank"]


def test_corruption_error_names_the_file_and_the_fix(built, tmp_path):
    ranker, pristine_path, ids, _ = built
    path = tmp_path / "c"
    shutil.copytree(pristine_path, path)
    flip(lambda n: n // 2)(path / "shards" / "000001" / "states.bin")
    cache = DocCache.open(path)
    with pytest.raises(CorruptionError, match=r"shards/000001/states\.bin: document row \d+ fails its CRC-32.*"
                                              r"Delete the shard folders named.*rerun the build"):
        rerank(ranker, QUERY, ids, cache)
    edit_manifest(lambda m: m["metadata"]["settings"].update(split=2))(path)
    with pytest.raises(CorruptionError, match=r"manifest\.json fails its checksum.*rebuild"):
        DocCache.open(path)
    (path / "manifest.json").unlink()
    with pytest.raises(CorruptionError, match=r"manifest\.json is missing.*holds a document cache's shards"):
        DocCache.open(path)


def test_damaged_offsets_never_raise_raw_numpy_errors(built, tmp_path):
    """The defects once seen: absurd allocations, IndexError, 'mmap length is greater than file size'."""
    ranker, pristine_path, ids, _ = built
    for n, damage in enumerate([flip(lambda n: 9), flip(lambda n: n - 3), truncate(lambda n: 20)]):
        for name in ("states.offsets.npy", "states.bin", "ids.npy", "states.crc.npy"):
            path = tmp_path / f"c{n}-{name}"
            shutil.copytree(pristine_path, path)
            damage(path / "shards" / "000000" / name)
            with pytest.raises(CorruptionError):
                cache = DocCache.open(path)
                rerank(ranker, QUERY, ids, cache)
                cache.verify()

"""Joining the parts of a sharded build into one store.

:func:`merge_parts` checks that the parts were built with the same fields and metadata (the
ranker's fingerprint, its settings and the document text), are the shares ``0..N-1`` of one
``N``-way split, each complete, each holding only ids of its own share, and together as many
documents as the collection had. It refuses with a clear error otherwise. The merged store lists
the parts' sealed shards as its own: their files are hard-linked (copied only where the file system
cannot link, e.g. across devices), so merging costs one new id index and no copy of the data.
Sealed shard files are never modified in place, so the parts and the merged store can safely share
them; deleting the parts afterwards leaves the merged store intact.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from lateint.cache.files import WriterLock, fsync_dir, remove_tree
from lateint.cache.manifest import (SHARDS_DIR, TMP_PREFIX, IncompleteCacheError, describe_diff, load_manifest,
                                    member_file, metadata_diff, new_manifest, save_manifest, shard_name)
from lateint.cache.reader import CacheReader
from lateint.cache.shards import share_of
from lateint.cache.writer import write_index
from lateint.errors import CacheMismatchError, InputError

@dataclass
class MergeReport:
    """What a merge did: documents, shards, and how many files were linked or had to be copied."""

    path: str
    parts: int
    documents: int
    shards: int
    linked: int
    copied: int


def merge_parts(out: str | os.PathLike, parts: Sequence[str | os.PathLike], *, durable: bool = True) -> MergeReport:
    """Join the complete parts ``parts`` of a sharded build into the new store ``out``.

    Raises:
        InputError: no parts, ``out`` is not empty, or a part is given twice.
        IncompleteCacheError: a part's build has not finished (rerun it).
        CacheMismatchError: the parts differ in fields or metadata, are not the shares of one
            split, miss or repeat a share, hold documents of another share, or do not add up to
            the collection's document count.
        CorruptionError: a part is damaged.
    """
    out = Path(out)
    folders = [Path(p) for p in parts]
    if not folders:
        raise InputError("give the part folders to merge")
    if len({p.resolve() for p in folders}) != len(folders):
        raise InputError("a part folder is given twice; give each part once")
    if out.resolve() in {p.resolve() for p in folders}:
        raise InputError(f"--out {out} is one of the parts; merge into a new folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; the merged cache is a folder: give a new folder path")
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise InputError(f"{out} exists and is not empty; merge into a new folder (or delete it first)")
    manifests = []
    for folder in folders:
        manifest = load_manifest(folder)
        if not manifest.get("complete"):
            raise IncompleteCacheError(f"the part at {folder} is incomplete: rerun its build (same command) to "
                                       "finish it, then merge")
        manifests.append(manifest)
    _check_compatible(folders, manifests)
    readers = [CacheReader.open(folder) for folder in folders]  # validates each part
    ordered = sorted(zip(folders, manifests, readers), key=lambda t: t[1]["part"]["shard_index"])
    for folder, manifest, reader in ordered:
        _check_ids_in_share(folder, reader, manifest["part"])

    # Built beside ``out`` and renamed into place, so that an interrupted merge leaves no half cache.
    work = out.with_name(f".{out.name}.merging")
    remove_tree(work)
    work.mkdir(parents=True)
    lock = WriterLock(work)
    try:
        first = manifests[0]
        merged = new_manifest(first["fields"], first["metadata"], first["shard_limits"]["docs"],
                              first["shard_limits"]["bytes"])
        if first.get("side"):
            merged["side"] = first["side"]
        merged["merged_from"] = [{"path": str(folder.resolve()), "shard_index": m["part"]["shard_index"],
                                  "docs": sum(s["docs"] for s in m["shards"]), "checksum": m["checksum"]}
                                 for folder, m, _ in ordered]
        shards_dir = work / SHARDS_DIR
        shards_dir.mkdir()
        linked = copied = 0
        for folder, manifest, _ in ordered:
            for entry in manifest["shards"]:
                number = merged["next_shard"]
                tmp = shards_dir / f"{TMP_PREFIX}{shard_name(number)}"
                tmp.mkdir()
                for name in entry["files"]:
                    if _link_or_copy(folder / SHARDS_DIR / entry["name"] / name, tmp / name):
                        linked += 1
                    else:
                        copied += 1
                if durable:
                    fsync_dir(tmp)
                os.replace(tmp, shards_dir / shard_name(number))
                merged["shards"].append({**entry, "name": shard_name(number)})
                merged["next_shard"] = number + 1
        for side, listing in (first.get("side") or {}).items():
            # only the files the (checked) manifest lists, each a plain name inside its folder
            for name in listing["files"]:
                target = member_file(work / side, name, "a side folder entry")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(member_file(folders[0] / side, name, "a side folder entry"), target)
        if durable:
            fsync_dir(shards_dir)
        save_manifest(work, merged, durable)
        write_index(work, merged, durable)
        merged["complete"] = True
        save_manifest(work, merged, durable)
    finally:
        lock.release()
    (work / ".lock").unlink(missing_ok=True)
    if out.exists():
        remove_tree(out / ".lock")
        out.rmdir()  # empty, checked above
    os.replace(work, out)
    if durable:
        fsync_dir(out.parent)
    CacheReader.open(out)  # the merged store opens and passes the open-time checks
    return MergeReport(str(out), len(folders), merged["index"]["docs"], len(merged["shards"]), linked, copied)


def merged_from_same_parts(out: Path, parts: Sequence[Path]) -> bool:
    """Whether ``out`` is a complete store already merged from exactly these (unchanged) parts."""
    try:
        manifest = load_manifest(out)
        recorded = {(m["path"], m["checksum"]) for m in manifest.get("merged_from") or []}
        current = {(str(Path(p).resolve()), load_manifest(Path(p))["checksum"]) for p in parts}
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return False
    return bool(manifest.get("complete")) and recorded == current


def _check_compatible(folders: list[Path], manifests: list[dict]) -> None:
    first, base = manifests[0], folders[0]
    for folder, m in zip(folders[1:], manifests[1:]):
        if m["fields"] != first["fields"]:
            raise CacheMismatchError(f"the parts {base} and {folder} store different fields ({first['fields']} vs "
                                     f"{m['fields']}); merge only parts of one build command")
        keys = metadata_diff(first["metadata"], m["metadata"])
        if keys:
            raise CacheMismatchError(f"the parts {base} and {folder} were built with different rankers or settings "
                                     f"({describe_diff(first['metadata'], m['metadata'], keys)}); merge only "
                                     "parts of one build command")
    missing = [str(f) for f, m in zip(folders, manifests) if not m.get("part")]
    if missing:
        raise CacheMismatchError(f"{', '.join(missing)} holds a whole collection, not a part of a sharded build "
                                 "(build parts with --num-shards N --shard-index I)")
    splits = {(m["part"]["num_shards"], m["part"]["rule"]) for m in manifests}
    if len(splits) != 1:
        raise CacheMismatchError(f"the parts come from different splits ({sorted(splits)}); merge the N parts of "
                                 "one --num-shards N build")
    n = manifests[0]["part"]["num_shards"]
    indices = sorted(m["part"]["shard_index"] for m in manifests)
    if indices != list(range(n)):
        absent = sorted(set(range(n)) - set(indices))
        repeated = sorted({i for i in indices if indices.count(i) > 1})
        raise CacheMismatchError(f"the parts must be the shares 0..{n - 1} of a {n}-way build, each once; "
                                 f"missing {absent}, repeated {repeated}. Build the missing shares (--num-shards {n} "
                                 "--shard-index I) and merge all of them")
    totals = {m["part"].get("collection_docs") for m in manifests}
    if len(totals) != 1 or None in totals:
        raise CacheMismatchError(f"the parts were built over different collections (document counts "
                                 f"{sorted(map(str, totals))}); rebuild them from the same dataset")
    digests = {m["part"].get("collection_sha256") for m in manifests}
    if None in digests:
        old = [str(f) for f, m in zip(folders, manifests) if m["part"].get("collection_sha256") is None]
        raise CacheMismatchError(f"{', '.join(old)} does not record which collection it was cut from (built by an "
                                 "earlier lateint); rebuild the parts, then merge")
    if len(digests) != 1:
        groups = {}
        for f, m in zip(folders, manifests):
            groups.setdefault(m["part"]["collection_sha256"][:12], []).append(str(f))
        raise CacheMismatchError(f"the parts were cut from different collections, or versions of a collection whose "
                                 f"texts differ (collection digests {groups}); rebuild them from the same dataset")
    total = totals.pop()
    stored = sum(sum(s["docs"] for s in m["shards"]) for m in manifests)
    if stored != total:
        raise CacheMismatchError(f"the parts hold {stored} documents but the collection has {total}: documents are "
                                 "missing or repeated in the collection; no merged cache was written")


def _check_ids_in_share(folder: Path, reader: CacheReader, part: dict) -> None:
    """Every id of the part hashes to its share (so the parts are disjoint and cover each id once)."""
    n, index = part["num_shards"], part["shard_index"]
    for doc_id in reader.iter_ids():
        if share_of(doc_id, n) != index:
            raise CacheMismatchError(f"the part at {folder} (share {index} of {n}) holds document {doc_id!r} of share "
                                     f"{share_of(doc_id, n)}; rebuild that part")


def _link_or_copy(source: Path, target: Path) -> bool:
    """Hard-link ``source`` to ``target``; copy where linking is impossible. True if linked."""
    try:
        os.link(source, target)
        return True
    except OSError:
        shutil.copy2(source, target)
        return False


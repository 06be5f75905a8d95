"""The manifest: the JSON file that makes a folder a document cache.

Layout of a store folder::

    manifest.json                 this file (replaced atomically after each change)
    shards/000000/                one sealed shard (a folder renamed into place once complete)
        ids.npy                   doc ids of the shard's rows, utf-8 bytes (numpy 'S' dtype)
        <field>.bin               token rows of all docs, back to back, row_nbytes bytes each
        <field>.offsets.npy       int64 [docs + 1]: doc r's tokens are rows offsets[r]:offsets[r+1]
        <field>.crc.npy           uint32 [docs]: CRC-32 of each doc's rows, checked on every read
    shards/.tmp-000001/           the shard being written; what its progress.json commits survives
                                  a killed writer, the rest is discarded
    index-000003/                 written on close: doc id -> (shard, row)
        ids.npy                   all doc ids, sorted (numpy 'S' dtype)
        shard.npy                 int32: position of the id's shard in the manifest's shard list
        row.npy                   int32 (int64 above 2**31 rows): row within that shard
    .lock                         held by an open writer

Manifest keys: ``format``, ``version``, ``complete`` (set by ``CacheWriter.close``), ``metadata``
(the caller's dict, compared exactly on reopen), ``fields`` (name, codec, shape, length),
``shard_limits`` (docs, bytes), ``next_shard`` (number of the next shard folder), ``shards`` (a list
of ``{name, docs, first_id, last_id, tokens: {field: n}, files: {file: {bytes, sha256}}}``, in the
order they were sealed) and ``index`` (``{name, docs, files}`` once complete, else ``null``).
A shard or index listed in the manifest is immutable; anything in the folder that the manifest does
not list is left over from an interrupted write and is deleted by the next writer (except the open
shard's committed part, which it resumes). ``part`` (optional) says which share of a collection a
store holds (see :mod:`lateint.cache.shards`); ``merged_from`` lists the parts a merged store joined;
``side`` lists, with checksums, the files of folders kept beside the shards (a compressor's weights).
``checksum`` is the sha256 of all other keys (canonical JSON): an edited or damaged manifest is
refused as a :class:`CorruptionError`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from lateint.cache.files import atomic_write_bytes, member_path, plain_name, sha256_file
from lateint.errors import CacheMismatchError, CorruptionError, InputError, MissingResourceError

FORMAT = "lateint-doc-cache"
VERSION = 2
MANIFEST_FILE = "manifest.json"
SHARDS_DIR = "shards"
TMP_PREFIX = ".tmp-"
INDEX_PREFIX = "index-"
IDS_FILE = "ids.npy"
CHECKSUM_KEY = "checksum"


class IncompleteCacheError(MissingResourceError):
    """The cache's build was interrupted (the writer was never closed); rerun it to resume."""


def data_file(field: str) -> str:
    """Name of a field's token data file inside a shard folder."""
    return f"{field}.bin"


def offsets_file(field: str) -> str:
    """Name of a field's offsets file inside a shard folder."""
    return f"{field}.offsets.npy"


def crc_file(field: str) -> str:
    """Name of a field's per-document CRC-32 file inside a shard folder."""
    return f"{field}.crc.npy"


def shard_files(fields: list[str]) -> list[str]:
    """Every file a sealed shard of a store with these fields holds."""
    return sorted([IDS_FILE] + [name for f in fields for name in (data_file(f), offsets_file(f), crc_file(f))])


def shard_name(number: int) -> str:
    """Folder name of shard ``number``."""
    return f"{number:06d}"


def new_manifest(fields: list[dict[str, Any]], metadata: dict[str, Any], shard_docs: int,
                 shard_bytes: int) -> dict[str, Any]:
    """An empty, incomplete manifest."""
    return {"format": FORMAT, "version": VERSION, "complete": False, "metadata": metadata,
            "fields": fields, "shard_limits": {"docs": shard_docs, "bytes": shard_bytes},
            "next_shard": 0, "shards": [], "index": None}


def load_manifest(folder: Path) -> dict[str, Any]:
    """Read and sanity-check ``folder/manifest.json``.

    Raises :class:`MissingResourceError` when the folder or manifest does not exist and
    :class:`CorruptionError` when it is not a readable manifest of a known version.
    """
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise MissingResourceError(f"no document cache at {folder}: the folder does not exist")
    if not path.is_file():
        if (folder / SHARDS_DIR).is_dir():
            raise CorruptionError(f"{path} is missing, but {folder} holds a document cache's shards: without its "
                                  f"manifest nothing in it can be trusted. Restore the file, or delete {folder} and "
                                  "rebuild the cache")
        raise MissingResourceError(f"{folder} is not a document cache: it has no {MANIFEST_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptionError(f"{path} cannot be read ({e}); delete {folder} and rebuild the cache") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CorruptionError(f"{path} is not a lateint document cache manifest")
    if data.get("version") != VERSION:
        raise CorruptionError(f"{path} has format version {data.get('version')}, this lateint reads version "
                              f"{VERSION}; delete {folder} and rebuild the cache with this version")
    if data.get(CHECKSUM_KEY) != manifest_checksum(data):
        raise CorruptionError(f"{path} fails its checksum: it was edited or damaged after it was written, so "
                              f"nothing it lists can be trusted. Restore the original file, or delete {folder} "
                              "and rebuild the cache")
    problems = manifest_problems(data)
    if problems:
        raise CorruptionError(f"{path} is inconsistent ({'; '.join(problems[:3])}); delete {folder} and rebuild "
                              "the cache")
    return data


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """sha256 of every key but the checksum, as canonical JSON."""
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def manifest_problems(m: Mapping[str, Any]) -> list[str]:
    """Structural problems of a manifest's fields (types, names, counts); empty when it is sound."""
    try:
        problems = []
        fields = [f["name"] for f in m["fields"]]
        if len(set(fields)) != len(fields) or not fields:
            problems.append(f"fields {fields} are empty or repeated")
        limits = m["shard_limits"]
        if not (int(limits["docs"]) >= 1 and int(limits["bytes"]) >= 1):
            problems.append(f"shard_limits {limits} are not positive")
        names = [s["name"] for s in m["shards"]]
        if len(set(names)) != len(names):
            problems.append("a shard is listed twice")
        expected_files = shard_files(fields)
        for s in m["shards"]:
            if not isinstance(s["name"], str) or not s["name"].isdigit() or int(s["name"]) >= int(m["next_shard"]):
                problems.append(f"shard name {s['name']!r} is not below next_shard {m['next_shard']}")
            if not (isinstance(s["docs"], int) and s["docs"] >= 1):
                problems.append(f"shard {s['name']}: docs {s['docs']!r} is not a positive integer")
            if sorted(s["tokens"]) != sorted(fields) or any(not isinstance(t, int) or t < 0 for t in s["tokens"].values()):
                problems.append(f"shard {s['name']}: tokens {s['tokens']} do not match the fields")
            if sorted(s["files"]) != expected_files:
                problems.append(f"shard {s['name']}: files {sorted(s['files'])}, expected {expected_files}")
            for f in s["files"].values():
                if not (isinstance(f["bytes"], int) and f["bytes"] >= 0 and isinstance(f["sha256"], str)):
                    problems.append(f"shard {s['name']}: a file entry {f} is malformed")
            if not isinstance(s["first_id"], str) or not isinstance(s["last_id"], str):
                problems.append(f"shard {s['name']}: first_id/last_id are not strings")
        index = m["index"]
        if index is not None:
            if not plain_name(index["name"]) or not index["name"].startswith(INDEX_PREFIX):
                problems.append(f"index name {index['name']!r} is not a plain index-NNNNNN folder name")
            if sorted(index["files"]) != ["ids.npy", "row.npy", "shard.npy"]:
                problems.append(f"index files {sorted(index['files'])} are not ids/shard/row")
            if index["docs"] != sum(s["docs"] for s in m["shards"]):
                problems.append(f"index docs {index['docs']} != {sum(s['docs'] for s in m['shards'])} in the shards")
        if not isinstance(m["complete"], bool) or (m["complete"] and index is None):
            problems.append("complete is set without an index")
        if not isinstance(m["metadata"], dict):
            problems.append("metadata is not an object")
        for name, side in (m.get("side") or {}).items():
            if not plain_name(name) or name.startswith(".") or name in (SHARDS_DIR, MANIFEST_FILE):
                problems.append(f"side folder name {name!r} is not a plain folder name")
            bad = [f for f in side["files"] if not all(plain_name(part) for part in str(f).split("/"))]
            if bad:
                problems.append(f"side folder {name!r} lists files {bad[:3]} outside it")
        return problems
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return [f"a required key is missing or malformed ({type(e).__name__}: {e})"]


def save_manifest(folder: Path, manifest: dict[str, Any], durable: bool = True) -> None:
    """Set the manifest's checksum and atomically replace ``folder/manifest.json``."""
    manifest[CHECKSUM_KEY] = manifest_checksum(manifest)
    text = json.dumps(manifest, indent=1, sort_keys=False, ensure_ascii=False)
    atomic_write_bytes(folder / MANIFEST_FILE, text.encode("utf-8"), durable=durable)


def normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata as it reads back from JSON (tuples become lists ...), so that comparisons of a
    caller's dict with a stored one are exact. Raises :class:`InputError` if it is not JSON."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InputError(f"cache metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(dict(metadata), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InputError(f"cache metadata must be JSON-serialisable with string keys ({e})") from None


def metadata_diff(stored: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """Top-level keys whose values differ, including keys present on one side only."""
    return sorted(k for k in set(stored) | set(given) if k not in stored or k not in given or stored[k] != given[k])


def describe_diff(stored: Mapping[str, Any], given: Mapping[str, Any], keys: list[str], limit: int = 8) -> str:
    """``key: stored=... given=...`` for the first ``limit`` differing keys."""
    missing = object()

    def show(v: Any) -> str:
        if v is missing:
            return "(absent)"
        text = json.dumps(v, sort_keys=True)
        return text if len(text) <= 80 else text[:77] + "..."

    parts = [f"{k}: cache has {show(stored.get(k, missing))}, expected {show(given.get(k, missing))}"
             for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"... and {len(keys) - limit} more")
    return "; ".join(parts)


def check_metadata(folder: Path, stored: Mapping[str, Any], expected: Mapping[str, Any], action: str) -> None:
    """Raise :class:`CacheMismatchError` naming the differing keys unless ``stored == expected``."""
    keys = metadata_diff(stored, expected)
    if keys:
        raise CacheMismatchError(
            f"the document cache at {folder} was built with different metadata; differing keys: "
            f"{', '.join(keys)} ({describe_diff(stored, expected, keys)}). {action}")


def member_file(folder: Path, relative: str, what: str) -> Path:
    """``folder / relative`` for a file a manifest lists (its ``/``-separated parts each a plain
    name), so that no listed name reaches outside ``folder``."""
    path = folder
    for part in str(relative).split("/"):
        path = member_path(path, part, what)
    return path


def file_problems(folder: Path, files: Mapping[str, Mapping[str, Any]], check_hash: bool) -> list[str]:
    """Problems of the files a manifest entry lists under ``folder``: missing, wrong size and, when
    ``check_hash``, wrong sha256. Each problem is ``"<path>: <what>"``; empty when all is well."""
    problems = []
    for name, expect in files.items():
        path = member_file(folder, name, "a manifest entry")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{path}: missing")
            continue
        except OSError as e:
            problems.append(f"{path}: unreadable ({e.strerror})")
            continue
        if size != expect["bytes"]:
            problems.append(f"{path}: {size} bytes, the manifest records {expect['bytes']} (truncated or overwritten)")
        elif check_hash and sha256_file(path) != expect["sha256"]:
            problems.append(f"{path}: sha256 checksum mismatch (the bytes changed after it was written)")
    return problems

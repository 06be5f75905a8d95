"""Reading a document cache through memory maps.

Integrity is checked at three moments, each as cheaply as it can be while leaving no damaged byte
unnoticed:

* **open**: the manifest's own checksum and structure, one ``stat`` per file (a truncated or
  missing file is reported at once), and the id index, whose files are hashed and checked
  (sorted unique ids, shard positions and rows in range): about 0.1 s per million documents;
* **first use of a shard**: its small offsets and CRC files are hashed against the manifest (so
  a shard folder swapped for another is refused) and the offsets checked (start at 0, monotonic,
  end at the recorded token count);
* **every read**: each document's bytes are checked against its CRC-32 as they are gathered.

:meth:`CacheReader.verify` recomputes every file's sha256 and checks every manifest field against
the files. Any failure is a :class:`CorruptionError` naming the file and the fix. Shard data files
are memory-mapped on first use; nothing is read into memory up front, so the memory cost is the
page cache the OS chooses to keep.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from lateint.cache.checksums import crc32
from lateint.cache.fields import FieldSpec
from lateint.cache.ids import as_id_list, decode_id, encode_ids, lookup_sorted, token_ranges
from lateint.cache.files import sha256_file
from lateint.cache.files import member_path
from lateint.cache.manifest import (CHECKSUM_KEY, IDS_FILE, MANIFEST_FILE, SHARDS_DIR, IncompleteCacheError,
                                    check_metadata, crc_file, data_file, file_problems, load_manifest,
                                    normalize_metadata, offsets_file)
from lateint.errors import CacheMismatchError, CorruptionError, InputError

_REBUILD = ("rerun the build with the same path: it resumes and recomputes only the missing documents "
            "(delete a damaged shard folder first)")


class CacheReader:
    """Read-only access to a complete store written by :class:`~lateint.cache.writer.CacheWriter`.

    Lookups take doc ids (``str``) in any order, from any shards; results follow the request order.
    Float fields decode to float32 (numpy for :meth:`get`, torch for :meth:`gather_padded`); raw
    fields decode to their stored dtype.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], check_reads: bool = True) -> None:
        self.path = path
        self._manifest = manifest
        self.fields: dict[str, FieldSpec] = {f["name"]: FieldSpec.from_json(f) for f in manifest["fields"]}
        self._shards: list[dict[str, Any]] = manifest["shards"]
        #: check each gathered document against its CRC-32 (turn off only to measure its cost)
        self.check_reads = check_reads
        index = manifest["index"]
        index_dir = member_path(path, index["name"], f"the manifest of {path}")
        for name, entry in index["files"].items():
            if sha256_file(index_dir / name) != entry["sha256"]:
                raise CorruptionError(_describe_problems(path, [f"{index_dir / name}: sha256 checksum mismatch"]))
        self._index_ids = _load_npy(index_dir / "ids.npy", path)
        self._index_shard = _load_npy(index_dir / "shard.npy", path)
        self._index_row = _load_npy(index_dir / "row.npy", path)
        self._check_index()
        self._offsets: dict[tuple[int, str], np.ndarray] = {}
        self._crcs: dict[tuple[int, str], np.ndarray] = {}
        self._data: dict[tuple[int, str], np.ndarray] = {}

    def side_folder(self, name: str) -> Path | None:
        """The folder ``name`` beside the shards (e.g. a compressor), after checking its files'
        checksums; None if the store has no such folder."""
        side = (self._manifest.get("side") or {}).get(name)
        if side is None:
            return None
        folder = member_path(self.path, name, f"the manifest of {self.path}")
        problems = file_problems(folder, side["files"], check_hash=True)
        if problems:
            raise self._damaged(problems)
        return folder

    def _damaged(self, problems: list[str]) -> Exception:
        """The error for ``problems`` found in a file after the store was opened: if the folder now
        holds another store (rebuilt, replaced or deleted under this reader), a
        :class:`CacheMismatchError` saying so; else a :class:`CorruptionError` naming the damage."""
        try:
            current = json.loads((self.path / MANIFEST_FILE).read_text(encoding="utf-8")).get(CHECKSUM_KEY)
        except (OSError, ValueError, AttributeError):
            current = None
        if current != self._manifest.get(CHECKSUM_KEY):
            now = "no longer holds a document cache" if current is None else "now holds another build"
            return CacheMismatchError(
                f"the document cache at {self.path} was replaced while it was open (the folder {now}; first "
                f"problem: {problems[0]}). Nothing is damaged: reopen the cache (or rerun the command) to read "
                "what is there now")
        return CorruptionError(_describe_problems(self.path, problems))

    def _check_index(self) -> None:
        """The index's arrays agree with each other and with the manifest's shards."""
        ids, shard, row = self._index_ids, self._index_shard, self._index_row
        docs = np.array([s["docs"] for s in self._shards], dtype=np.int64)
        where = self.path / self._manifest["index"]["name"]
        problems = []
        n = self._manifest["index"]["docs"]
        if ids.ndim != 1 or ids.dtype.kind != "S" or len(ids) != n:
            problems.append(f"{where / 'ids.npy'}: {ids.dtype}{ids.shape}, expected {n} byte-string ids")
        for name, array in (("shard.npy", shard), ("row.npy", row)):
            if array.ndim != 1 or array.dtype.kind != "i" or len(array) != n:
                problems.append(f"{where / name}: {array.dtype}{array.shape}, expected {n} integers")
        if not problems and n:
            for start in range(0, n, _CHECK_BLOCK):
                stop = min(n, start + _CHECK_BLOCK)
                block_ids = np.asarray(ids[max(0, start - 1):stop])
                s = np.asarray(shard[start:stop], dtype=np.int64)
                if len(block_ids) > 1 and not (block_ids[1:] > block_ids[:-1]).all():
                    problems.append(f"{where / 'ids.npy'}: ids are not sorted and unique")
                if s.min() < 0 or s.max() >= len(docs):
                    problems.append(f"{where / 'shard.npy'}: shard positions outside 0..{len(docs) - 1}")
                    break
                r = np.asarray(row[start:stop], dtype=np.int64)
                if r.min() < 0 or (r >= docs[s]).any():
                    problems.append(f"{where / 'row.npy'}: rows outside their shard's documents")
                if problems:
                    break
        if problems:
            raise CorruptionError(_describe_problems(self.path, problems))

    @classmethod
    def open(cls, path: str | os.PathLike, expected_metadata: Mapping[str, Any] | None = None) -> "CacheReader":
        """Open the store at ``path``.

        Args:
            expected_metadata: if given, must equal the stored metadata exactly.

        Raises:
            MissingResourceError: no store at ``path``.
            IncompleteCacheError: its build was interrupted (a :class:`MissingResourceError`).
            CacheMismatchError: the metadata differs from ``expected_metadata`` (keys are named).
            CorruptionError: a file is missing or has the wrong size, or the manifest is unreadable.
            ConfigError: a field uses a codec that is not registered.
        """
        folder = Path(path)
        manifest = load_manifest(folder)
        if not manifest.get("complete") or manifest.get("index") is None:
            docs = sum(s["docs"] for s in manifest["shards"])
            raise IncompleteCacheError(
                f"the document cache at {folder} is incomplete: its build stopped after {docs} documents in "
                f"{len(manifest['shards'])} sealed shards and was never closed. Rerun the build with the same "
                "path to resume it; it adds only the missing documents")
        for f in manifest["fields"]:
            FieldSpec.from_json(f)  # unknown codec -> ConfigError
        if expected_metadata is not None:
            check_metadata(folder, manifest["metadata"], normalize_metadata(expected_metadata),
                           "Build a cache for this configuration at a new path (or delete the old folder and "
                           "rebuild it).")
        problems = []
        for entry in manifest["shards"]:
            problems += file_problems(folder / SHARDS_DIR / entry["name"], entry["files"], check_hash=False)
        problems += file_problems(folder / manifest["index"]["name"], manifest["index"]["files"], check_hash=False)
        for name, side in (manifest.get("side") or {}).items():
            problems += file_problems(folder / name, side["files"], check_hash=False)
        if problems:
            raise CorruptionError(_describe_problems(folder, problems))
        return cls(folder, manifest)

    # ------------------------------------------------------------------ ids

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata the store was built with."""
        return self._manifest["metadata"]

    def __len__(self) -> int:
        return len(self._index_ids)

    def contains(self, doc_id: str) -> bool:
        """Whether ``doc_id`` is stored."""
        return bool(lookup_sorted(self._index_ids, encode_ids([doc_id]))[1][0])

    __contains__ = contains

    def missing(self, doc_ids: Sequence[str]) -> list[str]:
        """The ids of ``doc_ids`` that are not stored, in their order."""
        ids = as_id_list(doc_ids)
        if not ids:
            return []
        _, found = lookup_sorted(self._index_ids, encode_ids(ids))
        return [ids[i] for i in np.nonzero(~found)[0]]

    def iter_ids(self) -> Iterator[str]:
        """All stored ids, in sorted (utf-8 byte) order, decoded lazily."""
        for start in range(0, len(self._index_ids), 1 << 16):
            for raw in self._index_ids[start:start + (1 << 16)].tolist():
                yield decode_id(raw)

    def _locate(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(shard position, row) for each id; :class:`InputError` listing a few unknown ids."""
        pos, found = lookup_sorted(self._index_ids, encode_ids(ids))
        if not found.all():
            missing = np.nonzero(~found)[0]
            shown = [ids[i] for i in missing[:5]]
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise InputError(f"{len(missing)} of {len(ids)} doc ids are not in the document cache at {self.path}: "
                             f"{shown}{more}. Build the cache over a collection that includes them")
        return np.asarray(self._index_shard[pos], dtype=np.int64), np.asarray(self._index_row[pos], dtype=np.int64)

    # ------------------------------------------------------------------ shard files

    def _field(self, name: str) -> FieldSpec:
        try:
            return self.fields[name]
        except KeyError:
            raise InputError(f"the document cache at {self.path} has no field {name!r}; "
                             f"its fields are {list(self.fields)}") from None

    def _shard_offsets(self, shard: int, field: str) -> np.ndarray:
        key = (shard, field)
        offsets = self._offsets.get(key)
        if offsets is None:
            entry = self._shards[shard]
            folder = self.path / SHARDS_DIR / entry["name"]
            offsets = self._load_checked(folder, offsets_file(field), entry)
            crcs = self._load_checked(folder, crc_file(field), entry)
            problem = _offsets_problem(offsets, crcs, entry["docs"], entry["tokens"][field])
            if problem:
                raise self._damaged([f"{folder / offsets_file(field)}: {problem}"])
            self._offsets[key] = offsets
            self._crcs[key] = crcs
        return offsets

    def _load_checked(self, folder: Path, name: str, entry: Mapping[str, Any]) -> np.ndarray:
        """A small shard file, read whole after its sha256 matched the manifest's."""
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as e:
            raise self._damaged([f"{path}: unreadable ({e.strerror})"]) from None
        expect = entry["files"][name]
        if len(data) != expect["bytes"] or hashlib.sha256(data).hexdigest() != expect["sha256"]:
            raise self._damaged([f"{path}: sha256 checksum mismatch (damaged, or not the file the manifest lists)"])
        return _load_npy(path, self.path, data)

    def _shard_data(self, shard: int, spec: FieldSpec) -> np.ndarray:
        key = (shard, spec.name)
        data = self._data.get(key)
        if data is None:
            entry = self._shards[shard]
            tokens = entry["tokens"][spec.name]
            if tokens == 0:  # an empty file cannot be memory-mapped
                data = np.empty((0, spec.row_nbytes), np.uint8)
            else:
                path = self.path / SHARDS_DIR / entry["name"] / data_file(spec.name)
                try:
                    data = np.memmap(path, dtype=np.uint8, mode="r", shape=(tokens, spec.row_nbytes))
                except (OSError, ValueError) as e:
                    raise self._damaged([f"{path}: cannot be mapped ({e})"]) from None
            self._data[key] = data
        return data

    def _plan(self, ids: list[str], field: str) -> tuple[list[tuple[int, np.ndarray]], np.ndarray, np.ndarray,
                                                          np.ndarray]:
        """Group the requested docs by shard: ``([(shard, positions in request)], starts, lengths, rows)``
        where ``starts`` and ``lengths`` are the docs' token rows in their shard's data file and
        ``rows`` their rows in the shard."""
        shard, row = self._locate(ids)
        starts = np.empty(len(ids), np.int64)
        lengths = np.empty(len(ids), np.int64)
        order = np.argsort(shard, kind="stable")
        cuts = np.flatnonzero(np.diff(shard[order])) + 1
        groups = []
        for sel in np.split(order, cuts) if len(order) else []:
            s = int(shard[sel[0]])
            offsets = self._shard_offsets(s, field)
            r = row[sel]
            starts[sel] = offsets[r]
            lengths[sel] = offsets[r + 1] - starts[sel]
            groups.append((s, sel))
        return groups, starts, lengths, row

    def _gather_rows(self, spec: FieldSpec, groups: list[tuple[int, np.ndarray]], starts: np.ndarray,
                     lengths: np.ndarray, dest_starts: np.ndarray, out: np.ndarray,
                     rows: np.ndarray | None = None) -> None:
        """Copy the docs' encoded token rows into ``out`` (uint8 ``[rows, row_nbytes]``), doc i's
        rows going to ``out[dest_starts[i]:dest_starts[i] + lengths[i]]``, and check each doc's
        CRC-32 (``rows``: the docs' rows in their shards)."""
        for s, sel in groups:
            data = self._shard_data(s, spec)
            if len(groups) == 1 and int(lengths.sum()) == len(out):
                # The requested docs fill ``out`` (no padding): one take straight into it.
                src = token_ranges(starts[sel], lengths[sel])
                dst = token_ranges(dest_starts[sel], lengths[sel])
                inverse = np.empty_like(dst)
                inverse[dst] = np.arange(len(dst))
                np.take(data, src[inverse], axis=0, out=out, mode="clip")
            else:
                # Each document's rows are contiguous on both sides: one block copy per document
                # (fancy indexing would first build a temporary as large as the batch).
                for src, dst, n in zip(starts[sel].tolist(), dest_starts[sel].tolist(), lengths[sel].tolist()):
                    out[dst:dst + n] = data[src:src + n]
            if self.check_reads and rows is not None:
                self._check_crcs(s, spec, rows[sel], dest_starts[sel], lengths[sel], out)

    def _check_crcs(self, shard: int, spec: FieldSpec, rows: np.ndarray, dest_starts: np.ndarray,
                    lengths: np.ndarray, out: np.ndarray) -> None:
        expected = self._crcs[(shard, spec.name)][rows]
        flat = memoryview(out.reshape(-1))
        width = spec.row_nbytes
        for i, (start, n) in enumerate(zip(dest_starts.tolist(), lengths.tolist())):
            if crc32(flat[start * width:(start + n) * width]) != expected[i]:
                entry = self._shards[shard]
                path = self.path / SHARDS_DIR / entry["name"] / data_file(spec.name)
                raise self._damaged([f"{path}: document row {int(rows[i])} fails its CRC-32 (the bytes changed "
                                     "after they were written)"])

    # ------------------------------------------------------------------ reading

    def lengths(self, doc_ids: Sequence[str], field: str) -> np.ndarray:
        """Tokens stored per document in ``field`` (int64, request order)."""
        self._field(field)
        _, _, lengths, _ = self._plan(as_id_list(doc_ids), field)
        return lengths

    def get(self, doc_ids: Sequence[str], field: str) -> list[np.ndarray]:
        """Decoded arrays ``[n_tokens, *shape]``, one per id in request order (float32 for float
        codecs). They are views into one freshly allocated buffer, never into the files."""
        spec = self._field(field)
        ids = as_id_list(doc_ids)
        groups, starts, lengths, rows = self._plan(ids, field)
        ends = np.cumsum(lengths)
        raw = np.empty((int(ends[-1]) if len(ends) else 0, spec.row_nbytes), np.uint8)
        self._gather_rows(spec, groups, starts, lengths, ends - lengths, raw, rows)
        values = spec.codec_impl.decode(raw, spec.elems).reshape(-1, *spec.shape)
        return np.split(values, ends[:-1]) if len(ids) else []

    def get_doc(self, doc_id: str) -> dict[str, np.ndarray]:
        """All fields of one document, decoded."""
        return {name: self.get([doc_id], name)[0] for name in self.fields}

    def gather_padded(self, doc_ids: Sequence[str], field: str, pad_to: int | None = None,
                      workspace: dict | None = None):
        """A padded batch ``(values, mask)`` as torch tensors.

        ``values`` is ``[B, L, *shape]`` (float32 for float codecs, the stored dtype for raw ones)
        with zeros in padding; ``mask`` is bool ``[B, L]``, True on stored tokens. ``L`` is
        ``pad_to`` if given (:class:`InputError` if a document is longer), else the longest
        document's length.

        ``workspace``: a dict in which the read and decoded buffers are kept and reused from call
        to call. Fresh buffers of this size cost more in page faults than the copy itself, so a
        re-ranking loop passes one; the returned ``values`` then live in the workspace and are
        overwritten by the next call that uses it for the same field.
        """
        import torch

        spec = self._field(field)
        ids = as_id_list(doc_ids)
        groups, starts, lengths, rows = self._plan(ids, field)
        longest = int(lengths.max()) if len(lengths) else 0
        if pad_to is None:
            width = longest
        else:
            width = int(pad_to)
            if width < longest:
                too_long = [ids[i] for i in np.nonzero(lengths > width)[0][:5]]
                raise InputError(f"pad_to={width} is shorter than documents {too_long} "
                                 f"(up to {longest} tokens in field {field!r}); use pad_to >= {longest} or None")
        batch = len(ids)
        mask = torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]
        raw = _reused({} if workspace is None else workspace, (field, "raw"), (batch * width, spec.row_nbytes), np.uint8)
        # Padding decodes to zeros; a reused buffer still holds earlier documents' rows there.
        for i in np.flatnonzero(lengths < width).tolist():
            raw[i * width + int(lengths[i]):(i + 1) * width] = 0
        self._gather_rows(spec, groups, starts, lengths, np.arange(batch, dtype=np.int64) * width, raw, rows)
        return _decoded(spec, field, raw, workspace).reshape(batch, width, *spec.shape), mask

    def gather_packed(self, doc_ids: Sequence[str], field: str, workspace: dict | None = None,
                      as_stored: bool = False):
        """The documents' rows back to back, without padding, as torch tensors ``(values, lengths)``.

        ``values`` is ``[sum(lengths), *shape]`` (decoded as in :meth:`gather_padded`), document
        i's rows following document i - 1's; ``lengths`` is int64 ``[B]``. ``workspace``: as in
        :meth:`gather_padded`. ``as_stored``: values stored as plain floats (fp16, fp32) come back
        in their stored dtype, undecoded (a pass over the whole batch saved); others are decoded.
        """
        import torch

        spec = self._field(field)
        ids = as_id_list(doc_ids)
        groups, starts, lengths, rows = self._plan(ids, field)
        dest = np.zeros(len(ids), np.int64)
        np.cumsum(lengths[:-1], out=dest[1:])
        total = int(lengths.sum())
        raw = _reused({} if workspace is None else workspace, (field, "raw"), (total, spec.row_nbytes), np.uint8)
        self._gather_rows(spec, groups, starts, lengths, dest, raw, rows)
        stored = spec.codec_impl.stored_float_dtype
        values = torch.from_numpy(raw.view(stored)) if as_stored and stored is not None else _decoded(spec, field, raw, workspace)
        return values.reshape(total, *spec.shape), torch.from_numpy(lengths)

    # ------------------------------------------------------------------ inspection

    def info(self) -> dict[str, Any]:
        """Summary: ``docs``, ``shards``, ``metadata``, ``bytes`` (all files) and per field
        ``codec``, ``shape``, ``tokens``, ``bytes`` (data file bytes), ``bytes_per_token``,
        ``bytes_per_doc`` and ``mean_tokens``."""
        docs = len(self)
        fields = {}
        for name, spec in self.fields.items():
            tokens = sum(s["tokens"][name] for s in self._shards)
            nbytes = tokens * spec.row_nbytes
            fields[name] = {"codec": spec.codec, "shape": list(spec.shape), "length": spec.length,
                            "tokens": tokens, "bytes": nbytes, "bytes_per_token": spec.row_nbytes,
                            "bytes_per_doc": nbytes / docs if docs else 0.0,
                            "mean_tokens": tokens / docs if docs else 0.0}
        total = sum(f["bytes"] for s in self._shards for f in s["files"].values())
        total += sum(f["bytes"] for f in self._manifest["index"]["files"].values())
        return {"path": str(self.path), "docs": docs, "shards": len(self._shards), "bytes": total,
                "fields": fields, "metadata": self.metadata}

    def verify(self) -> dict[str, int]:
        """Check everything: every file's sha256 and size, and every manifest field against the
        files (doc counts, first and last ids, token counts, offsets, CRCs of every document, the
        index's mapping back to each shard's ids). Returns ``{"shards", "files", "bytes", "docs"}``
        checked; raises :class:`CorruptionError` naming every damaged file and the fix."""
        problems, files, nbytes = [], 0, 0
        for position, entry in enumerate(self._shards):
            folder = self.path / SHARDS_DIR / entry["name"]
            found = file_problems(folder, entry["files"], check_hash=True)
            files += len(entry["files"])
            nbytes += sum(f["bytes"] for f in entry["files"].values())
            problems += found or self._shard_problems(position, entry, folder)
        index = self._manifest["index"]
        problems += file_problems(self.path / index["name"], index["files"], check_hash=True)
        files += len(index["files"])
        for name, side in (self._manifest.get("side") or {}).items():
            problems += file_problems(self.path / name, side["files"], check_hash=True)
            files += len(side["files"])
        nbytes += sum(f["bytes"] for f in index["files"].values())
        if not problems:
            problems += self._index_problems()
        if problems:
            raise self._damaged(problems)
        return {"shards": len(self._shards), "files": files, "bytes": nbytes, "docs": len(self)}

    def _shard_problems(self, position: int, entry: Mapping[str, Any], folder: Path) -> list[str]:
        """A shard whose files match their checksums, checked against its manifest entry."""
        ids = _load_npy(folder / IDS_FILE, self.path)
        problems = []
        if ids.ndim != 1 or len(ids) != entry["docs"]:
            return [f"{folder / IDS_FILE}: {len(ids)} ids, the manifest records {entry['docs']} documents"]
        if decode_id(ids[0]) != entry["first_id"] or decode_id(ids[-1]) != entry["last_id"]:
            problems.append(f"{folder}: first/last ids {decode_id(ids[0])!r}/{decode_id(ids[-1])!r} differ from the "
                            f"manifest's {entry['first_id']!r}/{entry['last_id']!r}")
        for name, spec in self.fields.items():
            try:
                offsets = self._shard_offsets(position, name)
            except CorruptionError as e:
                problems.append(str(e))
                continue
            data = self._shard_data(position, spec)
            for start in range(0, entry["docs"], _CHECK_BLOCK):
                rows = np.arange(start, min(entry["docs"], start + _CHECK_BLOCK))
                lengths = offsets[rows + 1] - offsets[rows]
                block = np.asarray(data[int(offsets[rows[0]]):int(offsets[rows[-1] + 1])])
                try:
                    self._check_crcs(position, spec, rows, offsets[rows] - offsets[rows[0]], lengths, block)
                except CorruptionError as e:
                    problems.append(str(e))
                    break
        return problems

    def _index_problems(self) -> list[str]:
        """Does each index entry point back at a shard row holding that id?"""
        where = self.path / self._manifest["index"]["name"]
        shard = np.asarray(self._index_shard, dtype=np.int64)
        for position, entry in enumerate(self._shards):
            ids = _load_npy(self.path / SHARDS_DIR / entry["name"] / IDS_FILE, self.path)
            mine = np.nonzero(shard == position)[0]
            rows = np.asarray(self._index_row[mine], dtype=np.int64)
            if len(mine) != entry["docs"] or not np.array_equal(np.sort(rows), np.arange(entry["docs"])):
                return [f"{where}: shard {entry['name']} is not mapped exactly once per document"]
            width = max(ids.dtype.itemsize, self._index_ids.dtype.itemsize)
            if not np.array_equal(ids[rows].astype(f"S{width}"), np.asarray(self._index_ids[mine]).astype(f"S{width}")):
                return [f"{where}: ids of shard {entry['name']} do not match the index"]
        return []

    def close(self) -> None:
        """Drop the memory maps (the reader is unusable afterwards)."""
        self._offsets.clear()
        self._data.clear()

    def __enter__(self) -> "CacheReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CacheReader({str(self.path)!r}, {len(self)} docs, fields {list(self.fields)})"


def _decoded(spec: FieldSpec, field: str, raw: np.ndarray, workspace: dict | None):
    """``raw`` rows of ``field`` decoded, as a torch tensor ``[rows, elems]``: into the workspace's
    buffer when there is one; without, codecs that store values as they are give a view of ``raw``."""
    import torch

    out = None if workspace is None else _reused(workspace, (field, "decoded"), (len(raw), spec.elems),
                                                 spec.codec_impl.decoded_dtype)
    return torch.from_numpy(spec.codec_impl.decode(raw, spec.elems, out=out))


def _reused(workspace: dict, key, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A C-contiguous ``shape`` array of ``dtype`` carved from a buffer kept in ``workspace`` (made
    to size, then grown with some slack when a later call needs more)."""
    dtype = np.dtype(dtype)
    need = int(np.prod(shape))
    buffer = workspace.get(key)
    if buffer is None or buffer.dtype != dtype:
        buffer = workspace[key] = np.empty(need, dtype)
    elif buffer.size < need:
        buffer = workspace[key] = np.empty(int(need * 1.25), dtype)
    return buffer[:need].reshape(shape)


def _describe_problems(folder: Path, problems: list[str]) -> str:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return (f"the document cache at {folder} is damaged: {shown}. Delete the shard folders named "
            f"(shards/NNNNNN; for an index-NNNNNN folder, delete that folder) and {_REBUILD}")


_CHECK_BLOCK = 1 << 20


def _load_npy(path: Path, store: Path, data: bytes | None = None) -> np.ndarray:
    """``np.load`` of a cache's own ``.npy`` file (memory-mapped unless ``data`` is given), with any
    failure to parse it reported as a :class:`CorruptionError` naming the file."""
    try:
        if data is not None:
            return np.load(io.BytesIO(data), allow_pickle=False)
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError, MemoryError) as e:
        raise CorruptionError(_describe_problems(store, [f"{path}: not a readable array ({type(e).__name__}: "
                                                         f"{str(e)[:120]})"])) from None


def _offsets_problem(offsets: np.ndarray, crcs: np.ndarray, docs: int, tokens: int) -> str | None:
    """What is wrong with a shard's offsets and CRC arrays, or None."""
    if offsets.dtype.kind != "i" or offsets.shape != (docs + 1,):
        return f"offsets are {offsets.dtype}{offsets.shape}, expected int [{docs + 1}]"
    if crcs.dtype != np.uint32 or crcs.shape != (docs,):
        return f"CRCs are {crcs.dtype}{crcs.shape}, expected uint32 [{docs}]"
    if offsets[0] != 0 or offsets[-1] != tokens or (np.diff(offsets) < 0).any():
        return f"offsets are not monotonic from 0 to the manifest's {tokens} tokens"
    return None

"""Reading a document cache through memory maps.

Opening costs a manifest parse, one ``stat`` per file (so a truncated or missing file is reported
at once) and three memory-mapped index arrays; shard files are mapped on first use. Nothing is
read into memory up front, so opening a cache of millions of documents is instant and its memory
cost is the page cache the OS chooses to keep.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from lateint.cache.fields import FieldSpec
from lateint.cache.ids import as_id_list, decode_id, encode_ids, lookup_sorted, token_ranges
from lateint.cache.manifest import (SHARDS_DIR, IncompleteCacheError, check_metadata, data_file,
                                    file_problems, load_manifest, normalize_metadata, offsets_file)
from lateint.errors import CorruptionError, InputError

_REBUILD = ("rerun the build with the same path: it resumes and recomputes only the missing documents "
            "(delete a damaged shard folder first)")


class CacheReader:
    """Read-only access to a complete store written by :class:`~lateint.cache.writer.CacheWriter`.

    Lookups take doc ids (``str``) in any order, from any shards; results follow the request order.
    Float fields decode to float32 (numpy for :meth:`get`, torch for :meth:`gather_padded`); raw
    fields decode to their stored dtype.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self._manifest = manifest
        self.fields: dict[str, FieldSpec] = {f["name"]: FieldSpec.from_json(f) for f in manifest["fields"]}
        self._shards: list[dict[str, Any]] = manifest["shards"]
        index_dir = path / manifest["index"]["name"]
        self._index_ids = np.load(index_dir / "ids.npy", mmap_mode="r")
        self._index_shard = np.load(index_dir / "shard.npy", mmap_mode="r")
        self._index_row = np.load(index_dir / "row.npy", mmap_mode="r")
        self._offsets: dict[tuple[int, str], np.ndarray] = {}
        self._data: dict[tuple[int, str], np.ndarray] = {}

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
            path = self.path / SHARDS_DIR / entry["name"] / offsets_file(field)
            offsets = np.load(path, mmap_mode="r")
            if offsets.shape != (entry["docs"] + 1,) or int(offsets[-1]) != entry["tokens"][field]:
                raise CorruptionError(f"{path} does not match the manifest; delete the folder "
                                      f"{path.parent} and {_REBUILD}")
            self._offsets[key] = offsets
        return offsets

    def _shard_data(self, shard: int, spec: FieldSpec) -> np.ndarray:
        key = (shard, spec.name)
        data = self._data.get(key)
        if data is None:
            entry = self._shards[shard]
            tokens = entry["tokens"][spec.name]
            if tokens == 0:  # an empty file cannot be memory-mapped
                data = np.empty((0, spec.row_nbytes), np.uint8)
            else:
                data = np.memmap(self.path / SHARDS_DIR / entry["name"] / data_file(spec.name), dtype=np.uint8,
                                 mode="r", shape=(tokens, spec.row_nbytes))
            self._data[key] = data
        return data

    def _plan(self, ids: list[str], field: str) -> tuple[list[tuple[int, np.ndarray]], np.ndarray, np.ndarray]:
        """Group the requested docs by shard: ``([(shard, positions in request)], starts, lengths)``
        where ``starts`` and ``lengths`` are the docs' token rows in their shard's data file."""
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
        return groups, starts, lengths

    def _gather_rows(self, spec: FieldSpec, groups: list[tuple[int, np.ndarray]], starts: np.ndarray,
                     lengths: np.ndarray, dest_starts: np.ndarray, out: np.ndarray) -> None:
        """Copy the docs' encoded token rows into ``out`` (uint8 ``[rows, row_nbytes]``), doc i's
        rows going to ``out[dest_starts[i]:dest_starts[i] + lengths[i]]``."""
        for s, sel in groups:
            data = self._shard_data(s, spec)
            src = token_ranges(starts[sel], lengths[sel])
            dst = token_ranges(dest_starts[sel], lengths[sel])
            if len(groups) == 1 and len(dst) == len(out):
                # The requested docs fill ``out`` in order: read straight into it.
                inverse = np.empty_like(dst)
                inverse[dst] = np.arange(len(dst))
                np.take(data, src[inverse], axis=0, out=out, mode="clip")
            else:
                out[dst] = data[src]

    # ------------------------------------------------------------------ reading

    def lengths(self, doc_ids: Sequence[str], field: str) -> np.ndarray:
        """Tokens stored per document in ``field`` (int64, request order)."""
        self._field(field)
        _, _, lengths = self._plan(as_id_list(doc_ids), field)
        return lengths

    def get(self, doc_ids: Sequence[str], field: str) -> list[np.ndarray]:
        """Decoded arrays ``[n_tokens, *shape]``, one per id in request order (float32 for float
        codecs). They are views into one freshly allocated buffer, never into the files."""
        spec = self._field(field)
        ids = as_id_list(doc_ids)
        groups, starts, lengths = self._plan(ids, field)
        ends = np.cumsum(lengths)
        raw = np.empty((int(ends[-1]) if len(ends) else 0, spec.row_nbytes), np.uint8)
        self._gather_rows(spec, groups, starts, lengths, ends - lengths, raw)
        values = spec.codec_impl.decode(raw, spec.elems).reshape(-1, *spec.shape)
        return np.split(values, ends[:-1]) if len(ids) else []

    def get_doc(self, doc_id: str) -> dict[str, np.ndarray]:
        """All fields of one document, decoded."""
        return {name: self.get([doc_id], name)[0] for name in self.fields}

    def gather_padded(self, doc_ids: Sequence[str], field: str, pad_to: int | None = None):
        """A padded batch ``(values, mask)`` as torch tensors.

        ``values`` is ``[B, L, *shape]`` (float32 for float codecs, the stored dtype for raw ones)
        with zeros in padding; ``mask`` is bool ``[B, L]``, True on stored tokens. ``L`` is
        ``pad_to`` if given (:class:`InputError` if a document is longer), else the longest
        document's length.
        """
        import torch

        spec = self._field(field)
        ids = as_id_list(doc_ids)
        groups, starts, lengths = self._plan(ids, field)
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
        raw = np.zeros((batch * width, spec.row_nbytes), np.uint8)
        self._gather_rows(spec, groups, starts, lengths, np.arange(batch, dtype=np.int64) * width, raw)
        values = torch.from_numpy(spec.codec_impl.decode(raw, spec.elems)).reshape(batch, width, *spec.shape)
        mask = torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]
        return values, mask

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
        """Recompute the sha256 of every shard and index file. Returns ``{"shards", "files",
        "bytes"}`` checked; raises :class:`CorruptionError` naming every damaged file and the fix."""
        problems, files, nbytes = [], 0, 0
        for entry in self._shards:
            problems += file_problems(self.path / SHARDS_DIR / entry["name"], entry["files"], check_hash=True)
            files += len(entry["files"])
            nbytes += sum(f["bytes"] for f in entry["files"].values())
        index = self._manifest["index"]
        problems += file_problems(self.path / index["name"], index["files"], check_hash=True)
        files += len(index["files"])
        nbytes += sum(f["bytes"] for f in index["files"].values())
        if problems:
            raise CorruptionError(_describe_problems(self.path, problems))
        return {"shards": len(self._shards), "files": files, "bytes": nbytes}

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


def _describe_problems(folder: Path, problems: list[str]) -> str:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return (f"the document cache at {folder} is damaged: {shown}. Delete the shard folders named "
            f"(shards/NNNNNN; for an index-NNNNNN folder, delete that folder) and {_REBUILD}")

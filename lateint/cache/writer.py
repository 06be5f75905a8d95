"""Writing a document cache: sharded, checksummed, resumable after a crash.

See :mod:`lateint.cache.manifest` for the on-disk layout. The guarantees:

* **Bounded memory.** Token rows are encoded and appended to the open shard's files as they
  arrive (1 MiB write buffers); only the shard's per-doc offsets and ids are kept in memory.
* **Atomic shards.** A shard is written in ``shards/.tmp-NNNNNN/``, fsynced, renamed to
  ``shards/NNNNNN/`` and only then listed, with the sha256 of each file, in the manifest (itself
  replaced atomically).
* **Durable progress.** The open shard is committed (fsynced, with an atomic progress record)
  every ``commit_docs`` documents or ``commit_seconds`` seconds, whichever comes first, so a
  killed process loses at most the documents added since the last commit, not the shard.
* **Resumable.** Reopening a store with the same fields and metadata keeps every sealed shard whose
  files are present with the recorded sizes (and checksums with ``verify=True``), deletes the rest,
  resumes the committed part of the open shard, and reports which doc ids are stored, so a build
  adds only the others. Deleting a damaged
  shard folder and rerunning the build therefore recomputes exactly that shard.
* **No duplicates.** Adding an id that is already stored is skipped (``add`` returns False) by
  default, or raises :class:`InputError` with ``duplicates="error"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lateint.cache.checksums import crc32
from lateint.cache.fields import FieldSpec, normalize_fields
from lateint.cache.files import (WriterLock, atomic_write_bytes, fsync_dir, member_path, npy_bytes, open_nofollow,
                                 remove_tree, sha256_file, truncate_nofollow)
from lateint.cache.ids import IdSet, as_id_list, decode_id, encode_ids, token_ranges
from lateint.cache.manifest import (IDS_FILE, INDEX_PREFIX, MANIFEST_FILE, SHARDS_DIR, TMP_PREFIX, check_metadata,
                                    crc_file, data_file,
                                    file_problems, shard_files, load_manifest, new_manifest, normalize_metadata,
                                    offsets_file, save_manifest, shard_name)
from lateint.errors import CacheMismatchError, ConfigError, CorruptionError, InputError

#: Keys of a part's record that describe the whole collection (set when the part's build closes).
PART_COLLECTION_KEYS = ("collection_docs", "collection_sha256")
#: Default shard limits: whichever is reached first seals the shard.
DEFAULT_SHARD_DOCS = 65536
DEFAULT_SHARD_BYTES = 1 << 30
#: Default commit limits of the open shard: whichever is reached first makes its documents durable.
DEFAULT_COMMIT_DOCS = 4096
DEFAULT_COMMIT_SECONDS = 60.0
_WRITE_BUFFER = 1 << 20
_HASH_BLOCK = 1 << 22
_PROGRESS = "progress.json"
_OPEN_IDS = "ids.raw"
_OPEN_ENDS = ".ends"
_OPEN_CRC = ".crc"

ArrayLike = Any  # numpy array, torch tensor, or nested lists


def _to_numpy(x: ArrayLike) -> np.ndarray:
    """A numpy view or copy of ``x`` on the CPU (torch tensors of any device and dtype accepted)."""
    if isinstance(x, np.ndarray):
        return x
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _select_tokens(x: ArrayLike, mask: np.ndarray) -> np.ndarray:
    """``x[mask]`` for a padded batch, done on the tensor's device so only real tokens move."""
    if isinstance(x, np.ndarray):
        return x[mask]
    try:
        import torch
    except ImportError:  # pragma: no cover
        return np.asarray(x)[mask]
    if isinstance(x, torch.Tensor):
        return _to_numpy(x[torch.from_numpy(mask).to(x.device)])
    return np.asarray(x)[mask]


def _flatten_field(spec: FieldSpec, value: ArrayLike | Sequence[ArrayLike], lengths: ArrayLike | None,
                   batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch's tokens of one field as ``[total_tokens, elems]`` plus per-doc lengths ``[batch]``.

    ``value`` is either a list of per-doc arrays ``[n_i, *shape]`` or one padded array
    ``[batch, max_len, *shape]`` with ``lengths`` (ints ``[batch]``, or a bool mask
    ``[batch, max_len]`` selecting real tokens; None = every position is real).
    """
    trailing = spec.shape
    if isinstance(value, (list, tuple)):
        if len(value) != batch:
            raise InputError(f"field {spec.name!r}: {len(value)} arrays for {batch} doc ids")
        if lengths is not None:
            raise InputError(f"field {spec.name!r}: lengths are only for padded arrays, not lists of arrays")
        docs = [_to_numpy(v) for v in value]
        for i, d in enumerate(docs):
            if d.ndim != 1 + len(trailing) or tuple(d.shape[1:]) != trailing:
                expected = ", ".join(["n_tokens", *map(str, trailing)])
                raise InputError(f"field {spec.name!r}: doc {i} has shape {tuple(d.shape)}, expected [{expected}]")
        lens = np.array([d.shape[0] for d in docs], dtype=np.int64)
        tokens = np.concatenate([d.reshape(d.shape[0], spec.elems) for d in docs]) if docs else np.empty((0, spec.elems))
        return tokens.reshape(-1, spec.elems), lens
    shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    if len(shape) != 2 + len(trailing) or shape[0] != batch or tuple(shape[2:]) != trailing:
        raise InputError(f"field {spec.name!r}: padded array of shape {shape}, expected "
                         f"[{batch}, max_len{''.join(f', {t}' for t in trailing)}]")
    max_len = shape[1]
    if lengths is None:
        tokens = _to_numpy(value).reshape(batch * max_len, spec.elems)
        return tokens, np.full(batch, max_len, dtype=np.int64)
    lens_or_mask = _to_numpy(lengths)
    if lens_or_mask.ndim == 2:
        if lens_or_mask.shape != (batch, max_len):
            raise InputError(f"field {spec.name!r}: mask of shape {lens_or_mask.shape}, expected {(batch, max_len)}")
        mask = lens_or_mask.astype(bool, copy=False)
        lens = mask.sum(axis=1).astype(np.int64)
    else:
        lens = lens_or_mask.astype(np.int64).reshape(-1)
        if len(lens) != batch or (lens < 0).any() or (lens > max_len).any():
            raise InputError(f"field {spec.name!r}: lengths must be {batch} ints in [0, {max_len}], got {lens.tolist()[:8]}")
        mask = np.arange(max_len)[None, :] < lens[:, None]
    return _select_tokens(value, mask).reshape(-1, spec.elems), lens


class _OpenShard:
    """The shard being written, in a temporary folder, appendable and committable.

    Per field it appends the token rows to ``<field>.bin``, each doc's end offset to
    ``<field>.ends`` (raw int64) and each doc's CRC-32 to ``<field>.crc`` (raw uint32); ids go to
    ``ids.raw`` (NUL-terminated utf-8). :meth:`commit` fsyncs them and atomically records their
    sizes in ``progress.json``: a writer killed after a commit resumes from exactly that point
    (:meth:`resume`), so a kill loses only what was appended since the last commit.
    """

    def __init__(self, tmp: Path, fields: list[FieldSpec], fresh: bool = True) -> None:
        self.tmp = tmp
        if fresh:
            remove_tree(tmp)
            tmp.mkdir(parents=True)
        self.fields = fields
        mode = "wb" if fresh else "ab"
        # Never through a symbolic link planted in the folder: a write would land outside the cache.
        self.files = {name: open_nofollow(tmp / name, mode, buffering=_WRITE_BUFFER) for name in self._file_names()}
        self.hashes = {f.name: hashlib.sha256() for f in fields}
        self.offset_chunks: dict[str, list[np.ndarray]] = {f.name: [np.zeros(1, np.int64)] for f in fields}
        self.crc_chunks: dict[str, list[np.ndarray]] = {f.name: [] for f in fields}
        self.tokens = {f.name: 0 for f in fields}
        self.ids: list[bytes] = []
        self.nbytes = 0
        self.committed = 0

    def _file_names(self) -> list[str]:
        names = [_OPEN_IDS]
        for f in self.fields:
            names += [data_file(f.name), f"{f.name}{_OPEN_ENDS}", f"{f.name}{_OPEN_CRC}"]
        return names

    @classmethod
    def resume(cls, tmp: Path, fields: list[FieldSpec]) -> "_OpenShard | None":
        """The committed part of a shard left by a killed writer, ready to append to; None when
        nothing usable was committed (the folder is then discarded by the caller). A folder that is
        a symbolic link, or holds one (or anything but regular files) where its files belong, is
        discarded too: resuming it would truncate and append to files outside the cache."""
        names = [_PROGRESS, *cls._names_for(fields)]
        if tmp.is_symlink() or not all((tmp / n).is_file() and not (tmp / n).is_symlink() for n in names):
            return None
        try:
            progress = json.loads((tmp / _PROGRESS).read_text(encoding="utf-8"))
            sizes = {name: int(progress["files"][name]) for name in cls._names_for(fields)}
            docs = int(progress["docs"])
            for name, size in sizes.items():
                if (tmp / name).stat().st_size < size:
                    return None
                truncate_nofollow(tmp / name, size)  # drop what was written after the commit
            raw_ids = (tmp / _OPEN_IDS).read_bytes()
            ids = raw_ids.split(b"\0")[:-1]
            arrays = {}
            for f in fields:
                ends = np.fromfile(tmp / f"{f.name}{_OPEN_ENDS}", dtype="<i8")
                crcs = np.fromfile(tmp / f"{f.name}{_OPEN_CRC}", dtype="<u4")
                total = int(ends[-1]) if len(ends) else 0
                if (len(ends) != docs or len(crcs) != docs or np.any(np.diff(ends) < 0) or (len(ends) and ends[0] < 0)
                        or sizes[data_file(f.name)] != total * f.row_nbytes):
                    return None
                arrays[f.name] = (ends, crcs, total)
            if len(ids) != docs or docs == 0 or progress.get("sha256") != _digest_of(tmp, fields, sizes):
                return None
        except (OSError, ValueError, KeyError, TypeError):  # CorruptionError (a planted link) is an OSError
            return None
        shard = cls(tmp, fields, fresh=False)
        for f in fields:
            ends, crcs, total = arrays[f.name]
            shard.offset_chunks[f.name].append(ends.astype(np.int64))
            shard.crc_chunks[f.name].append(crcs.astype(np.uint32))
            shard.tokens[f.name] = total
            shard.nbytes += total * f.row_nbytes
            with open(tmp / data_file(f.name), "rb") as data:
                while block := data.read(_HASH_BLOCK):
                    shard.hashes[f.name].update(block)
        shard.ids = ids
        shard.committed = docs
        return shard

    @staticmethod
    def _names_for(fields: list[FieldSpec]) -> list[str]:
        return [_OPEN_IDS] + [n for f in fields for n in (data_file(f.name), f"{f.name}{_OPEN_ENDS}", f"{f.name}{_OPEN_CRC}")]

    @property
    def docs(self) -> int:
        return len(self.ids)

    @property
    def uncommitted(self) -> int:
        return self.docs - self.committed

    def append(self, ids: list[bytes], encoded: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        for name, (rows, lens) in encoded.items():
            flat = np.ascontiguousarray(rows).reshape(-1)
            buf = memoryview(flat)
            self.files[data_file(name)].write(buf)
            self.hashes[name].update(buf)
            row_nbytes = rows.shape[1] if rows.ndim == 2 else 0
            cuts = np.concatenate([[0], np.cumsum(lens)]) * row_nbytes
            crcs = np.fromiter((crc32(buf[a:b]) for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist())),
                               np.uint32, len(lens))
            ends = self.tokens[name] + np.cumsum(lens)
            self.files[f"{name}{_OPEN_ENDS}"].write(ends.astype("<i8").tobytes())
            self.files[f"{name}{_OPEN_CRC}"].write(crcs.astype("<u4").tobytes())
            self.offset_chunks[name].append(ends)
            self.crc_chunks[name].append(crcs)
            self.tokens[name] += int(lens.sum())
            self.nbytes += buf.nbytes
        self.files[_OPEN_IDS].write(b"".join(i + b"\0" for i in ids))
        self.ids.extend(ids)

    def commit(self) -> None:
        """Make everything appended so far survive a crash (fsync + an atomic progress record)."""
        sizes = {}
        for name, f in self.files.items():
            f.flush()
            os.fsync(f.fileno())
            sizes[name] = f.tell()
        progress = {"docs": self.docs, "files": sizes, "sha256": _digest_of(self.tmp, self.fields, sizes)}
        atomic_write_bytes(self.tmp / _PROGRESS, json.dumps(progress).encode("utf-8"), durable=True)
        self.committed = self.docs

    def close_files(self) -> None:
        for f in self.files.values():
            if not f.closed:
                f.close()

    def seal(self, final: Path, durable: bool) -> dict[str, Any]:
        """Finish the files, rename the folder to ``final`` and return its manifest entry."""
        for f in self.files.values():
            f.flush()
            if durable:
                os.fsync(f.fileno())
            f.close()
        files: dict[str, dict[str, Any]] = {}
        for spec in self.fields:
            files[data_file(spec.name)] = {"bytes": self.tokens[spec.name] * spec.row_nbytes,
                                           "sha256": self.hashes[spec.name].hexdigest()}
            offsets = np.concatenate(self.offset_chunks[spec.name]).astype(np.int64)
            files[offsets_file(spec.name)] = self._write_small(offsets_file(spec.name), npy_bytes(offsets), durable)
            crcs = np.concatenate(self.crc_chunks[spec.name]).astype(np.uint32)
            files[crc_file(spec.name)] = self._write_small(crc_file(spec.name), npy_bytes(crcs), durable)
        ids = np.array(self.ids, dtype=np.bytes_)
        files[IDS_FILE] = self._write_small(IDS_FILE, npy_bytes(ids), durable)
        for name in [_PROGRESS, *self._file_names()]:
            if name not in files:
                (self.tmp / name).unlink(missing_ok=True)
        if durable:
            fsync_dir(self.tmp)
        os.replace(self.tmp, final)
        if durable:
            fsync_dir(final.parent)
        return {"name": final.name, "docs": self.docs, "first_id": decode_id(self.ids[0]),
                "last_id": decode_id(self.ids[-1]), "tokens": dict(self.tokens), "files": files}

    def _write_small(self, name: str, data: bytes, durable: bool) -> dict[str, Any]:
        (self.tmp / name).unlink(missing_ok=True)  # a link left in a resumed folder is removed, not followed
        with open_nofollow(self.tmp / name, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _sealed_entry(folder: Path, fields: list[FieldSpec]) -> dict[str, Any] | None:
    """The manifest entry of a sealed shard folder that was never listed, or None if it is not a
    whole, consistent shard (a sealed folder only gets its name once its files are fsynced)."""
    try:
        names = shard_files([f.name for f in fields])
        files = {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)} for name in names}
        ids = np.load(folder / IDS_FILE, allow_pickle=False)
        tokens = {}
        for f in fields:
            offsets = np.load(folder / offsets_file(f.name), allow_pickle=False)
            crcs = np.load(folder / crc_file(f.name), allow_pickle=False)
            if offsets.shape != (len(ids) + 1,) or crcs.shape != (len(ids),) or (np.diff(offsets) < 0).any():
                return None
            tokens[f.name] = int(offsets[-1])
            if files[data_file(f.name)]["bytes"] != tokens[f.name] * f.row_nbytes:
                return None
        if not len(ids):
            return None
        return {"name": folder.name, "docs": int(len(ids)), "first_id": decode_id(ids[0]),
                "last_id": decode_id(ids[-1]), "tokens": tokens, "files": files}
    except (OSError, ValueError, EOFError):
        return None


def _overlaps(folder: Path, others: list[Path]) -> bool:
    """Whether the shard ``folder`` holds an id that one of the shards ``others`` holds."""
    ids = np.load(folder / IDS_FILE, allow_pickle=False)
    for other in others:
        theirs = np.load(other / IDS_FILE, allow_pickle=False)
        width = max(ids.dtype.itemsize, theirs.dtype.itemsize)
        if np.isin(ids.astype(f"S{width}"), theirs.astype(f"S{width}")).any():
            return True
    return False


def _digest_of(tmp: Path, fields: list[FieldSpec], sizes: Mapping[str, int]) -> str:
    """sha256 of the committed bookkeeping files (ids, ends, CRCs; small), so that a resumed shard
    never trusts a damaged progress record. The data itself is covered by the per-doc CRCs."""
    h = hashlib.sha256()
    for name in _OpenShard._names_for(fields):
        if name.endswith(".bin"):
            continue
        with open(tmp / name, "rb") as f:
            h.update(f.read(sizes[name]))
    return h.hexdigest()


class CacheWriter:
    """Appends documents to a store folder; see the module docstring for guarantees.

    Use :meth:`open` (not the constructor), ideally as a context manager::

        fields = [FieldSpec("states", "int8", 384), FieldSpec("input_ids", "raw-int32")]
        with CacheWriter.open(path, fields=fields, metadata={"fingerprint": fp}) as writer:
            for doc_id, states, ids in docs:
                if doc_id not in writer:
                    writer.add(doc_id, {"states": states, "input_ids": ids})
        # leaving the block normally calls close(): the store is complete and readable

    If the block raises, the open shard is sealed (what was added is kept) but the store stays
    incomplete, so a reader refuses it until the build is rerun and closed.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], fields: list[FieldSpec], lock: WriterLock,
                 duplicates: str, durable: bool, commit_docs: int = DEFAULT_COMMIT_DOCS,
                 commit_seconds: float = DEFAULT_COMMIT_SECONDS) -> None:
        self.path = path
        self._manifest = manifest
        self.fields = fields
        self._lock = lock
        self._duplicates = duplicates
        self._durable = durable
        self._ids = IdSet()
        self._shard: _OpenShard | None = None
        self._modified = False
        self._closed = False
        self._broken: BaseException | None = None
        self._commit_docs = commit_docs
        self._commit_seconds = commit_seconds
        self._last_commit = time.monotonic()

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | os.PathLike, fields: Iterable[FieldSpec] | Mapping[str, Any],
             metadata: Mapping[str, Any] | None = None, shard_size: int = DEFAULT_SHARD_DOCS,
             shard_bytes: int = DEFAULT_SHARD_BYTES, *, duplicates: str = "skip", verify: bool = False,
             durable: bool = True, commit_docs: int = DEFAULT_COMMIT_DOCS,
             commit_seconds: float = DEFAULT_COMMIT_SECONDS, part: Mapping[str, Any] | None = None) -> "CacheWriter":
        """Create a store at ``path`` or reopen a partial (or complete) one to add documents.

        Args:
            path: the store folder (created if needed; an existing folder must be empty or a store).
            fields: the fields every document has (see :class:`FieldSpec`).
            metadata: JSON-serialisable dict identifying what the cache was built from (e.g. the
                model configuration's fingerprint). On reopen it must equal the stored one exactly.
            shard_size: a shard is sealed once it holds this many documents ...
            shard_bytes: ... or this many bytes of token data, whichever comes first.
            duplicates: ``"skip"`` (adding a stored id does nothing and returns False) or ``"error"``.
            verify: on reopen, also recompute the checksums of existing shards and drop bad ones
                (default: only their presence and sizes are checked, which is cheap).
            durable: fsync files and folders when sealing and committing (turn off only for
                throwaway stores: without it nothing is committed before a shard is sealed).
            commit_docs: the open shard is committed after this many documents ...
            commit_seconds: ... or this many seconds since the last commit, whichever comes first.
            part: for a store holding one share of a collection, the share's description (see
                :mod:`lateint.cache.shards`); on reopen it must equal the stored one.

        Raises:
            CacheMismatchError: the store exists with other fields or metadata.
            InputError: the folder holds something else, or another writer has it open.
            CorruptionError: the manifest is unreadable.
        """
        folder = Path(path)
        specs = normalize_fields(fields)
        meta = normalize_metadata(metadata)
        if int(shard_size) < 1 or int(shard_bytes) < 1:
            raise ConfigError(f"shard_size and shard_bytes must be >= 1, got {shard_size} and {shard_bytes}")
        if int(commit_docs) < 1 or not float(commit_seconds) > 0:
            raise ConfigError(f"commit_docs must be >= 1 and commit_seconds > 0, got {commit_docs} and {commit_seconds}")
        if duplicates not in ("skip", "error"):
            raise ConfigError(f"duplicates must be 'skip' or 'error', got {duplicates!r}")
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} exists and is not a folder; choose a folder path for the cache")
        folder.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(folder)
        try:
            if (folder / MANIFEST_FILE).exists():
                manifest = load_manifest(folder)
                stored_fields = [FieldSpec.from_json(f).to_json() for f in manifest["fields"]]
                wanted = [s.to_json() for s in specs]
                if stored_fields != wanted:
                    raise CacheMismatchError(
                        f"the document cache at {folder} stores fields {stored_fields}, not {wanted}. "
                        "Use a new path for this configuration, or delete the old cache folder to rebuild it.")
                check_metadata(folder, manifest["metadata"], meta, "Use a new path for this configuration, "
                               "or delete the old cache folder to rebuild it.")
                stored_part = {k: v for k, v in (manifest.get("part") or {}).items() if k not in PART_COLLECTION_KEYS}
                if stored_part != normalize_metadata(part):
                    raise CacheMismatchError(
                        f"the document cache at {folder} holds the share {stored_part or 'all documents'}, not "
                        f"{normalize_metadata(part) or 'all documents'}; use a new path for this share")
            else:
                strays = [p.name for p in folder.iterdir() if p.name != ".lock"]
                if strays:
                    raise InputError(f"{folder} is not empty and is not a document cache (no {MANIFEST_FILE}; "
                                     f"it holds {sorted(strays)[:5]}); choose an empty or new folder")
                manifest = new_manifest([s.to_json() for s in specs], meta, int(shard_size), int(shard_bytes))
                if part:
                    manifest["part"] = normalize_metadata(part)
            manifest["shard_limits"] = {"docs": int(shard_size), "bytes": int(shard_bytes)}
            writer = cls(folder, manifest, specs, lock, duplicates, durable, int(commit_docs), float(commit_seconds))
            writer._recover(verify)
        except BaseException:
            lock.release()
            raise
        return writer

    def _recover(self, verify: bool) -> None:
        """Keep the sound sealed shards, delete everything else, and load the stored ids."""
        shards_dir = self.path / SHARDS_DIR
        if shards_dir.is_symlink():
            raise CorruptionError(f"{shards_dir} is a symbolic link; a cache's shards must be inside its folder. "
                                  f"Delete {self.path} and rebuild the cache")
        shards_dir.mkdir(exist_ok=True)
        kept, dropped = [], []
        for entry in self._manifest["shards"]:
            problems = file_problems(shards_dir / entry["name"], entry["files"], check_hash=verify)
            if problems:
                dropped.append(entry["name"])
                remove_tree(shards_dir / entry["name"])
                warnings.warn(f"document cache {self.path}: shard {entry['name']} is damaged ({problems[0]}); "
                              f"its {entry['docs']} documents will be recomputed", stacklevel=3)
            else:
                kept.append(entry)
        sealed = shards_dir / shard_name(self._manifest["next_shard"])
        entry = _sealed_entry(sealed, self.fields) if not dropped and sealed.is_dir() and not sealed.is_symlink() else None
        if entry is not None and not _overlaps(sealed, [shards_dir / e["name"] for e in kept]):
            # Killed after renaming a sealed (fsynced) shard into place but before listing it.
            kept.append(entry)
            self._manifest["next_shard"] += 1
            self._manifest["shards"] = kept
            self._mark_modified()
        listed = {e["name"] for e in kept}
        open_name = f"{TMP_PREFIX}{shard_name(self._manifest['next_shard'])}"
        if not dropped and (shards_dir / open_name).is_dir():
            self._shard = _OpenShard.resume(shards_dir / open_name, self.fields)
        for p in shards_dir.iterdir():
            if p.name not in listed and not (self._shard is not None and p.name == open_name):
                # unsealed, uncommitted shard of a killed writer, or sealed but never listed
                remove_tree(p)
        index = self._manifest.get("index")
        for p in self.path.iterdir():
            stale_index = p.name.startswith(INDEX_PREFIX) and (index is None or p.name != index["name"])
            if stale_index or p.name.startswith(TMP_PREFIX) or p.name.startswith(f".{MANIFEST_FILE}.tmp"):
                remove_tree(p)
        self._manifest["shards"] = kept
        if dropped:
            self._mark_modified()
        else:
            save_manifest(self.path, self._manifest, self._durable)
        chunks = [np.load(shards_dir / e["name"] / IDS_FILE, allow_pickle=False) for e in kept]
        if self._shard is not None:
            chunks.append(np.array(self._shard.ids, dtype=np.bytes_))
            self._mark_modified()
        if chunks:
            width = max(c.dtype.itemsize for c in chunks)
            ids = np.concatenate([c.astype(f"S{width}") for c in chunks])
            ids.sort()
            if len(ids) > 1 and (dup := np.nonzero(ids[1:] == ids[:-1])[0]).size:
                raise CorruptionError(f"document cache {self.path} stores doc id {decode_id(ids[dup[0]])!r} "
                                      "twice; delete the folder and rebuild the cache")
            self._ids = IdSet(ids)

    def _mark_modified(self) -> None:
        if self._modified:
            return
        self._modified = True
        old = self._manifest.get("index")
        self._manifest["complete"] = False
        self._manifest["index"] = None
        save_manifest(self.path, self._manifest, self._durable)
        if old is not None:
            remove_tree(member_path(self.path, old["name"], f"the manifest of {self.path}"))

    # ------------------------------------------------------------------ queries

    @property
    def metadata(self) -> dict[str, Any]:
        """The store's metadata."""
        return self._manifest["metadata"]

    @property
    def num_docs(self) -> int:
        """Documents stored so far (sealed or in the open shard)."""
        return len(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def contains(self, doc_id: str) -> bool:
        """Whether ``doc_id`` is already stored (in a sealed shard or the open one)."""
        return encode_ids([doc_id])[0] in self._ids

    __contains__ = contains

    def missing(self, doc_ids: Iterable[str]) -> list[str]:
        """The ids of ``doc_ids`` not stored yet, in their order (vectorised; use it to filter a
        collection before encoding it)."""
        ids = as_id_list(doc_ids)
        if not ids:
            return []
        found = self._ids.contains_many(encode_ids(ids))
        return [ids[i] for i in np.nonzero(~found)[0]]

    def done_ids(self) -> set[str]:
        """All stored ids as a Python set (about 100 bytes per id: prefer :meth:`contains` or
        :meth:`missing` for large collections)."""
        return {decode_id(k) for k in self._ids.sorted_array().tolist()}

    # ------------------------------------------------------------------ adding

    def add(self, doc_id: str, arrays: Mapping[str, ArrayLike]) -> bool:
        """Store one document: ``arrays`` maps every field name to an array ``[n_tokens, *shape]``
        (numpy or torch, any device). Returns False, storing nothing, if ``doc_id`` is already
        stored (with ``duplicates="skip"``)."""
        return self.add_batch([doc_id], {name: [value] for name, value in arrays.items()}) == 1

    def add_batch(self, doc_ids: Sequence[str], arrays: Mapping[str, ArrayLike | Sequence[ArrayLike]],
                  lengths: Mapping[str, ArrayLike] | ArrayLike | None = None) -> int:
        """Store a batch of documents; returns how many were stored (stored ids are skipped).

        Args:
            doc_ids: B ids.
            arrays: for every field, either a list of B arrays ``[n_i, *shape]`` or one padded
                array ``[B, max_len, *shape]`` (numpy or torch; real tokens are selected on the
                tensor's device before moving to the CPU).
            lengths: for padded arrays, the real tokens per document: ints ``[B]`` or a bool mask
                ``[B, max_len]``; either a mapping per field or one value for all padded fields.
                None means every position is real.
        """
        self._check_writable()
        ids = as_id_list(doc_ids)
        keys = encode_ids(ids).tolist()
        names = [f.name for f in self.fields]
        if set(arrays) != set(names):
            raise InputError(f"documents need exactly the fields {names}; got {sorted(arrays)} "
                             f"(missing {sorted(set(names) - set(arrays))}, unknown {sorted(set(arrays) - set(names))})")
        flat: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for spec in self.fields:
            lens_spec = lengths.get(spec.name) if isinstance(lengths, Mapping) else lengths
            tokens, lens = _flatten_field(spec, arrays[spec.name], lens_spec, len(ids))
            if spec.length is not None and (lens != spec.length).any():
                bad = int(np.nonzero(lens != spec.length)[0][0])
                raise InputError(f"field {spec.name!r} holds exactly {spec.length} tokens per document; "
                                 f"doc {ids[bad]!r} has {int(lens[bad])}")
            flat[spec.name] = (tokens, lens)

        keep = np.ones(len(ids), bool)
        seen: set[bytes] = set()
        for i, key in enumerate(keys):
            if key in self._ids or key in seen:
                keep[i] = False
            seen.add(key)
        if not keep.all() and self._duplicates == "error":
            dups = [ids[i] for i in np.nonzero(~keep)[0][:5]]
            raise InputError(f"{int((~keep).sum())} doc ids are already stored or repeated in the batch, "
                             f"e.g. {dups}; nothing from this batch was written")
        if not keep.any():
            return 0

        encoded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for spec in self.fields:
            tokens, lens = flat[spec.name]
            if not keep.all():
                starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
                tokens = tokens[token_ranges(starts[keep], lens[keep])]
                lens = lens[keep]
            encoded[spec.name] = (spec.codec_impl.encode(tokens), lens)
        kept_keys = [k for k, flag in zip(keys, keep) if flag]
        try:
            self._append(kept_keys, encoded)
        except BaseException as e:
            self._broken = e
            raise
        return len(kept_keys)

    def _append(self, keys: list[bytes], encoded: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Write encoded docs, sealing shards at their limits (a shard may pass the byte limit by
        less than one document, so a document is never split)."""
        self._mark_modified()
        limits = self._manifest["shard_limits"]
        n = len(keys)
        doc_bytes = np.zeros(n, np.int64)
        token_starts = {}
        for spec in self.fields:
            rows, lens = encoded[spec.name]
            doc_bytes += lens * spec.row_nbytes
            token_starts[spec.name] = np.concatenate([[0], np.cumsum(lens)])
        i = 0
        while i < n:
            if self._shard is None:
                number = self._manifest["next_shard"]
                self._shard = _OpenShard(self.path / SHARDS_DIR / f"{TMP_PREFIX}{shard_name(number)}", self.fields)
            shard = self._shard
            room = limits["docs"] - shard.docs
            if self._durable:
                room = min(room, self._commit_docs - shard.uncommitted)
            cum = np.cumsum(doc_bytes[i:i + room])
            k = min(room, int(np.searchsorted(cum, limits["bytes"] - shard.nbytes)) + 1, n - i)
            part = {}
            for spec in self.fields:
                rows, lens = encoded[spec.name]
                t = token_starts[spec.name]
                part[spec.name] = (rows[t[i]:t[i + k]], lens[i:i + k])
            shard.append(keys[i:i + k], part)
            for key in keys[i:i + k]:
                self._ids.add(key)
            if shard.docs >= limits["docs"] or shard.nbytes >= limits["bytes"]:
                self._seal()
            elif self._durable and (shard.uncommitted >= self._commit_docs
                                    or time.monotonic() - self._last_commit >= self._commit_seconds):
                shard.commit()
                self._last_commit = time.monotonic()
            i += k

    def _seal(self) -> None:
        shard, self._shard = self._shard, None
        if shard is None:
            return
        if shard.docs == 0:
            shard.close_files()
            remove_tree(shard.tmp)
            return
        number = self._manifest["next_shard"]
        entry = shard.seal(self.path / SHARDS_DIR / shard_name(number), self._durable)
        self._manifest["shards"].append(entry)
        self._manifest["next_shard"] = number + 1
        save_manifest(self.path, self._manifest, self._durable)
        self._last_commit = time.monotonic()

    def record_side_folder(self, name: str) -> None:
        """List the files of the folder ``name`` beside the shards (e.g. a compressor's weights) in
        the manifest with their checksums, so that readers check them too. If it is listed
        already, check it instead (:class:`CorruptionError` if it changed)."""
        self._check_writable()
        folder = member_path(self.path, name, "a side folder", InputError)
        if folder.is_symlink():
            raise CorruptionError(f"{folder} is a symbolic link; a cache's side folder must be a folder inside it. "
                                  "Delete the link and rerun the build")
        files = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        side = self._manifest.setdefault("side", {})
        if name in side:
            if side[name]["files"] != files:
                raise CorruptionError(f"{folder} differs from the files the manifest of {self.path} lists; restore "
                                      f"them, or delete {self.path} and rebuild the cache")
            return
        side[name] = {"files": files}
        save_manifest(self.path, self._manifest, self._durable)

    def commit(self) -> None:
        """Make the open shard's documents survive a crash now, without sealing it."""
        self._check_writable()
        if self._shard is not None and self._shard.uncommitted:
            try:
                self._shard.commit()
            except BaseException as e:
                self._broken = e
                raise
            self._last_commit = time.monotonic()

    def flush(self) -> None:
        """Seal the open shard now (if it holds documents), so they survive a crash."""
        self._check_writable()
        try:
            self._seal()
        except BaseException as e:
            self._broken = e
            raise

    # ------------------------------------------------------------------ finishing

    def close(self, collection_docs: int | None = None, collection_sha256: str | None = None) -> None:
        """Seal the last shard, write the id index and mark the store complete. Idempotent.

        ``collection_docs``, ``collection_sha256``: for a store holding one share of a collection
        (``part``), how many documents the whole collection has and its identity
        (:class:`~lateint.cache.shards.CollectionDigest`); a merge uses them to prove that its
        parts were cut from one collection and cover it.
        """
        if self._closed:
            return
        self._check_writable()
        try:
            self._seal()
            if collection_docs is not None and self._manifest.get("part"):
                self._manifest["part"]["collection_docs"] = int(collection_docs)
            if collection_sha256 is not None and self._manifest.get("part"):
                self._manifest["part"]["collection_sha256"] = str(collection_sha256)
            index = self._manifest.get("index")
            if (self._modified or index is None
                    or file_problems(self.path / index["name"], index["files"], check_hash=True)):
                self._write_index()
            self._manifest["complete"] = True
            save_manifest(self.path, self._manifest, self._durable)
        except BaseException as e:
            self._broken = e
            raise
        self._release()

    def abort(self) -> None:
        """Stop without sealing: the open shard's documents since its last commit are discarded,
        sealed shards and commits are kept, and the store stays incomplete (reopen it to resume)."""
        if self._closed:
            return
        if self._shard is not None:
            self._shard.close_files()
            if not self._shard.committed:
                remove_tree(self._shard.tmp)
            self._shard = None
        self._release()

    def _write_index(self) -> None:
        write_index(self.path, self._manifest, self._durable)

    def _check_writable(self) -> None:
        if self._closed:
            raise InputError(f"the CacheWriter for {self.path} is closed; open a new one to add documents")
        if self._broken is not None:
            raise InputError(f"the CacheWriter for {self.path} failed earlier ({self._broken!r}); "
                             "open a new one: it resumes from the last sealed shard")

    def _release(self) -> None:
        self._closed = True
        self._lock.release()

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        elif not self._closed:
            if self._broken is None:
                try:  # keep what was added: every appended document is whole
                    self._seal()
                except Exception:
                    pass
            self.abort()
        return False

    def __del__(self) -> None:
        # A writer dropped without close() behaves like a killed process: the open shard is
        # abandoned (the next writer deletes it) and the lock is released.
        try:
            if not self._closed:
                if self._shard is not None:
                    self._shard.close_files()
                self._release()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"CacheWriter({str(self.path)!r}, {self.num_docs} docs, {state})"


def write_index(folder: Path, manifest: dict[str, Any], durable: bool = True) -> None:
    """Write ``index-NNNNNN/`` (sorted ids, shard position, row) for the manifest's shards, point
    the manifest at it and save the manifest.

    Raises:
        CorruptionError: a doc id is stored twice.
    """
    shards_dir = folder / SHARDS_DIR
    entries = manifest["shards"]
    chunks = [np.load(shards_dir / e["name"] / IDS_FILE, allow_pickle=False) for e in entries]
    counts = np.array([len(c) for c in chunks], dtype=np.int64)
    if chunks:
        width = max(c.dtype.itemsize for c in chunks)
        ids = np.concatenate([c.astype(f"S{width}") for c in chunks])
    else:
        ids = np.empty(0, dtype="S1")
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if len(ids) > 1 and (dup := np.nonzero(ids[1:] == ids[:-1])[0]).size:
        raise CorruptionError(f"document cache {folder} stores doc id {decode_id(ids[dup[0]])!r} twice; "
                              "delete the folder and rebuild the cache")
    row_dtype = np.int32 if counts.max(initial=0) < 2**31 else np.int64
    shard_of = np.repeat(np.arange(len(entries), dtype=np.int32), counts)[order]
    starts = np.cumsum(counts) - counts
    row = (np.arange(len(ids), dtype=np.int64) - np.repeat(starts, counts))[order].astype(row_dtype)
    number = manifest.get("next_index", 0)
    name = f"{INDEX_PREFIX}{shard_name(number)}"
    tmp = folder / f"{TMP_PREFIX}{name}"
    remove_tree(tmp)
    tmp.mkdir()
    files = {}
    for fname, array in (("ids.npy", ids), ("shard.npy", shard_of), ("row.npy", row)):
        data = npy_bytes(array)
        with open_nofollow(tmp / fname, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        files[fname] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    os.replace(tmp, folder / name)
    if durable:
        fsync_dir(folder)
    old = manifest.get("index")
    manifest["index"] = {"name": name, "docs": int(len(ids)), "files": files}
    manifest["next_index"] = number + 1
    save_manifest(folder, manifest, durable)
    if old is not None and old["name"] != name:
        remove_tree(member_path(folder, old["name"], f"the manifest of {folder}"))

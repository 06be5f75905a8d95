"""Durable file operations the cache relies on: atomic replacement, fsync, hashing, locking."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np

from lateint.errors import InputError

try:
    import fcntl
except ImportError:  # not on POSIX: concurrent writers are not detected
    fcntl = None  # type: ignore[assignment]

_HASH_CHUNK = 1 << 22


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename or a new file) to disk, where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see either the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` serialisation of ``array`` (readable by ``np.load(mmap_mode='r')``)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def remove_tree(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


class WriterLock:
    """An exclusive advisory lock on ``<store>/.lock``; released by :meth:`release` or when the
    process ends (so a killed build never leaves a stale lock behind)."""

    def __init__(self, folder: Path) -> None:
        self._file = open(folder / ".lock", "a+")
        if fcntl is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._file.close()
                raise InputError(f"another CacheWriter has {folder} open (in this or another process); "
                                 "close it first, or write to a different path") from None

    def release(self) -> None:
        if not self._file.closed:
            if fcntl is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()

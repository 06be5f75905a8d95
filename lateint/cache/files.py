"""Durable and safe file operations: atomic replacement, fsync, hashing, locking, names read from
records checked to stay inside their folder, writes that never follow a symbolic link, and write
failures (a full disk) turned into one :class:`~lateint.errors.StorageError`."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from lateint.errors import CorruptionError, InputError, LateintError, StorageError

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


def fsync_tree(path: Path) -> None:
    """Flush every file and folder under ``path`` (and ``path`` itself) to disk."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY | _NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def member_path(folder: Path, name: object, what: str, error: type[LateintError] = CorruptionError) -> Path:
    """``folder / name`` once ``name`` is checked to be a plain file name: a non-empty string with no
    path separator, not ``.`` or ``..``, not absolute, no NUL. Every name read from a manifest,
    index or record goes through here before anything is read, written or deleted under it, so a
    crafted record cannot reach outside its folder.

    Raises:
        ``error`` (a :class:`CorruptionError` by default) naming ``what`` and the bad name.
    """
    if not plain_name(name):
        raise error(f"{what} names {name!r}, which is not a plain file name inside {folder} (no separators, "
                    "'..' or absolute paths); the record was damaged or crafted: do not use it")
    return folder / str(name)


def plain_name(name: object) -> bool:
    """Whether ``name`` is a plain file name (see :func:`member_path`)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\0" not in name and os.sep not in name and not (os.altsep and os.altsep in name)
            and not os.path.isabs(name))


#: ``O_NOFOLLOW`` where the platform has it (a symlink as the last component then fails to open).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_nofollow(path: Path, mode: str, buffering: int = -1) -> IO[bytes]:
    """``open(path, mode)`` for the binary modes ``wb``, ``ab``, ``r+b`` and ``rb`` that refuses a
    symbolic link (or anything but a regular file) at ``path``, so that no write reaches a file
    outside the folder through a link planted in it.

    Raises:
        CorruptionError: ``path`` is a symbolic link or not a regular file.
    """
    flags = {"wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "r+b": os.O_RDWR, "rb": os.O_RDONLY}[mode]
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(path):
            raise CorruptionError(f"{path} is a symbolic link; lateint never writes through a link. Delete it (the "
                                  "folder was tampered with) and rerun") from None
        raise
    try:
        if not _is_regular(os.fstat(fd).st_mode):
            raise CorruptionError(f"{path} is not a regular file; delete it (the folder was tampered with) and rerun")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, mode, buffering=buffering)


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def truncate_nofollow(path: Path, size: int) -> None:
    """``os.truncate(path, size)`` refusing a symbolic link or non-regular file at ``path``."""
    with open_nofollow(path, "r+b") as f:
        f.truncate(size)


@contextlib.contextmanager
def storage_errors(what: str, cleanup: Path | None = None) -> Iterator[None]:
    """Turn a failure to write ``what`` (a full disk, a read-only folder; ``OSError`` or a
    safetensors error) into one :class:`StorageError`, deleting ``cleanup`` (the partial output)
    first. lateint's own errors pass through unchanged (after the cleanup)."""
    try:
        yield
    except BaseException as exc:
        if cleanup is not None:
            remove_tree(cleanup)
        if isinstance(exc, LateintError) or not _is_write_failure(exc):
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0][:160]
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "No space" in str(exc):
            reason = "the disk is full"
        raise StorageError(f"cannot write {what}: {reason}; nothing of it was kept. Free space or choose another "
                           "folder, then rerun") from None


def _is_write_failure(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - safetensors is a dependency
        return False
    return isinstance(exc, SafetensorError)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see either the old or the new content (a
    symbolic link at ``path`` is replaced, never followed)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        remove_tree(tmp)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666), "wb") as f:
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

    def __init__(self, folder: Path, holder: str = "CacheWriter", advice: str = "close it first, or write to a "
                 "different path") -> None:
        self._file = open_nofollow(folder / ".lock", "ab")
        if fcntl is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._file.close()
                raise InputError(f"another {holder} has {folder} open (in this or another process); {advice}") from None

    def release(self) -> None:
        if not self._file.closed:
            if fcntl is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()

"""Importing ``ir_datasets`` with a writable home, and seeding that home with local files.

``ir_datasets`` binds the download locations of its built-in datasets to its home folder
(``$IR_DATASETS_HOME``, default ``~/.ir_datasets``) when it is first imported, so the home has to
be chosen before that import. Every module of this package imports ``ir_datasets`` through
:func:`import_ir_datasets` for that reason.

When ``LATEINT_DATA`` is set and the user has not chosen a home, the home becomes
``$LATEINT_CACHE/ir_datasets`` (default ``~/.cache/lateint/ir_datasets``), so that offline copies and
the docstores built from them stay out of the user's regular ``ir_datasets`` home.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from filelock import FileLock

from lateint.data.local_share import cache_root, data_root

logger = logging.getLogger(__name__)

HOME_ENV = "IR_DATASETS_HOME"

# The home the built-in datasets were bound to, found once per process.
_bound_home: Path | None = None


def import_ir_datasets() -> ModuleType:
    """Import ``ir_datasets``, first pointing its home at the lateint cache when that is wanted.

    The home is only chosen here when ``ir_datasets`` has not been imported yet, ``LATEINT_DATA``
    is set and ``IR_DATASETS_HOME`` is not; in every other case ``ir_datasets`` keeps the home it
    would use anyway.
    """
    if "ir_datasets" not in sys.modules and not os.environ.get(HOME_ENV) and data_root() is not None:
        os.environ[HOME_ENV] = str(cache_root() / "ir_datasets")
    import ir_datasets

    return ir_datasets


def ir_datasets_home() -> Path:
    """The home folder that the built-in ``ir_datasets`` datasets read their downloads from.

    This is the home in force when ``ir_datasets`` was imported, which can differ from the current
    ``IR_DATASETS_HOME`` if the variable was changed afterwards; it is read back from where the
    built-in ``cranfield`` dataset expects its files, a path fixed at import time.
    """
    global _bound_home
    if _bound_home is None:
        ir_datasets = import_ir_datasets()
        try:
            # cranfield caches its extracted documents at <home>/cranfield/docs.txt; asking for the
            # path without force downloads nothing.
            docs_file = Path(ir_datasets.registry["cranfield"].docs_path(force=False))
            _bound_home = docs_file.parent.parent
        except Exception:  # a future ir_datasets may lay cranfield out differently
            _bound_home = Path(ir_datasets.util.home_path())
    return _bound_home


def lock_file(name: str, home: Path | None = None) -> Path:
    """The file behind :func:`home_lock` ``(name)``, in ``home`` (default: the bound home)."""
    readable = re.sub(r"[^\w.-]+", "_", name)[-80:]
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return (home or ir_datasets_home()) / "lateint" / "locks" / f"{readable}-{digest}.lock"


@contextmanager
def home_lock(name: str) -> Iterator[None]:
    """Hold an inter-process lock named ``name`` in the ``ir_datasets`` home.

    Concurrent processes (the shards of a cache build, the ranks of ``torchrun``) share one home.
    ``ir_datasets`` builds a docstore in place and counts it built once its positions are
    written, before its id index is: a second process could then look ids up in an empty index
    and find none. Copies and builds therefore happen under this lock, one process at a time.
    """
    path = lock_file(name)
    lock: FileLock | None = FileLock(str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError:
        # a home this process cannot write to (a shared read-only one) is one no process builds in
        logger.debug("no lock %s: the ir_datasets home is not writable here", path)
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def seed_file(source: Path, destination: Path, *, replace_different: bool = False) -> bool:
    """Copy ``source`` to ``destination`` unless a file is already there.

    Args:
        source: the file to copy.
        destination: where it goes.
        replace_different: also replace an existing destination whose size differs from the
            source's (for copies that must follow the local folder); without it an existing file
            is kept, as ``ir_datasets`` keeps a file already at its download path.

    The copy goes through a temporary file in the destination folder and is renamed into place,
    so a reader never sees half a file. Returns whether a copy was made.
    """
    if destination.is_file():
        if not replace_different or destination.stat().st_size == source.stat().st_size:
            return False
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".part")
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    logger.info("copied %s to %s", source, destination)
    return True

"""The record store that makes long experiments resumable: one JSON record per finished unit of work.

Sweeps record each measured point, cross-validation each finished fold. A record is written
atomically once its unit is complete, so after an interruption (even ``kill -9``) a rerun finds
every finished unit recorded exactly once and redoes only the unfinished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lateint.errors import CorruptionError, InputError


class RecordStore:
    """JSON records by key in a folder (``<folder>/<key>.json``).

    Args:
        folder: where the records live (created on the first write).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        from lateint.cache.files import member_path

        if isinstance(key, str) and key.startswith("."):
            raise InputError(f"a record key must be a plain file name not starting with '.', got {key!r}.")
        return member_path(self.folder, f"{key}.json" if isinstance(key, str) and key else key, "a record key",
                           InputError)

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, or None when there is none.

        Raises:
            CorruptionError: the record exists but is not JSON.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CorruptionError(f"record {path} is unreadable ({exc}); delete it to redo that part.") from None

    def put(self, key: str, record: dict[str, Any]) -> Path:
        """Write the record of ``key`` atomically (a reader never sees half a record)."""
        path = self.path(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as f:
                f.write(json.dumps(record, indent=2))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    def keys(self) -> list[str]:
        """The keys recorded, sorted."""
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []

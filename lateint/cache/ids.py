"""Document ids as compact numpy byte strings, and the sets and lookups built on them.

Ids are Python ``str``; on disk and in memory they are utf-8 encoded into a fixed-width numpy
``'S'`` array (width = the longest id), which costs ``width`` bytes per id (7 for MS MARCO passage
ids, so 62 MB for all 8.8M) instead of ~60-90 bytes for a Python string in a set. numpy ``'S'``
strips trailing NUL bytes, so ids must not contain ``'\\x00'``; they must also be non-empty, and at
most :data:`MAX_ID_BYTES` long, so that one huge id cannot pad every entry to its width.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from lateint.errors import InputError

#: Longest document (or query) id accepted anywhere, in UTF-8 bytes.
MAX_ID_BYTES = 256


def encode_ids(doc_ids: Iterable[str]) -> np.ndarray:
    """utf-8 encode ``doc_ids`` into a numpy ``'S'`` array, checking each is a non-empty ``str``
    without NUL characters (:class:`InputError` otherwise)."""
    encoded = []
    for doc_id in doc_ids:
        if not isinstance(doc_id, str):
            raise InputError(f"doc ids must be str, got {type(doc_id).__name__} {doc_id!r}")
        if not doc_id or "\x00" in doc_id:
            raise InputError(f"doc id {doc_id!r} is empty or contains a NUL character")
        raw = doc_id.encode("utf-8")
        if len(raw) > MAX_ID_BYTES:
            raise InputError(f"doc id {doc_id[:40]!r}... is {len(raw):,} bytes long; ids of at most "
                             f"{MAX_ID_BYTES} bytes are accepted")
        encoded.append(raw)
    if not encoded:
        return np.empty(0, dtype="S1")
    return np.array(encoded, dtype=np.bytes_)


def decode_id(raw: bytes) -> str:
    """Inverse of :func:`encode_ids` for one id."""
    return bytes(raw).decode("utf-8")


def lookup_sorted(sorted_ids: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``query`` ids in the sorted ``'S'`` array ``sorted_ids`` and a bool mask of which
    were found (positions of missing ids are meaningless). ``O(len(query) * log(len(sorted_ids)))``."""
    if len(sorted_ids) == 0:
        return np.zeros(len(query), np.int64), np.zeros(len(query), bool)
    pos = np.searchsorted(sorted_ids, query)
    np.minimum(pos, len(sorted_ids) - 1, out=pos)
    found = sorted_ids[pos] == query
    return pos, found


def merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted union of two sorted ``'S'`` arrays with no common element."""
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    width = max(a.dtype.itemsize, b.dtype.itemsize)
    merged = np.concatenate([a.astype(f"S{width}"), b.astype(f"S{width}")])
    # numpy's stable sort is a timsort for strings: two sorted runs merge in linear time.
    merged.sort(kind="stable")
    return merged


class IdSet:
    """A set of encoded doc ids that stays compact for tens of millions of ids.

    Ids live in a sorted numpy ``'S'`` array (``width`` bytes each) plus a Python set of at most
    ``buffer`` recent additions, merged into the array when full. Membership is a set probe plus a
    binary search. Each merge rewrites the array (about 0.4 s at 10^7 ids), so a 10^7-document
    build spends ~15 s merging in total. Memory: ``n * width`` bytes (plus a transient copy during
    a merge) and ~100 bytes per buffered id (at most ``buffer`` of them, ~13 MB).
    """

    def __init__(self, sorted_ids: np.ndarray | None = None, buffer: int = 1 << 17) -> None:
        self._sorted = sorted_ids if sorted_ids is not None else np.empty(0, dtype="S1")
        self._recent: set[bytes] = set()
        self._buffer = buffer

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def __contains__(self, key: bytes) -> bool:
        if key in self._recent:
            return True
        if len(self._sorted) == 0:
            return False
        i = int(np.searchsorted(self._sorted, key))
        return i < len(self._sorted) and self._sorted[i] == key

    def contains_many(self, keys: np.ndarray) -> np.ndarray:
        """Bool mask: which of the ``'S'`` array ``keys`` are in the set."""
        _, found = lookup_sorted(self._sorted, keys)
        if self._recent:
            found |= np.fromiter((k in self._recent for k in keys.tolist()), bool, len(keys))
        return found

    def add(self, key: bytes) -> None:
        """Add one id (the caller guarantees it is not present yet)."""
        self._recent.add(key)
        if len(self._recent) >= self._buffer:
            self._flush()

    def sorted_array(self) -> np.ndarray:
        """All ids as one sorted ``'S'`` array."""
        self._flush()
        return self._sorted

    def _flush(self) -> None:
        if self._recent:
            recent = np.array(sorted(self._recent), dtype=np.bytes_)
            self._sorted = merge_sorted(self._sorted, recent)
            self._recent.clear()


def token_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each ``(s, n)``, without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    ends = np.cumsum(lengths)
    # Each output position is its run's start plus its rank inside the run.
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift


def as_id_list(doc_ids: str | Sequence[str] | np.ndarray) -> list[str]:
    """Accept one id or a sequence of ids; a bare string is one id, not a sequence of characters."""
    if isinstance(doc_ids, str):
        return [doc_ids]
    return list(doc_ids)

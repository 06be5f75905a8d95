"""Shares of a collection: which documents one of N cooperating builds stores.

A build with ``num_shards = N, shard_index = I`` stores the documents whose id hashes to ``I``
(``blake2b`` of the utf-8 id, 8 bytes little-endian, mod N). The rule depends on nothing but the
id, so every process, on any machine and in any order of the collection, agrees on the shares: they
are disjoint and together cover each document exactly once. Each share is an ordinary store (it
resumes like any build) whose manifest records its ``part`` (the share and, once complete, how many
documents the whole stream had and the stream's identity, :func:`collection_digest`), which
:mod:`lateint.cache.merge` checks before joining the parts: parts cut from two collections, or from
two versions of one collection whose texts differ, never merge.

Under ``torchrun`` or ``accelerate launch`` the share comes from the launcher's ``RANK`` and
``WORLD_SIZE`` (:func:`launcher_world`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from lateint.errors import ConfigError

#: How a document is assigned to a share (recorded in each part's manifest).
RULE = "blake2b-64(utf-8 doc id) mod num_shards"


def check_share(num_shards: int, shard_index: int) -> None:
    """:class:`ConfigError` unless ``0 <= shard_index < num_shards`` are integers."""
    if not isinstance(num_shards, int) or isinstance(num_shards, bool) or num_shards < 1:
        raise ConfigError(f"num_shards must be an integer >= 1, got {num_shards!r}")
    if not isinstance(shard_index, int) or isinstance(shard_index, bool) or not 0 <= shard_index < num_shards:
        raise ConfigError(f"shard_index must be an integer in 0..{num_shards - 1}, got {shard_index!r}")


def share_of(doc_id: str, num_shards: int) -> int:
    """The share ``doc_id`` belongs to."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_shards


def part_description(num_shards: int, shard_index: int) -> dict[str, Any]:
    """What a part's manifest records about its share."""
    check_share(num_shards, shard_index)
    return {"num_shards": num_shards, "shard_index": shard_index, "rule": RULE}


class CollectionDigest:
    """The identity of a stream of ``(doc_id, text)`` pairs: the sum modulo 2**256 of the sha256
    of each pair (id and text utf-8, each preceded by its length). It depends on every id and every
    text of the whole stream but not on its order, so every share's build of one collection, reading
    it in any order, records the same digest, and any edited, added or dropped document changes it."""

    _MODULUS = 1 << 256

    def __init__(self) -> None:
        self._sum = 0

    def add(self, item: object) -> None:
        h = hashlib.sha256()
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
            for part in item:
                data = part.encode("utf-8", "surrogatepass")
                h.update(len(data).to_bytes(8, "little"))
                h.update(data)
        else:  # malformed items are refused by the build; they still count here
            h.update(b"\xff" + repr(item).encode("utf-8", "backslashreplace"))
        self._sum = (self._sum + int.from_bytes(h.digest(), "little")) % self._MODULUS

    def hexdigest(self) -> str:
        return self._sum.to_bytes(32, "little").hex()


class Share:
    """Iterate over the ``(doc_id, text)`` pairs of ``docs`` in share ``shard_index`` of
    ``num_shards``, counting every pair of the stream (:attr:`seen`) and taking its identity
    (:attr:`digest`, a :class:`CollectionDigest`)."""

    def __init__(self, docs: Iterable, num_shards: int, shard_index: int) -> None:
        check_share(num_shards, shard_index)
        self.docs = docs
        self.num_shards = num_shards
        self.shard_index = shard_index
        self.seen = 0
        self.digest = CollectionDigest()
        self.exhausted = False

    def __iter__(self) -> Iterator:
        for item in self.docs:
            self.seen += 1
            self.digest.add(item)
            # Malformed items pass through so that the build rejects them with its own message.
            doc_id = item[0] if isinstance(item, (tuple, list)) and item else None
            if not isinstance(doc_id, str) or share_of(doc_id, self.num_shards) == self.shard_index:
                yield item
        self.exhausted = True


def launcher_world() -> tuple[int, int]:
    """``(rank, world_size)`` set by ``torchrun`` / ``accelerate launch`` (``(0, 1)`` otherwise)."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"RANK={os.environ.get('RANK')!r} and WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} must be "
                          "integers (they are set by torchrun or accelerate launch)") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is not in 0..WORLD_SIZE-1={world - 1}")
    return rank, world


def rank_part_path(out: Path, rank: int, world: int) -> Path:
    """Where rank ``rank`` of ``world`` builds its part of the cache ``out`` (beside it)."""
    return out.parent / f"{out.name}.parts" / f"{rank:05d}-of-{world:05d}"

"""``DocCache``: a ranker's document representations, computed once and stored.

What is stored depends on the ranker's split L (see :mod:`lateint.modeling.representations`):

=================  ==============================================  ===============================
representation     stored per document                             query time computes
=================  ==============================================  ===============================
``tokens``         L = 0: token ids and types (5 B/token)          the whole cross-encoder
``states``         0 < L < T: layer-L token states (``storage``    the query's L layers, then
                   codec, optionally PreTTR-compressed)            the T - L joint layers
``kv``             0 < L < T with ``precompute="kv"``: also the    the joint layers without the
                   first joint layer's document keys and values    document K/V projections
``vector``         L = T, twin: the pooled (normalised) vector     the query's encoding, a dot
``token_vectors``  L = T, maxsim / dipair: token vectors           the query's encoding + head
=================  ==============================================  ===============================

Costs (H = hidden size, per token): ``states`` fp32 4H bytes, fp16 2H, int8 H + 4; compression to
e dims replaces H by e; ``kv`` adds 2x the states' bytes (or replaces them at L = T - 1 with a
``cls`` head). This module stores, opens and checks; the representation encodes and scores.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from lateint.cache.compression import StateCompressor
from lateint.cache.fields import FieldSpec
from lateint.cache.files import atomic_write_bytes
from lateint.cache.fingerprint import WeightsState, cache_description, representation_fingerprint
from lateint.cache.reader import CacheReader
from lateint.cache.shards import Share, part_description
from lateint.cache.writer import CacheWriter
from lateint.errors import CacheMismatchError, ConfigError, InputError, MissingResourceError
from lateint.modeling.representations import Representation, representation_for
from lateint.modes import evaluating
from lateint.tokenization import is_blank

logger = logging.getLogger(__name__)

#: The folder of a compressed cache that holds its compressor.
COMPRESSOR_FOLDER = "compressor"
_BUILD_FILE = "build.json"
# Verified weight states remembered per cache: enough for a few rankers or views taking turns.
_VERIFIED_KEPT = 4


def field_specs(representation: Representation) -> list[FieldSpec]:
    """The storage fields of a representation."""
    return [FieldSpec(f.name, f.codec, f.shape, f.length) for f in representation.fields]


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


@dataclass
class BuildStats:
    """Throughput of one (possibly resumed) build run."""

    documents_added: int
    documents_skipped: int
    tokens_added: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.documents_added / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_added / self.seconds if self.seconds else 0.0


class DocCache:
    """A document cache on disk, for one ranker configuration.

    Build with :meth:`build`, open with :meth:`open`, re-rank with :func:`lateint.rerank`.
    """

    def __init__(self, path: Path, reader: CacheReader, compressor: StateCompressor | None):
        self.path = path
        self.reader = reader
        self.compressor = compressor
        # Weight states already verified against the fingerprint, newest first.
        self._verified: list[WeightsState] = []

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ranker,
        docs: Iterable[tuple[str, str]],
        path: str | Path,
        storage: str = "fp16",
        *,
        compressor: StateCompressor | None = None,
        precompute: str = "none",
        batch_size: int = 64,
        chunk_docs: int = 4096,
        shard_size: int = 100_000,
        progress: bool = True,
        total: int | None = None,
        num_shards: int = 1,
        shard_index: int = 0,
        text: str | None = None,
    ) -> "DocCache":
        """Compute and store the document representations of ``docs`` for ``ranker``.

        Args:
            ranker: the :class:`~lateint.SplitRanker` whose split decides what is stored.
            docs: an iterable of ``(doc_id, text)``; it is streamed in chunks of ``chunk_docs``,
                so collections of millions of documents pass through bounded memory.
            path: the cache folder. If it holds an interrupted build for the same configuration,
                the build resumes: stored documents are skipped, the rest are added.
            storage: ``fp32``, ``fp16`` or ``int8`` (per-token scales).
            compressor: a trained :class:`StateCompressor` (PreTTR), for 0 < L < T.
            precompute: ``"kv"`` also stores the first joint layer's document keys and values.
            batch_size: documents per forward pass (sorted by length within each chunk).
            shard_size: documents per shard file.
            progress: show a progress bar with throughput.
            total: number of documents, for the progress bar, when ``docs`` has no ``len``.
            num_shards, shard_index: store only share ``shard_index`` of ``num_shards`` of the
                documents (by a hash of the id, see :mod:`lateint.cache.shards`), as a part for
                :func:`lateint.cache.merge.merge_parts`; ``docs`` is still the whole collection.
            text: which text of the documents ``docs`` carries (e.g. ``"default_text"``), recorded
                in the cache so that caches of different texts are never mixed.

        Raises:
            CacheMismatchError: ``path`` holds a cache of another configuration.
            InputError: a document id is not a string or a text is empty.
        """
        path = Path(path)
        batch_size = _positive_int(batch_size, "batch_size")
        chunk_docs = _positive_int(chunk_docs, "chunk_docs")
        shard_size = _positive_int(shard_size, "shard_size")
        representation = representation_for(ranker, storage, compressor, precompute)
        fingerprint = representation_fingerprint(representation)
        # The precision is also in the settings (and so the fingerprint) when it is not fp32; here it is
        # recorded for every cache, readable without knowing that convention.
        metadata = {"fingerprint": fingerprint, "settings": cache_description(representation),
                    "dtype": ranker.config.dtype}
        if text is not None:
            metadata["text"] = text
        if total is None and hasattr(docs, "__len__"):
            total = len(docs)  # type: ignore[arg-type]
        share = part = None
        if num_shards != 1 or shard_index != 0:
            part = part_description(num_shards, shard_index)
            docs = share = Share(docs, num_shards, shard_index)
            total = None if total is None else -(-total // num_shards)  # about a 1/N share
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"cache L={ranker.split} {representation.name}/{storage}", unit="doc", smoothing=0.05)
        added = skipped = tokens = 0
        start = time.perf_counter()
        try:
            # On an interruption the writer seals what was added, so a rerun resumes after it.
            with evaluating(ranker), CacheWriter.open(path, field_specs(representation), metadata, shard_size=shard_size,
                                                      part=part) as writer:
                if compressor is not None and not StateCompressor.saved_in(path / COMPRESSOR_FOLDER):
                    compressor.save(path / COMPRESSOR_FOLDER)
                if compressor is not None:
                    writer.record_side_folder(COMPRESSOR_FOLDER)
                for chunk in _chunks(docs, chunk_docs):
                    todo = _validate_chunk(chunk, writer)
                    skipped += len(chunk) - len(todo)
                    if bar is not None and len(chunk) > len(todo):
                        bar.update(len(chunk) - len(todo))
                    if not todo:
                        continue
                    sides = ranker.doc_sides([t for _, t in todo])
                    order = sorted(range(len(todo)), key=lambda i: len(sides[i]))
                    for b in range(0, len(order), batch_size):
                        idx = order[b : b + batch_size]
                        with torch.inference_mode():
                            arrays = representation.encode([sides[i] for i in idx])
                        writer.add_batch([todo[i][0] for i in idx], arrays)
                        added += len(idx)
                        tokens += sum(len(sides[i]) for i in idx)
                        if bar is not None:
                            bar.update(len(idx))
                            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}")
                if share is not None:
                    writer.close(collection_docs=share.seen, collection_sha256=share.digest.hexdigest())
                else:
                    writer.close()
        finally:
            if bar is not None:
                bar.close()
        stats = BuildStats(added, skipped, tokens, time.perf_counter() - start)
        _record_build(path, stats)
        cache = cls.open(path)
        cache.last_build = stats
        return cache

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> "DocCache":
        """Open a complete cache (memory-mapped).

        Raises:
            MissingResourceError: no cache at ``path``, or its build never finished (rerun it).
            CorruptionError: a file is damaged, missing or has the wrong size (see
                :mod:`lateint.cache.reader` for what is checked when).
        """
        path = Path(path)
        if not path.exists():
            raise MissingResourceError(f"no document cache at {path}; build one with DocCache.build or `lateint cache build`.")
        reader = CacheReader.open(path)
        side = reader.side_folder(COMPRESSOR_FOLDER)  # checksums checked
        compressor = StateCompressor.load(side) if side is not None else None
        return cls(path, reader, compressor)

    @property
    def settings(self) -> dict:
        """The settings the cache was built with (representation, split, layout, storage ...)."""
        return self.reader.metadata["settings"]

    @property
    def dtype(self) -> str:
        """The precision the cache's values were computed in (``fp32`` for caches that predate the record)."""
        return self.reader.metadata.get("dtype") or self.settings.get("dtype", "fp32")

    @property
    def representation_name(self) -> str:
        """What the cache stores: ``tokens``, ``states``, ``kv``, ``vector`` or ``token_vectors``."""
        return self.settings["representation"]

    def __len__(self) -> int:
        return len(self.reader)

    def info(self) -> dict:
        """Sizes: documents, tokens, bytes per token and per document, per field."""
        info = self.reader.info()
        info["settings"] = self.settings
        info["dtype"] = self.dtype
        build = self.path / _BUILD_FILE
        if build.exists():
            try:
                info["builds"] = json.loads(build.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                info["builds"] = f"{build} is unreadable (build statistics only; the cache is unaffected)"
        return info

    def verify(self) -> dict:
        """Check every file's checksum and every manifest field (:class:`~lateint.CorruptionError`
        naming the damaged file)."""
        return self.reader.verify()

    def representation(self, ranker) -> Representation:
        """The representation of ``ranker`` with the options this cache was built with."""
        s = self.settings
        try:
            return representation_for(ranker, s["storage"], self.compressor, s["precompute"])
        except ConfigError as exc:
            raise CacheMismatchError(f"the cache at {self.path} does not fit this ranker: {exc}") from None

    def check(self, ranker) -> Representation:
        """Raise :class:`~lateint.CacheMismatchError` unless the cache was built for ``ranker``;
        return the ranker's representation otherwise.

        The check is keyed on what determines the stored values (the settings and the weights the
        representation depends on), never on which object asks: the weights are hashed once, and
        again whenever a tensor's in-place version counter or storage moved (an optimizer step,
        ``load_state_dict``), or the split, layout or lengths changed.
        """
        representation = self.representation(ranker)
        if any(state.holds(representation) for state in self._verified):
            return representation
        s = self.settings
        built, runs = self.dtype, ranker.config.dtype
        if built != runs:
            # No pair of precisions is proven exact: states computed in one and scored in another differ.
            raise CacheMismatchError(
                f"the document cache at {self.path} was built in {built} and this ranker runs in {runs}; "
                f"run the ranker with dtype {built} (--dtype {built}) or build a {runs} cache at a new path.")
        if representation_fingerprint(representation) != self.reader.metadata["fingerprint"]:
            mine = cache_description(representation)
            diffs = [f"{k}: cache {s.get(k)!r} vs ranker {mine.get(k)!r}" for k in sorted(set(s) | set(mine)) if s.get(k) != mine.get(k)]
            detail = "; ".join(diffs) if diffs else "same settings but different model weights or tokenizer"
            raise CacheMismatchError(
                f"the document cache at {self.path} was built for another ranker configuration ({detail}). "
                "Its scores would be wrong for this ranker: build a cache for it at a new path."
            )
        # The newest first; old states (weights since trained further) are dropped, not hoarded.
        self._verified = [WeightsState(representation), *self._verified][:_VERIFIED_KEPT]
        return representation

    # -- reading ------------------------------------------------------------------------------
    def lengths(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Stored tokens per document."""
        return self.reader.lengths(doc_ids, self.reader_fields()[0])

    def reader_fields(self) -> list[str]:
        return list(self.reader.fields)

    def gather(self, doc_ids: Sequence[str], field: str, workspace: dict | None = None, *,
               packed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A padded batch ``(values [B, S, D], mask [B, S])`` of one field, or with ``packed`` the
        rows back to back ``(values [sum(lengths), D], lengths [B])``, with fp16 values left in
        fp16 (``workspace``: see :meth:`CacheReader.gather_padded`)."""
        if packed:
            return self.reader.gather_packed(doc_ids, field, workspace=workspace, as_stored=True)
        return self.reader.gather_padded(doc_ids, field, workspace=workspace)


def _validate_chunk(chunk: list, writer: CacheWriter) -> list[tuple[str, str]]:
    todo, seen = [], set()
    for item in chunk:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InputError(f"documents must be (doc_id, text) pairs; got {type(item).__name__} {str(item)[:60]!r}.")
        doc_id, text = item
        if not isinstance(doc_id, str):
            raise InputError(f"document id {doc_id!r} is a {type(doc_id).__name__}; ids must be strings.")
        if not isinstance(text, str) or is_blank(text):
            raise InputError(f"document {doc_id!r} has an empty text; drop it from the collection or give it a text "
                             "(`lateint cache build` and `lateint retrieve` leave such documents out with --skip-empty, "
                             "SplitIndexer with skip_empty=True).")
        if doc_id in seen or writer.contains(doc_id):
            continue
        seen.add(doc_id)
        todo.append((doc_id, text))
    return todo


def _record_build(path: Path, stats: BuildStats) -> None:
    file = path / _BUILD_FILE
    try:
        runs = json.loads(file.read_text()) if file.exists() else []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        runs = []  # statistics only: an unreadable record is replaced, never trusted
    if not isinstance(runs, list):
        runs = []
    runs.append({**asdict(stats), "docs_per_second": stats.docs_per_second, "tokens_per_second": stats.tokens_per_second})
    atomic_write_bytes(file, json.dumps(runs, indent=2).encode("utf-8"))


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return value

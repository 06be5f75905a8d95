"""``DocCache``: a ranker's document representations, computed once and stored.

What is stored depends on the ranker's split L (``kind``):

==========  =====================================================  ================================
kind        stored per document                                    query time computes
==========  =====================================================  ================================
``tokens``  L = 0: token ids and types (int32 + int8, 5 B/token)   the whole cross-encoder
``states``  0 < L < T: layer-L token states (``storage`` codec,    the query's L layers, then
            optionally PreTTR-compressed to e dims)                the T - L joint layers
``kv``      0 < L < T with ``precompute="kv"``: also the first     the joint layers without the
            joint layer's document keys and values (2H per token)  document K/V projections
``vector``  L = T, twin: the pooled (and normalised) vector        the query's encoding, a dot
``tokens``  L = T, maxsim: the projected token vectors             the query's encoding, MaxSim
``dipair``  L = T, dipair: the first k projected token vectors     the query's encoding + head
==========  =====================================================  ================================

At L = 0 nothing the query does not touch can be precomputed except the embedding lookup, which
is a gather; storing 384-768 floats per token for it would cost ~100x the bytes of the ids for
no saving, so the ``tokens`` kind stores ids. With ``precompute="kv"`` at L = T - 1 and a ``cls``
head, the states themselves are not needed (the last layer computes only the [CLS] row, whose
keys and values are cached), so only keys and values are stored.

Costs (H = hidden size, per token): ``states`` fp32 4H bytes, fp16 2H, int8 H + 4; compression to
e dims replaces H by e (and adds one small linear layer + LayerNorm per token at query time);
``kv`` adds 2x the states' bytes (or replaces them at L = T - 1 with a ``cls`` head).
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
from lateint.cache.fingerprint import cache_description, ranker_fingerprint
from lateint.cache.reader import CacheReader
from lateint.cache.shards import Share, part_description
from lateint.cache.writer import CacheWriter
from lateint.batching import length_batches
from lateint.errors import CacheMismatchError, ConfigError, InputError, MissingResourceError
from lateint.modeling.heads import ClsHead, SideRep
from lateint.modeling.layers import first_row_over_blocks
from lateint.tokenization import SideTokens

logger = logging.getLogger(__name__)

STORAGES = ("fp32", "fp16", "int8")
PRECOMPUTE = ("none", "kv")
_COMPRESSOR_DIR = "compressor"
_BUILD_FILE = "build.json"


@dataclass
class CachePlan:
    """What a cache for a given ranker and options holds."""

    kind: str
    fields: list[FieldSpec]
    storage: str
    precompute: str

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def plan_cache(ranker, storage: str, compressor: StateCompressor | None, precompute: str) -> CachePlan:
    """Decide the fields a cache of ``ranker`` stores (see the module docstring)."""
    if storage not in STORAGES:
        raise ConfigError(f"storage={storage!r} is unknown; use one of {', '.join(STORAGES)}.")
    if precompute not in PRECOMPUTE:
        raise ConfigError(f"precompute={precompute!r} is unknown; use 'none' or 'kv'.")
    L, T, H = ranker.split, ranker.num_layers, ranker.encoder.hidden_size
    head = ranker.config.head
    if compressor is not None and not 0 < L < T:
        raise ConfigError("a state compressor applies to layer-L states, that is 0 < split < T.")
    if precompute == "kv" and not 0 < L < T:
        raise ConfigError("precompute='kv' caches the first joint layer's keys and values, so it needs 0 < split < T.")
    if compressor is not None and compressor.hidden_size != H:
        raise ConfigError(f"the compressor restores {compressor.hidden_size} dims but the ranker's hidden size is {H}.")
    if ranker.pair_tokenizer.doc_positions_depend_on_query and L > 0:
        raise ConfigError(
            "layout='packed' places document positions after the query, so at split > 0 document states depend "
            "on the query and cannot be cached. Use layout='offset' (PreTTR) or 'restart' (DeFormer)."
        )
    if L == 0:
        fields = [FieldSpec("input_ids", "raw-int32"), FieldSpec("token_type_ids", "raw-int8")]
        return CachePlan("tokens", fields, storage, precompute)
    if L < T:
        dim = compressor.dim if compressor is not None else H
        fields = []
        kv_only = precompute == "kv" and L == T - 1 and isinstance(ranker.head, ClsHead)
        if not kv_only:
            fields.append(FieldSpec("states", storage, dim))
        if precompute == "kv":
            fields.append(FieldSpec("keys_values", storage, 2 * H))
        return CachePlan("kv" if precompute == "kv" else "states", fields, storage, precompute)
    if head.kind == "twin":
        return CachePlan("vector", [FieldSpec("vector", storage, H, length=1)], storage, precompute)
    if head.kind == "maxsim":
        return CachePlan("token_vectors", [FieldSpec("vectors", storage, head.maxsim_dim)], storage, precompute)
    return CachePlan("dipair", [FieldSpec("vectors", storage, head.dipair_dim)], storage, precompute)


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

    Build with :meth:`build`, open with :meth:`open`, re-rank with
    :meth:`lateint.SplitRanker.rerank`.
    """

    def __init__(self, path: Path, reader: CacheReader, compressor: StateCompressor | None):
        self.path = path
        self.reader = reader
        self.compressor = compressor
        self._checked: dict[int, bool] = {}

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
        plan = plan_cache(ranker, storage, compressor, precompute)
        fingerprint = ranker_fingerprint(ranker, storage, compressor, plan.kind, precompute)
        metadata = {"fingerprint": fingerprint,
                    "settings": cache_description(ranker, storage, compressor, plan.kind, precompute)}
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

            bar = tqdm(total=total, desc=f"cache L={ranker.split} {plan.kind}/{storage}", unit="doc", smoothing=0.05)
        added = skipped = tokens = 0
        start = time.perf_counter()
        was_training = ranker.training
        ranker.eval()
        try:
            # On an interruption the writer seals what was added, so a rerun resumes after it.
            with CacheWriter.open(path, plan.fields, metadata, shard_size=shard_size, part=part) as writer:
                if compressor is not None and not (path / _COMPRESSOR_DIR).exists():
                    compressor.save(path / _COMPRESSOR_DIR)
                if compressor is not None:
                    writer.record_side_folder(_COMPRESSOR_DIR)
                for chunk in _chunks(docs, chunk_docs):
                    todo = _validate_chunk(chunk, writer)
                    skipped += len(chunk) - len(todo)
                    if bar is not None and len(chunk) > len(todo):
                        bar.update(len(chunk) - len(todo))
                    if not todo:
                        continue
                    sides = ranker.pair_tokenizer.doc_sides([t for _, t in todo])
                    order = sorted(range(len(todo)), key=lambda i: len(sides[i]))
                    for b in range(0, len(order), batch_size):
                        idx = order[b : b + batch_size]
                        arrays = _representations(ranker, plan, [sides[i] for i in idx], compressor)
                        writer.add_batch([todo[i][0] for i in idx], arrays)
                        added += len(idx)
                        tokens += sum(len(sides[i]) for i in idx)
                        if bar is not None:
                            bar.update(len(idx))
                            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - start, 1e-9):.0f}")
                writer.close(collection_docs=share.seen if share is not None else None)
        finally:
            ranker.train(was_training)
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
        side = reader.side_folder(_COMPRESSOR_DIR)  # checksums checked
        compressor = StateCompressor.load(side) if side is not None else None
        return cls(path, reader, compressor)

    @property
    def settings(self) -> dict:
        """The settings the cache was built with (kind, split, layout, storage ...)."""
        return self.reader.metadata["settings"]

    @property
    def kind(self) -> str:
        return self.settings["kind"]

    def __len__(self) -> int:
        return len(self.reader)

    def info(self) -> dict:
        """Sizes: documents, tokens, bytes per token and per document, per field."""
        info = self.reader.info()
        info["settings"] = self.settings
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

    def check(self, ranker) -> None:
        """Raise :class:`~lateint.CacheMismatchError` unless the cache was built for ``ranker``.

        The check hashes the ranker's relevant weights once per ranker object; if those weights
        change afterwards, call :meth:`forget` so that the next use checks them again.
        """
        key = id(ranker)
        if self._checked.get(key):
            return
        s = self.settings
        try:
            expected = ranker_fingerprint(ranker, s["storage"], self.compressor, s["kind"], s["precompute"])
        except ConfigError as exc:
            raise CacheMismatchError(f"the cache at {self.path} does not fit this ranker: {exc}") from None
        if expected != self.reader.metadata["fingerprint"]:
            mine = cache_description(ranker, s["storage"], self.compressor, s["kind"], s["precompute"])
            diffs = [f"{k}: cache {s.get(k)!r} vs ranker {mine.get(k)!r}" for k in sorted(set(s) | set(mine)) if s.get(k) != mine.get(k)]
            detail = "; ".join(diffs) if diffs else "same settings but different model weights or tokenizer"
            raise CacheMismatchError(
                f"the document cache at {self.path} was built for another ranker configuration ({detail}). "
                "Its scores would be wrong for this ranker: build a cache for it at a new path."
            )
        self._checked[key] = True

    def forget(self, ranker) -> None:
        """Drop the memory of having checked ``ranker`` (after its weights changed)."""
        self._checked.pop(id(ranker), None)

    # -- reading ------------------------------------------------------------------------------
    def lengths(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Stored tokens per document."""
        return self.reader.lengths(doc_ids, self.reader_fields()[0])

    def reader_fields(self) -> list[str]:
        return list(self.reader.fields)

    def gather(self, doc_ids: Sequence[str], field: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A padded batch ``(values [B, S, D], mask [B, S])`` of one field."""
        return self.reader.gather_padded(doc_ids, field)


def _validate_chunk(chunk: list, writer: CacheWriter) -> list[tuple[str, str]]:
    todo, seen = [], set()
    for item in chunk:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InputError(f"documents must be (doc_id, text) pairs; got {type(item).__name__} {str(item)[:60]!r}.")
        doc_id, text = item
        if not isinstance(doc_id, str):
            raise InputError(f"document id {doc_id!r} is a {type(doc_id).__name__}; ids must be strings.")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"document {doc_id!r} has an empty text; drop it from the collection or give it a text.")
        if doc_id in seen or writer.contains(doc_id):
            continue
        seen.add(doc_id)
        todo.append((doc_id, text))
    return todo


def _representations(ranker, plan: CachePlan, sides: list[SideTokens], compressor) -> dict[str, list]:
    with torch.inference_mode():
        if plan.kind == "tokens" and ranker.split == 0:
            return {"input_ids": [np.asarray(s.ids, dtype=np.int32) for s in sides],
                    "token_type_ids": [np.asarray(s.types, dtype=np.int8) for s in sides]}
        if ranker.twin_end:
            rep = ranker.represent_docs(sides)
            if plan.kind == "vector":
                return {"vector": [v[None].float() for v in rep.values]}
            lengths = rep.mask.sum(dim=1).tolist()
            return {"vectors": [rep.values[i, :n].float() for i, n in enumerate(lengths)]}
        batch = ranker.pair_tokenizer.doc_batch(sides).to(ranker.device)
        states = ranker.encoder.encode_side(batch)
        lengths = batch.lengths.tolist()
        out: dict[str, list] = {}
        if "states" in plan.field_names:
            stored = compressor.to(states.device, states.dtype).compress(states) if compressor is not None else states
            out["states"] = [stored[i, :n].float() for i, n in enumerate(lengths)]
        if "keys_values" in plan.field_names:
            k, v = ranker.encoder.joint_keys_values(states)  # [B, heads, S, d]
            kv = torch.cat([_merge_heads(k), _merge_heads(v)], dim=-1)
            out["keys_values"] = [kv[i, :n].float() for i, n in enumerate(lengths)]
        return out


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    B, n, S, d = x.shape
    return x.transpose(1, 2).reshape(B, S, n * d)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    B, S, Hd = x.shape
    return x.view(B, S, heads, Hd // heads).transpose(1, 2)


def _record_build(path: Path, stats: BuildStats) -> None:
    file = path / _BUILD_FILE
    try:
        runs = json.loads(file.read_text()) if file.exists() else []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        runs = []  # statistics only: an unreadable record is replaced, never trusted
    if not isinstance(runs, list):
        runs = []
    runs.append({**asdict(stats), "docs_per_second": stats.docs_per_second, "tokens_per_second": stats.tokens_per_second})
    file.write_text(json.dumps(runs, indent=2))


# -- re-ranking ------------------------------------------------------------------------------
def rerank(ranker, query: str, doc_ids: Sequence[str], cache: DocCache, *, batch_size: int = 128) -> dict[str, float]:
    """Score ``doc_ids`` for ``query`` from their cached representations.

    The query's lower layers run once; the cached documents are gathered in length-sorted
    batches and only the joint layers run per candidate (the [CLS] head computes only the [CLS]
    row of the last layer). Returns ``{doc_id: score}`` in the order of ``doc_ids``.
    """
    if not isinstance(query, str) or not query.strip():
        raise InputError("the query must be a non-empty string.")
    if isinstance(doc_ids, str):
        raise InputError("doc_ids must be a list of document ids, not a single string.")
    doc_ids = list(dict.fromkeys(doc_ids))
    if not doc_ids:
        return {}
    cache.check(ranker)
    was_training = ranker.training
    ranker.eval()
    try:
        with torch.inference_mode():
            scores = _rerank(ranker, query, doc_ids, cache, batch_size)
    finally:
        ranker.train(was_training)
    return dict(zip(doc_ids, scores.tolist()))


def _rerank(ranker, query: str, doc_ids: list[str], cache: DocCache, batch_size: int) -> torch.Tensor:
    tok = ranker.pair_tokenizer
    q_side = tok.query_sides([query])[0]
    device, dtype = ranker.device, ranker.dtype
    kind = cache.kind
    if kind == "tokens":
        ids = cache.reader.get(doc_ids, "input_ids")
        types = cache.reader.get(doc_ids, "token_type_ids")
        sides = [SideTokens(tuple(i.tolist()), tuple(t.tolist())) for i, t in zip(ids, types)]
        index = torch.arange(len(sides))
        return ranker.score_sides([q_side], sides, torch.zeros(len(sides), dtype=torch.long), index, batch_size=batch_size)
    if ranker.twin_end:
        q_rep = ranker.represent_queries([q_side])
        field = "vector" if kind == "vector" else "vectors"
        values, mask = cache.gather(doc_ids, field)
        values = values.to(device, dtype)
        d_rep = SideRep(values[:, 0], None) if kind == "vector" else SideRep(values, mask.to(device))
        if kind == "dipair":
            d_rep = _pad_to_k(d_rep, ranker.head.k)
        n = len(doc_ids)
        q_full = SideRep(q_rep.values.expand(n, *q_rep.values.shape[1:]),
                         None if q_rep.mask is None else q_rep.mask.expand(n, *q_rep.mask.shape[1:]))
        return ranker.head.combine(q_full, d_rep).float().cpu()
    # 0 < L < T: the query's lower layers once, then the joint layers per candidate batch.
    q_batch = tok.query_batch([q_side]).to(device)
    q_states = ranker.encoder.encode_side(q_batch)
    q_mask = q_batch.mask
    fields = cache.reader_fields()
    has_states = "states" in fields
    has_kv = "keys_values" in fields
    layer = ranker.encoder.layers[ranker.split]
    heads = ranker.encoder.backbone.config.num_attention_heads
    q_kv = ranker.encoder.joint_keys_values(q_states) if has_kv else None
    lengths = cache.lengths(doc_ids)
    order = np.argsort(lengths, kind="stable").tolist()
    out = torch.empty(len(doc_ids), dtype=torch.float32)
    comp = cache.compressor.to(device, dtype) if cache.compressor is not None else None
    for rows in length_batches(order, lengths.tolist(), batch_size):
        ids = [doc_ids[i] for i in rows]
        n = len(ids)
        kv = None
        if has_kv:
            kv_vals, d_mask = cache.gather(ids, "keys_values")
            kv_vals = kv_vals.to(device, dtype)
            H = kv_vals.shape[-1] // 2
            dk, dv = _split_heads(kv_vals[..., :H], heads), _split_heads(kv_vals[..., H:], heads)
            d_mask = d_mask.to(device)
            if not has_states:
                # L = T - 1 with a [CLS] head: the last layer needs only the [CLS] row, attending over
                # the query's keys/values (computed once) and the document's (cached).
                cls_state = first_row_over_blocks(layer, q_states[:, :1], q_kv, q_mask, (dk, dv), d_mask)[:, 0]
                out[torch.as_tensor(rows)] = ranker.head(cls_state).float().cpu()
                continue
            kv = (torch.cat([q_kv[0].expand(n, -1, -1, -1), dk], dim=2), torch.cat([q_kv[1].expand(n, -1, -1, -1), dv], dim=2))
        d_states, d_mask = cache.gather(ids, "states")
        d_states = d_states.to(device, dtype)
        if comp is not None:
            d_states = comp.decompress(d_states)
        d_mask = d_mask.to(device)
        q = q_states.expand(n, -1, -1)
        qm = q_mask.expand(n, -1)
        out[torch.as_tensor(rows)] = ranker.score_states(q, qm, d_states, d_mask, keys_values=kv).float().cpu()
    return out


def _pad_to_k(rep: SideRep, k: int) -> SideRep:
    values, mask = rep.values, rep.mask
    if values.shape[1] < k:
        pad = k - values.shape[1]
        values = torch.nn.functional.pad(values, (0, 0, 0, pad))
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
    return SideRep(values, mask)

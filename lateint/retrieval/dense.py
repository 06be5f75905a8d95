"""Exact dense top-k over an L = T twin cache: every stored vector is scored, nothing is approximate.

The query is encoded by the ranker's own twin head, the documents' pooled vectors come from a
:class:`~lateint.DocCache` built for that ranker, and the score is their dot product (a cosine
twin stores normalised vectors), so each score is the one :func:`lateint.rerank` gives for
the same pair up to float rounding. The cache is read in chunks, so memory stays bounded by
``chunk_docs`` whatever the collection size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from lateint.cache.ids import decode_id, encode_ids
from lateint.data.run_types import RankedLists
from lateint.errors import ConfigError, InputError
from lateint.modes import evaluating

#: Crossings whose score is a dot product of the two pooled vectors, so top-k is a matrix product.
DOT_PRODUCT_CROSSINGS = ("cosine", "dot")


def check_dense_ranker(ranker, cache=None) -> None:
    """Raise :class:`ConfigError` unless ``ranker`` (and ``cache``) can do dense retrieval."""
    c = ranker.config
    if not ranker.bi_encoder or c.head.name != "twin":
        raise ConfigError(
            f"dense retrieval needs a twin head at L = T (T = {ranker.num_layers}); this ranker is "
            f"head={c.head.name!r} at L = {ranker.split}. Load it with split={ranker.num_layers}, head='twin'.")
    if c.head.crossing not in DOT_PRODUCT_CROSSINGS:
        raise ConfigError(
            f"dense retrieval needs a dot-product crossing ({' or '.join(DOT_PRODUCT_CROSSINGS)}); "
            f"crossing={c.head.crossing!r} scores pairs through a network, so re-rank with it instead.")
    if cache is not None:
        if cache.representation_name != "vector":
            raise ConfigError(f"the cache at {cache.path} stores {cache.representation_name!r}, not twin vectors; build it with "
                              "an L = T twin ranker.")
        cache.check(ranker)


def encode_queries(ranker, texts: Sequence[str], *, batch_size: int = 128) -> torch.Tensor:
    """The twin head's query vectors ``[len(texts), H]`` (float32, on the ranker's device)."""
    from lateint.tokenization import check_texts

    texts = check_texts(list(texts), "queries")
    sides = ranker.query_sides(texts)
    order = sorted(range(len(sides)), key=lambda i: len(sides[i]))
    out = None
    with evaluating(ranker), torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            values = ranker.represent_queries([sides[i] for i in idx]).values.float()
            if out is None:
                out = values.new_empty((len(sides), values.shape[-1]))
            out[torch.tensor(idx, device=values.device)] = values
    return out


def exact_top_k(query_vectors: torch.Tensor, cache, k: int, *, chunk_docs: int = 65536,
                query_block: int = 256, progress: bool = False) -> list[list[tuple[str, float]]]:
    """The top ``k`` cached documents of each query vector by dot product, exactly.

    Args:
        query_vectors: ``[Q, H]`` query vectors from the twin head that built ``cache``.
        cache: a twin :class:`~lateint.DocCache` (kind ``vector``).
        k: documents per query.
        chunk_docs: documents scored at a time.
        query_block: queries scored at a time (memory: ``query_block x chunk_docs`` scores).
        progress: show a progress bar over the chunks.

    Returns:
        For each query, ``[(doc_id, score), ...]``: score descending, ties by document id.

    Raises:
        InputError: ``k`` or ``chunk_docs`` is not positive, or the vectors have the wrong width.
    """
    if not isinstance(k, int) or k < 1:
        raise InputError(f"the retrieval depth must be a positive integer, got {k!r}")
    if chunk_docs < 1 or query_block < 1:
        raise InputError(f"chunk_docs and query_block must be positive, got {chunk_docs} and {query_block}")
    if query_vectors.dim() != 2:
        raise InputError(f"query vectors must be [queries, dims], got shape {tuple(query_vectors.shape)}")
    queries = query_vectors.float()
    n_queries = queries.shape[0]
    best_scores = queries.new_empty((n_queries, 0))
    best_rows = torch.empty((n_queries, 0), dtype=torch.long, device=queries.device)
    new_scores = queries.new_empty((n_queries, k))
    new_rows = torch.empty((n_queries, k), dtype=torch.long, device=queries.device)
    # Ids are kept utf-8 encoded in numpy arrays (bytes per id, not a Python object per document).
    id_chunks: list[np.ndarray] = []
    seen = 0
    chunks = _id_chunks(cache, chunk_docs)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, total=-(-len(cache) // chunk_docs), desc="dense top-k", unit="chunk")
    for chunk in chunks:
        values, _ = cache.gather(chunk, "vector")
        docs = values[:, 0].to(queries.device, torch.float32)
        if docs.shape[-1] != queries.shape[-1]:
            raise InputError(f"query vectors have {queries.shape[-1]} dims but the cache at {cache.path} "
                             f"stores {docs.shape[-1]}")
        rows = torch.arange(seen, seen + len(chunk), device=queries.device)
        seen += len(chunk)
        id_chunks.append(encode_ids(chunk))
        for start in range(0, n_queries, query_block):
            block = slice(start, start + query_block)
            scores = torch.cat([best_scores[block], queries[block] @ docs.T], dim=1)
            candidates = torch.cat([best_rows[block], rows.expand(scores.shape[0], -1)], dim=1)
            # Ids come in sorted order and earlier rows stay first, so a stable sort breaks ties by id.
            order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
            new_scores[block, :order.shape[1]] = torch.gather(scores, 1, order)
            new_rows[block, :order.shape[1]] = torch.gather(candidates, 1, order)
        width = min(k, seen)
        best_scores, best_rows = new_scores[:, :width].clone(), new_rows[:, :width].clone()
    ids = np.concatenate(id_chunks) if id_chunks else np.empty(0, dtype="S1")
    return [[(decode_id(ids[r]), s) for r, s in zip(rows.tolist(), values.tolist())]
            for rows, values in zip(best_rows.cpu(), best_scores.cpu())]


def _id_chunks(cache, size: int):
    chunk: list[str] = []
    for doc_id in cache.reader.iter_ids():
        chunk.append(doc_id)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dense_retrieve(ranker, cache, queries: Mapping[str, str], k: int = 100, *, batch_size: int = 128,
                   chunk_docs: int = 65536, progress: bool = False) -> RankedLists:
    """query id -> the top ``k`` cached documents for the twin ``ranker``, exactly.

    Raises:
        ConfigError: the ranker is not a dot-product twin at L = T, or the cache is not its twin cache.
        CacheMismatchError: the cache was built for other weights or settings.
    """
    check_dense_ranker(ranker, cache)
    qids = list(queries)
    if not qids:
        return {}
    vectors = encode_queries(ranker, [queries[q] for q in qids], batch_size=batch_size)
    return dict(zip(qids, exact_top_k(vectors, cache, k, chunk_docs=chunk_docs, progress=progress)))

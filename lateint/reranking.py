"""``rerank``: score a query against documents stored in a :class:`~lateint.DocCache`.

The query is encoded once (its lower layers, or its whole encoding at L = T); the candidates'
stored fields are gathered in length-sorted batches, and the ranker's representation scores each
batch (the joint layers and the head; a dot product at L = T).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lateint.batching import length_batches
from lateint.errors import InputError
from lateint.modes import evaluating
from lateint.ranker import check_batch_size

# Buffers the gathered fields are read into, kept from query to query (one set per thread).
_buffers = threading.local()


def rerank(ranker, query: str, doc_ids: Sequence[str], cache, *, batch_size: int = 128) -> dict[str, float]:
    """Score cached documents ``doc_ids`` for ``query``: ``{doc_id: score}`` in the order of ``doc_ids``.

    Raises:
        CacheMismatchError: ``cache`` was built for another configuration or other weights.
        InputError: an id is not in the cache, the query is empty, or an argument has the wrong type.
    """
    from lateint.cache.doc_cache import DocCache

    if not isinstance(cache, DocCache):
        hint = " Open it first: DocCache.open(path)." if isinstance(cache, (str, Path)) else ""
        raise InputError(f"cache must be a DocCache, got {type(cache).__name__}.{hint}")
    if not isinstance(query, str) or not query.strip():
        raise InputError("the query must be a non-empty string.")
    if isinstance(doc_ids, str) or not isinstance(doc_ids, Sequence):
        raise InputError("doc_ids must be a list of document ids.")
    check_batch_size(batch_size)
    doc_ids = list(dict.fromkeys(doc_ids))
    if not doc_ids:
        return {}
    representation = cache.check(ranker)
    with evaluating(ranker), torch.inference_mode():
        scores = _score(representation, query, doc_ids, cache, batch_size)
    return dict(zip(doc_ids, scores.tolist()))


def _score(representation, query: str, doc_ids: list[str], cache, batch_size: int) -> torch.Tensor:
    encoded_query = representation.encode_query(representation.ranker.query_sides([query])[0])
    names = representation.field_names
    if representation.fixed_length:
        batches = [list(range(len(doc_ids)))]
    else:
        lengths = cache.lengths(doc_ids)
        order = np.argsort(lengths, kind="stable").tolist()
        batches = length_batches(order, lengths.tolist(), batch_size, representation.padding_growth,
                                 representation.batch_rows, packed=representation.packed)
    out = torch.empty(len(doc_ids), dtype=torch.float32)
    workspace = _buffers.__dict__.setdefault("workspace", {})
    for rows in batches:
        ids = [doc_ids[i] for i in rows]
        # Each batch's fields are scored before the next batch's overwrite them.
        gathered = {name: cache.gather(ids, name, workspace=workspace, packed=representation.packed) for name in names}
        out[torch.as_tensor(rows)] = representation.score(encoded_query, gathered).float().cpu()
    return out

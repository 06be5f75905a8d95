"""First-stage retrieval: BM25 (through ``bm25s``) and exact dense top-k from a twin cache.

Both return :data:`lateint.data.RankedLists` (query id -> ``[(doc_id, score), ...]`` best first),
so their output re-ranks, evaluates and writes like any other run.
"""

from lateint.retrieval.bm25 import BM25Index, BM25Settings, bm25_retrieve
from lateint.retrieval.corpus import iter_documents, non_empty
from lateint.retrieval.dense import dense_retrieve, encode_queries, exact_top_k

__all__ = ["BM25Index", "BM25Settings", "bm25_retrieve", "dense_retrieve", "encode_queries", "exact_top_k", "iter_documents",
           "non_empty"]

"""Exact dense top-k from a twin cache, against sentence-transformers as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lateint import DocCache, SplitRanker, rerank
from lateint.errors import ConfigError, InputError
from lateint.retrieval import dense_retrieve, encode_queries, exact_top_k

from tests.conftest import DOCS, QUERIES


@pytest.fixture(scope="module")
def twin(minilm_path):
    return SplitRanker.from_pretrained(str(minilm_path))


@pytest.fixture(scope="module")
def twin_cache(twin, tmp_path_factory):
    # d5 repeats d0's text, so the two tie for every query.
    docs = [(f"d{i}", text) for i, text in enumerate(DOCS)] + [("d5", DOCS[0])]
    return DocCache.build(twin, docs, tmp_path_factory.mktemp("twin") / "cache", storage="fp32", progress=False)


def test_top_k_equals_sentence_transformers_brute_force(twin, twin_cache, minilm_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cpu")
    queries = list(dict.fromkeys(QUERIES))
    doc_ids = [f"d{i}" for i in range(len(DOCS))] + ["d5"]
    q = model.encode(queries, convert_to_tensor=True, normalize_embeddings=True)
    d = model.encode(DOCS + [DOCS[0]], convert_to_tensor=True, normalize_embeddings=True)
    oracle = (q @ d.T).numpy()
    # Small chunks and query blocks, so that top-k is merged across chunks.
    got = exact_top_k(encode_queries(twin, queries), twin_cache, k=3, chunk_docs=2, query_block=2)
    for row, ranked in zip(oracle, got):
        expected = sorted(zip(doc_ids, row.tolist()), key=lambda x: (-x[1], x[0]))[:3]
        assert [doc for doc, _ in ranked] == [doc for doc, _ in expected]
        np.testing.assert_allclose([s for _, s in ranked], [s for _, s in expected], atol=1e-5)


def test_ties_go_by_document_id_and_scores_equal_rerank(twin, twin_cache):
    run = dense_retrieve(twin, twin_cache, {"q": QUERIES[0]}, k=len(DOCS) + 1)
    ranked = run["q"]
    assert [d for d, _ in ranked][:2] == ["d0", "d5"] and ranked[0][1] == ranked[1][1]
    reranked = rerank(twin, QUERIES[0], [d for d, _ in ranked], twin_cache)
    for doc, score in ranked:
        assert score == pytest.approx(reranked[doc], abs=1e-6)


def test_refuses_what_cannot_be_retrieved_densely(minilm_path, twin, twin_cache):
    with pytest.raises(ConfigError, match="twin head at L = T"):
        dense_retrieve(SplitRanker.from_pretrained(str(minilm_path), split=3), twin_cache, {"q": "x"})
    residual = SplitRanker.from_pretrained(str(minilm_path), crossing="residual")
    with pytest.raises(ConfigError, match="dot-product crossing"):
        dense_retrieve(residual, twin_cache, {"q": "x"})
    with pytest.raises(InputError, match="depth"):
        exact_top_k(torch.zeros(1, 384), twin_cache, k=0)
    with pytest.raises(InputError, match="dims"):
        exact_top_k(torch.zeros(1, 7), twin_cache, k=1)

"""Invariant 3: at L = T with mean pooling and cosine, all-MiniLM-L6-v2 gives the embeddings and
similarities that the sentence-transformers library gives."""

from __future__ import annotations

import torch

from lateint import SplitRanker

ATOL = 1e-5


def test_twin_matches_sentence_transformers(minilm_path, pairs):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_path), device="cpu")
    queries, docs = pairs
    q_emb = st.encode(queries, convert_to_tensor=True)
    d_emb = st.encode(docs, convert_to_tensor=True)
    theirs = torch.nn.functional.cosine_similarity(q_emb, d_emb)

    ranker = SplitRanker.from_pretrained(minilm_path, split=6, head="twin", pooling="mean", crossing="cosine")
    assert ranker.split == ranker.num_layers == 6
    ours = ranker.score(queries, docs)
    assert theirs.std() > 0.05
    assert (ours - theirs).abs().max().item() <= ATOL

    with torch.inference_mode():
        our_q = ranker.represent_queries(ranker.query_sides(queries)).values
        our_d = ranker.represent_docs(ranker.doc_sides(docs)).values
    assert (our_q - q_emb).abs().max().item() <= ATOL
    assert (our_d - d_emb).abs().max().item() <= ATOL


def test_sentence_transformers_folder_defaults_to_its_own_head(minilm_path):
    ranker = SplitRanker.from_pretrained(minilm_path)
    assert (ranker.split, ranker.config.head.name, ranker.config.head.pooling) == (6, "twin", "mean")
    assert ranker.config.sides.layout == "separate"
    assert ranker.config.sides.max_doc_length == 256  # its max_seq_length

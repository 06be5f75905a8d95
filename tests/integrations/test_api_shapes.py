"""rank, predict and encode, checked against CrossEncoder and SentenceTransformer."""

from __future__ import annotations

import numpy as np
import pytest

from lateint import ConfigError, InputError, SplitRanker

from tests.conftest import DOCS, QUERIES

st = pytest.importorskip("sentence_transformers")


def test_predict_equals_cross_encoder_predict(cross_encoder_path):
    ranker = SplitRanker.from_pretrained(str(cross_encoder_path))
    model = st.CrossEncoder(str(cross_encoder_path), device="cpu")
    pairs = list(zip(QUERIES, DOCS))
    ours, theirs = ranker.predict(pairs), model.predict(pairs)
    assert isinstance(ours, np.ndarray) and ours.shape == (len(pairs),)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ranker.predict(pairs[0]), model.predict(pairs[0]), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="pairs"):
        ranker.predict([("only one",)])


def test_rank_sorts_by_score_with_indices_or_ids(cross_encoder_path):
    ranker = SplitRanker.from_pretrained(str(cross_encoder_path))
    model = st.CrossEncoder(str(cross_encoder_path), device="cpu")
    ranked = ranker.rank(QUERIES[0], DOCS, top_k=3)
    theirs = model.rank(QUERIES[0], DOCS, top_k=3)
    assert [i for i, _ in ranked] == [r["corpus_id"] for r in theirs]
    scores = [s for _, s in ranker.rank(QUERIES[0], DOCS)]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(DOCS)
    by_id = ranker.rank(QUERIES[0], {f"d{i}": t for i, t in enumerate(DOCS)}, top_k=2)
    assert [d for d, _ in by_id] == [f"d{i}" for i, _ in ranked[:2]]
    with pytest.raises(InputError, match="top_k"):
        ranker.rank(QUERIES[0], DOCS, top_k=0)


def test_encode_gives_sentence_transformers_embeddings_at_L_T_whatever_the_split(minilm_path):
    model = st.SentenceTransformer(str(minilm_path), device="cpu")
    ranker = SplitRanker.from_pretrained(str(minilm_path), split=2)
    expected = model.encode(DOCS)
    np.testing.assert_allclose(ranker.encode(DOCS, side="doc"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ranker.encode(QUERIES[0]), model.encode(QUERIES[0]), rtol=1e-5, atol=1e-6)
    assert ranker.split == 2  # the dial is back where it was
    with pytest.raises(InputError, match="side"):
        ranker.encode(DOCS, side="passage")
    with pytest.raises(ConfigError, match="twin embeddings"):
        SplitRanker.from_pretrained(str(minilm_path), split=2, head="cls").encode(DOCS)

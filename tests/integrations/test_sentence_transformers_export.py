"""A saved twin loads in sentence-transformers with lateint's scores, or is refused there."""

from __future__ import annotations

import json

import pytest
import torch

from lateint import ConfigError, SplitRanker

from tests.conftest import DOCS, QUERIES

st = pytest.importorskip("sentence_transformers")

EXPRESSIBLE = [("mean", "cosine"), ("mean", "dot"), ("cls", "cosine"), ("cls", "dot")]


@pytest.mark.parametrize("pooling,crossing", EXPRESSIBLE)
def test_saved_twin_gives_lateint_scores_in_sentence_transformers(minilm_path, tmp_path, pooling, crossing):
    ranker = SplitRanker.from_pretrained(str(minilm_path), pooling=pooling, crossing=crossing)
    folder = ranker.save_pretrained(tmp_path / "twin")
    model = st.SentenceTransformer(str(folder), device="cpu")
    assert model.similarity_fn_name == crossing
    q = model.encode(QUERIES, convert_to_tensor=True)
    d = model.encode(DOCS, convert_to_tensor=True)
    ours = ranker.score(QUERIES, DOCS)
    theirs = model.similarity(q, d).diagonal()
    torch.testing.assert_close(theirs, ours, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(q, ranker.encode(QUERIES, convert_to_tensor=True), rtol=1e-6, atol=1e-5)
    # lateint reads the folder back as its own, exactly.
    again = SplitRanker.from_pretrained(folder)
    torch.testing.assert_close(again.score(QUERIES, DOCS), ours, rtol=0, atol=0)


@pytest.mark.parametrize("options,reason", [
    ({"pooling": "weighted"}, "weighted"),
    ({"crossing": "residual"}, "residual"),
    ({"split": 4}, "L = 4"),
    ({"head": "maxsim"}, "maxsim"),
    ({"head": "dipair"}, "dipair"),
    ({"max_query_length": 32}, "max_seq_length"),
])
def test_inexpressible_heads_are_refused_never_loaded_differently(minilm_path, tmp_path, options, reason):
    ranker = SplitRanker.from_pretrained(str(minilm_path), **options)
    folder = ranker.save_pretrained(tmp_path / "model")
    # Without trusting third-party code sentence-transformers stops at the module lateint names ...
    with pytest.raises(ValueError, match="lateint"):
        st.SentenceTransformer(str(folder), device="cpu")
    # ... and with it, that module refuses and says why.
    with pytest.raises(ConfigError, match=reason):
        st.SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    assert "sentence-transformers refuses the folder" in (folder / "README.md").read_text()


def test_a_cls_head_transformers_cannot_hold_is_refused_by_cross_encoder_too(minilm_path, tmp_path):
    # BERT's classification head uses tanh; a gelu dense layer is saved as encoder + lateint head.
    ranker = SplitRanker.from_pretrained(str(minilm_path), split=0, head="cls", pooler_activation="gelu")
    folder = ranker.save_pretrained(tmp_path / "cls-gelu")
    with pytest.raises(ValueError, match="lateint"):
        st.CrossEncoder(str(folder), device="cpu")
    with pytest.raises(ConfigError, match="classification head"):
        st.CrossEncoder(str(folder), device="cpu", trust_remote_code=True)
    assert "refuses the folder" in (folder / "README.md").read_text()


def test_cls_model_records_its_split_and_stays_a_cross_encoder(cross_encoder_path, tmp_path):
    ranker = SplitRanker.from_pretrained(str(cross_encoder_path), split=3)
    folder = ranker.save_pretrained(tmp_path / "cls-L3")
    config = json.loads((folder / "config.json").read_text())
    assert config["lateint"]["split"] == 3 and config["lateint"]["head"] == "cls"
    card = (folder / "README.md").read_text()
    assert "saved at L = 3" in card and "runs at L = 0" in card
    assert not (folder / "modules.json").exists()
    # CrossEncoder still loads it (at L = 0, as the card warns): same scores as lateint at L = 0.
    model = st.CrossEncoder(str(folder), device="cpu")
    pairs = list(zip(QUERIES, DOCS))
    at_zero = SplitRanker.from_pretrained(folder).at(0)
    torch.testing.assert_close(torch.as_tensor(model.predict(pairs)), torch.as_tensor(at_zero.predict(pairs)),
                               rtol=1e-5, atol=1e-6)
    assert SplitRanker.from_pretrained(folder).split == 3

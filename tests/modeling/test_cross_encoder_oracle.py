"""Invariant 2: at L = 0 a cross-encoder checkpoint scores exactly as ``transformers`` and
sentence-transformers' ``CrossEncoder`` score it, and a saved L = 0 ranker is a standard
checkpoint again."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lateint import SplitRanker

ATOL = 1e-5


def transformers_scores(folder, queries, docs) -> torch.Tensor:
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        enc = tok(queries, docs, padding=True, return_tensors="pt")
        logits = model(**enc).logits
    return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


def test_minilm_cross_encoder_matches_transformers(cross_encoder_path, pairs):
    ranker = SplitRanker.from_pretrained(cross_encoder_path, split=0)
    assert ranker.config.head.name == "cls" and ranker.config.sides.layout == "packed"
    ours = ranker.score(*pairs)
    theirs = transformers_scores(cross_encoder_path, *pairs)
    assert theirs.std() > 0.05  # a constant score would make the comparison meaningless
    assert (ours - theirs).abs().max().item() <= ATOL


def test_minilm_cross_encoder_matches_sentence_transformers(cross_encoder_path, pairs):
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(cross_encoder_path), activation_fn=torch.nn.Identity())
    theirs = torch.as_tensor(ce.predict(list(zip(*pairs))))
    ours = SplitRanker.from_pretrained(cross_encoder_path).score(*pairs)
    assert (ours - theirs).abs().max().item() <= ATOL


@pytest.mark.parametrize("family", ["bert", "electra", "roberta"])
def test_families_match_transformers(tiny_model, pairs, family):
    folder = tiny_model(family, 3, seq_cls=True)
    ours = SplitRanker.from_pretrained(folder, max_doc_length=100).score(*pairs)
    theirs = transformers_scores(folder, *pairs)
    assert (ours - theirs).abs().max().item() <= ATOL


def test_two_label_checkpoint_scores_as_log_odds(tmp_path, minilm_path, pairs):
    torch.manual_seed(5)
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path), num_labels=2)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(tmp_path)
    ours = SplitRanker.from_pretrained(tmp_path).score(*pairs)
    theirs = transformers_scores(tmp_path, *pairs)
    assert (ours - theirs).abs().max().item() <= ATOL


def test_saved_l0_ranker_is_a_standard_checkpoint(tmp_path, cross_encoder_path, pairs):
    ranker = SplitRanker.from_pretrained(cross_encoder_path, split=0)
    # Change the weights so that the round trip cannot pass by reloading the original files.
    with torch.no_grad():
        ranker.head.out.bias.add_(0.75)
        ranker.encoder.layers[2].output.dense.weight.mul_(1.1)
    expected = ranker.score(*pairs)
    ranker.save_pretrained(tmp_path / "saved")
    theirs = transformers_scores(tmp_path / "saved", *pairs)
    assert (expected - theirs).abs().max().item() <= ATOL
    again = SplitRanker.from_pretrained(tmp_path / "saved").score(*pairs)
    assert torch.equal(again, expected)


def test_cross_encoder_at_every_split_runs_without_retraining(cross_encoder_path, pairs):
    base = SplitRanker.from_pretrained(cross_encoder_path, split=0).score(*pairs)
    for split in range(1, 6):
        scores = SplitRanker.from_pretrained(cross_encoder_path, split=split).score(*pairs)
        assert torch.isfinite(scores).all()
        assert (scores - base).abs().max() > 1e-4  # the split changes the function

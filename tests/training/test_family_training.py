"""Training works for every supported encoder family: per-L, the dial, and a student cut with
``num_layers`` (tiny random models; see the ``family_model`` fixture)."""

from __future__ import annotations

import pytest

from lateint.ranker import SplitRanker
from lateint.training.trainer import Trainer

FAMILIES = ["distilbert", "deberta-v3", "modernbert"]


@pytest.mark.parametrize("family", FAMILIES)
def test_per_split_training_lowers_the_loss(make_config, family_model, tiny_groups, family):
    config = make_config(family_model(family, seq_cls=True), split=1, steps=10)
    trainer = Trainer(config, tiny_groups)
    before = trainer.evaluate()["hard"]
    result = trainer.train()
    assert trainer.evaluate()["hard"] < before
    assert SplitRanker.from_pretrained(result.model_path).split == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_dial_training_of_a_student_cut_with_num_layers(make_config, family_model, tiny_groups, family):
    config = make_config(family_model(family, seq_cls=True), num_layers=2, steps=10, dial={"enabled": True})
    trainer = Trainer(config, tiny_groups)
    before = {L: trainer.evaluate(split=L)["hard"] for L in (0, 1)}
    assert trainer.student.num_layers == 2
    result = trainer.train()
    after = {L: trainer.evaluate(split=L)["hard"] for L in (0, 1)}
    assert all(after[L] < before[L] for L in (0, 1)), (before, after)
    model = SplitRanker.from_pretrained(result.model_path)
    assert model.num_layers == 2 and model.at(1).score(["what causes rain"], ["rain"]).shape == (1,)

"""A few steps on tiny models lower the objective; logs, results and the saved model."""

from __future__ import annotations

import json

import pytest
import torch

from lateint.ranker import SplitRanker
from lateint.training.groups import build_groups
from lateint.training.trainer import Trainer

from .conftest import QRELS, QUERY_TEXTS, doc_text


def train_and_measure(config, groups):
    trainer = Trainer(config, groups)
    before = trainer.evaluate()
    result = trainer.train()
    after = trainer.evaluate()
    return trainer, result, before, after


def test_listwise_ce_lowers_the_loss_and_writes_results(make_config, student_model, tiny_groups):
    config = make_config(student_model, optim={"grad_accum": 2, "warmup_ratio": 0.2})
    trainer, result, before, after = train_and_measure(config, tiny_groups)
    assert after["hard"] < before["hard"] - 0.02
    lines = [json.loads(x) for x in result.loss_log.read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 13))
    assert {"loss", "hard", "lr", "seconds", "split"} <= set(lines[0])
    assert lines[0]["lr"] < lines[3]["lr"] and lines[-1]["lr"] < lines[3]["lr"]  # warmup, then decay
    assert result.steps == 12 and result.seeds["seed"] == 0 and result.groups == len(tiny_groups)
    saved = json.loads((result.output / "train_result.json").read_text())
    assert saved["seeds"] == result.seeds
    assert result.config_path.is_file()
    assert (result.output / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = SplitRanker.from_pretrained(result.model_path)
    g = tiny_groups[0]
    assert torch.allclose(model.score([g.query] * 4, list(g.docs)), trainer.student.score([g.query] * 4, list(g.docs)))


def test_margin_mse_distillation_from_a_tiny_teacher(make_config, student_model, teacher_model, tiny_groups):
    config = make_config(student_model, loss={"hard": "none", "soft": "margin_mse"},
                         distill={"teacher": str(teacher_model)})
    _, result, before, after = train_and_measure(config, tiny_groups)
    assert after["soft"] < 0.9 * before["soft"]
    assert (result.output / "teacher_scores.json").is_file()


def test_simplified_tinybert_with_intermediate_losses(make_config, student_model, teacher_model, tiny_groups):
    # A 2-layer, 32-wide split student learns from a 4-layer, 48-wide cross-encoder teacher.
    config = make_config(student_model, split=1, loss={"soft": "kl", "intermediate": True},
                         distill={"teacher": str(teacher_model)})
    _, _, before, after = train_and_measure(config, tiny_groups)
    assert {"embedding", "hidden", "attention", "soft", "hard"} <= set(after)
    assert after["intermediate"] < 0.95 * before["intermediate"]
    assert after["loss"] < before["loss"]


def test_student_from_every_other_teacher_layer(make_config, teacher_model, tiny_groups):
    config = make_config(teacher_model, student_layers="every_other", split=1, steps=8,
                         loss={"soft": "kl", "intermediate": True, "intermediate_attention": False},
                         distill={"teacher": str(teacher_model)})
    trainer, result, before, after = train_and_measure(config, tiny_groups)
    assert trainer.student.num_layers == 2
    assert after["loss"] < before["loss"]
    assert SplitRanker.from_pretrained(result.model_path).num_layers == 2


def test_deformer_mimicry(make_config, student_model, tiny_groups):
    config = make_config(student_model, split=1, loss={"soft": "kl", "mimicry": True},
                         distill={"teacher": str(student_model)})
    _, _, before, after = train_and_measure(config, tiny_groups)
    assert after["loss"] < before["loss"]


def test_dial_mode_trains_every_split(make_config, student_model, tiny_groups):
    config = make_config(student_model, steps=16, dial={"enabled": True})
    trainer = Trainer(config, tiny_groups)
    before = {L: trainer.evaluate(split=L)["hard"] for L in (0, 1)}
    result = trainer.train()
    after = {L: trainer.evaluate(split=L)["hard"] for L in (0, 1)}
    splits = {json.loads(x)["split"] for x in result.loss_log.read_text().splitlines()}
    assert splits == {0, 1}
    assert all(after[L] < before[L] for L in (0, 1))
    model = SplitRanker.from_pretrained(result.model_path)
    assert model.split == 0
    assert model.at(1).score(["what causes rain"], ["rain"]).shape == (1,)


def test_in_batch_negatives(make_config, student_model):
    groups = build_groups(QUERY_TEXTS, QRELS, None, doc_text, negatives=0)
    config = make_config(student_model, batch_size=6, steps=24, optim={"lr": 1e-3}, data={"negative_source": "in_batch", "negatives": 0})
    _, _, before, after = train_and_measure(config, groups)
    assert after["hard"] < before["hard"], (before, after)


def test_head_learning_rate_and_cosine_scale(make_config, student_model, tiny_groups):
    config = make_config(student_model, optim={"head_lr": 1e-3})
    trainer = Trainer(config, tiny_groups)
    trainer.setup()
    head_ids = {id(p) for p in trainer.student.head.parameters()}
    for group in trainer.optimizer.param_groups:
        is_head = all(id(p) in head_ids for p in group["params"])
        assert group["initial_lr"] == (1e-3 if is_head else config.optim.lr)
    assert trainer.objective.hard_scale == 1.0  # a cls head's logits are unbounded
    twin = make_config(student_model, split=2, head="twin", head_options={"pooling": "mean", "crossing": "cosine"})
    t = Trainer(twin, tiny_groups)
    t.setup()
    assert t.objective.hard_scale == 20.0


@pytest.mark.parametrize("head,options", [
    ("twin", {"pooling": "weighted", "crossing": "residual"}),  # TwinBERT
    ("dipair", {"dipair_tokens": 4, "dipair_dim": 16, "dipair_heads": 2}),  # DiPair
    ("maxsim", {"maxsim_dim": 16}),  # ColBERT
])
def test_twin_end_students_learn_a_cross_encoders_soft_labels(make_config, student_model, teacher_model, tiny_groups,
                                                               head, options):
    # A pure twin (L = T) student with each bi-encoder head, on the teacher's scores alone.
    config = make_config(student_model, split=2, head=head, head_options=options, steps=16,
                         loss={"hard": "none", "soft": "margin_mse"}, distill={"teacher": str(teacher_model)})
    trainer, result, before, after = train_and_measure(config, tiny_groups)
    assert trainer.student.split == trainer.student.num_layers == 2
    assert after["soft"] < 0.9 * before["soft"], (before, after)
    saved = SplitRanker.from_pretrained(result.model_path)
    assert saved.config.head.name == head and saved.split == 2

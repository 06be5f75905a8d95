"""The sandwich dial: every step trains both ends and random splits between them, the L = 0 pass teaching the
others over the same batch (in-place distillation), its scores detached."""

from __future__ import annotations

import json

import pytest
import torch

from lateint.errors import ConfigError
from lateint.training.states import pair_batches
from lateint.training.students import sandwich_splits
from lateint.training.trainer import Trainer

TWIN = {"pooling": "mean", "crossing": "cosine"}


def sandwich_config(make_config, model, **dial):
    return make_config(model, split=2, head="twin", head_options=TWIN, steps=12,
                       dial={"enabled": True, "splits": [0, 1, 2], "mode": "sandwich", "random_splits": 1, **dial})


@pytest.mark.parametrize("inplace", ["margin_mse", "kl"])
def test_a_few_sandwich_steps_lower_the_objective_at_both_ends(make_config, student_model, tiny_groups, inplace):
    trainer = Trainer(sandwich_config(make_config, student_model, inplace_distillation=inplace), tiny_groups)
    before = {L: trainer.evaluate(split=L)["hard"] for L in (0, 2)}
    result = trainer.train()
    after = {L: trainer.evaluate(split=L)["hard"] for L in (0, 2)}
    assert all(after[L] < before[L] for L in (0, 2)), (before, after)
    records = [json.loads(line) for line in result.loss_log.read_text().splitlines()]
    # every step trained both ends and the one split between them, and the in-place term was part of its loss
    assert all({"loss_L0", "loss_L1", "loss_L2", "inplace"} <= set(r) and "split" not in r for r in records)
    assert all(r["loss"] == pytest.approx(r["loss_L0"] + r["loss_L1"] + r["loss_L2"], rel=1e-5) for r in records)


def test_the_teaching_pass_gets_no_gradient_from_the_distillation_term(make_config, student_model, tiny_groups):
    trainer = Trainer(sandwich_config(make_config, student_model), tiny_groups)
    trainer.setup()
    objective = trainer.objective
    groups = tiny_groups[:4]
    teacher_batch = trainer.collate(groups, 0)
    l0 = trainer.student.at(0)
    teacher_scores = l0(*pair_batches(l0, teacher_batch.q_sides, teacher_batch.d_sides)).float().view(*teacher_batch.shape)
    teacher_scores.retain_grad()  # the L = 0 pass with its graph, as a sandwich step holds it
    total, terms = objective(trainer.collate(groups, 2), split=2, inplace_teacher=teacher_scores)
    assert terms["inplace"] > 0
    total.backward()
    assert teacher_scores.grad is None  # nothing flowed back into the teaching pass
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.student.parameters())


def test_sandwich_splits_keep_both_ends_and_draw_between_them():
    drawn = [sandwich_splits(step, [0, 2, 4, 5, 6], 2, seed=0) for step in range(50)]
    assert all(s[:2] == [0, 6] and len(s) == 4 and set(s[2:]) <= {2, 4, 5} for s in drawn)
    assert len({tuple(s) for s in drawn}) == 3  # every pair of the three inner splits comes up
    assert drawn == [sandwich_splits(step, [0, 2, 4, 5, 6], 2, seed=0) for step in range(50)]  # resumable
    assert sandwich_splits(0, [0, 6], 3, seed=0) == [0, 6]


@pytest.mark.parametrize("dial, message", [
    ({"mode": "slimmable"}, "dial.mode='slimmable' is unknown"),
    ({"random_splits": -1}, "random_splits=-1"),
    ({"inplace_distillation": "mse"}, "inplace_distillation='mse' is unknown"),
    ({"weights": [1.0, 1.0, 1.0]}, "drop dial.weights"),
    ({"enabled": False}, "needs dial.enabled"),
])
def test_nonsense_sandwich_settings_are_refused(make_config, student_model, dial, message):
    with pytest.raises(ConfigError, match=message):
        sandwich_config(make_config, student_model, **dial)

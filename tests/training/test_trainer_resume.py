"""An interrupted run resumed from its last checkpoint ends with the same weights."""

from __future__ import annotations

import json

import torch

from lateint.ranker import SplitRanker
from lateint.training.trainer import Trainer


def weights(folder):
    ranker = SplitRanker.from_pretrained(folder)
    return {k: v.clone() for k, v in ranker.state_dict().items()}


def test_resume_equals_uninterrupted(make_config, student_model, teacher_model, tiny_groups, tmp_path):
    common = dict(steps=6, batch_size=2, split=1, checkpoint={"every": 2, "keep_last": 2},
                  optim={"grad_accum": 2, "warmup_ratio": 0.3},
                  loss={"soft": "kl", "intermediate": True}, distill={"teacher": str(teacher_model)})
    straight = Trainer(make_config(student_model, output=str(tmp_path / "a"), **common), tiny_groups).train()

    config = make_config(student_model, output=str(tmp_path / "b"), **common)
    partial = Trainer(config, tiny_groups).train(stop_at=5)  # interrupted after step 5; last checkpoint: 4
    assert partial.steps == 5 and not (tmp_path / "b" / "final").exists()
    checkpoints = sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step-*"))
    assert checkpoints == ["step-00000002", "step-00000004"]
    resumed = Trainer(config, tiny_groups).train()
    assert resumed.resumed_from == 4 and resumed.steps == 6

    a, b = weights(straight.model_path), weights(resumed.model_path)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=0), name
    log_a = [json.loads(x) for x in straight.loss_log.read_text().splitlines()]
    log_b = [json.loads(x) for x in resumed.loss_log.read_text().splitlines()]
    assert [r["step"] for r in log_b] == list(range(1, 7))
    for ra, rb in zip(log_a, log_b):
        assert abs(ra["loss"] - rb["loss"]) < 1e-5


def test_fresh_ignores_old_checkpoints(make_config, student_model, tiny_groups, tmp_path):
    config = make_config(student_model, steps=4, checkpoint={"every": 2})
    Trainer(config, tiny_groups).train()
    again = Trainer(config, tiny_groups).train(resume=False)
    assert again.resumed_from == 0
    assert len(again.loss_log.read_text().splitlines()) == 4

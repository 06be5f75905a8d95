"""Validation while training: dev nDCG@10 every N steps, the best model kept, early stopping."""

from __future__ import annotations

import json
import math

import pytest

from lateint.errors import ConfigError
from lateint.ranker import SplitRanker
from lateint.training.curves import plot_loss_curve
from lateint.training.trainer import Trainer
from lateint.training.validation import dev_ndcg, dev_set, holdout_queries

DL19 = "msmarco-passage/trec-dl-2019/judged"


def _config(make_config, model, **overrides):
    validation = {"every": 2, "holdout": 0.1, "depth": 10, "max_queries": 3, **overrides.pop("validation", {})}
    data = {"dataset": DL19, "run": "bm25", "negatives": 2, "depth": 20, "min_relevance": 2, "max_queries": 6,
            **overrides.pop("data", {})}
    overrides = {"steps": 4, "batch_size": 2, **overrides}
    return make_config(model, data=data, validation=validation, **overrides)


def _ndcg10_by_hand(scores: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> float:
    values = []
    for qid, docs in scores.items():
        ranked = sorted(docs, key=lambda d: -docs[d])[:10]
        dcg = sum(qrels[qid].get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
        ideal = sorted(qrels[qid].values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        values.append(dcg / idcg if idcg else 0.0)
    return sum(values) / len(values)


def test_holdout_is_seeded_and_left_out_of_training(irdata, make_config, student_model):
    qids = [f"q{i}" for i in range(40)]
    dev = holdout_queries(qids, 0.1, 0)
    assert len(dev) == 4 and dev == holdout_queries(qids, 0.1, 0) and dev != holdout_queries(qids, 0.1, 1)
    config = _config(make_config, student_model, data={"max_queries": 0})
    trainer = Trainer(config)
    trainer.setup()
    dev_qids = set(trainer.dev.candidates)
    assert dev_qids and not dev_qids & {g.qid for g in trainer.groups}


def test_dev_ndcg_matches_a_hand_computation(irdata, make_config, student_model):
    dev = dev_set(_config(make_config, student_model))
    assert len(dev) == 3 and all(len(ids) == 10 for ids in dev.candidates.values())
    ranker = SplitRanker.from_pretrained(student_model, max_query_length=12, max_doc_length=24)
    ranker.eval()
    scores = {}
    for qid, ids in dev.candidates.items():
        values = ranker.score([dev.queries[qid]] * len(ids), [dev.docs[d] for d in ids]).tolist()
        scores[qid] = dict(zip(ids, values))
    assert dev_ndcg(ranker, dev) == pytest.approx(_ndcg10_by_hand(scores, dev.qrels), abs=1e-6)


def test_validation_logs_dev_ndcg_and_keeps_the_best_model(irdata, make_config, student_model):
    result = Trainer(_config(make_config, student_model)).train()
    log = [json.loads(line) for line in result.loss_log.read_text().splitlines()]
    dev = {r["step"]: r["dev_ndcg@10"] for r in log if "dev_ndcg@10" in r}
    assert sorted(dev) == [2, 4]
    best_step = max(dev, key=lambda s: (dev[s], -s))
    assert result.best_step == best_step and result.best_dev_ndcg == dev[best_step]
    assert result.best_path.name == "best" and result.model_path.name == "final"
    assert result.best_path.parent == result.model_path.parent
    record = json.loads((result.output / "best.json").read_text())
    assert record["step"] == best_step
    trainer = Trainer(_config(make_config, student_model))
    trainer.setup()
    best = SplitRanker.from_pretrained(result.best_path, max_query_length=12, max_doc_length=24)
    best.eval()
    assert dev_ndcg(best, trainer.dev) == pytest.approx(dev[best_step], abs=1e-6)


def test_validation_at_several_splits_tracks_their_mean(irdata, make_config, student_model):
    config = _config(make_config, student_model, dial={"enabled": True, "splits": [0, 1]},
                     validation={"splits": [0, 1]})
    result = Trainer(config).train()
    log = [json.loads(line) for line in result.loss_log.read_text().splitlines()]
    checks = [r for r in log if "dev_ndcg@10" in r]
    assert [r["step"] for r in checks] == [2, 4]
    for r in checks:
        assert sorted(r["dev_ndcg@10_by_split"]) == ["0", "1"]
        assert r["dev_ndcg@10"] == pytest.approx(sum(r["dev_ndcg@10_by_split"].values()) / 2, abs=1e-12)
    # the best checkpoint is chosen by the mean, and re-measuring it at each split gives the logged values
    best_row = max(checks, key=lambda r: (r["dev_ndcg@10"], -r["step"]))
    assert result.best_step == best_row["step"]
    record = json.loads((result.output / "best.json").read_text())
    assert record["dev_ndcg@10_by_split"] == best_row["dev_ndcg@10_by_split"]
    trainer = Trainer(config)
    trainer.setup()
    best = SplitRanker.from_pretrained(result.best_path, max_query_length=12, max_doc_length=24)
    best.eval()
    for split in (0, 1):
        measured = dev_ndcg(best.at(split), trainer.dev)
        assert measured == pytest.approx(best_row["dev_ndcg@10_by_split"][str(split)], abs=1e-6)


def test_validation_splits_out_of_range_is_a_config_error(irdata, make_config, student_model):
    with pytest.raises(ConfigError, match=r"validation.splits \[5\] are out of range"):
        Trainer(_config(make_config, student_model, validation={"splits": [0, 5]})).setup()


def test_patience_stops_training_and_a_rerun_stays_stopped(irdata, make_config, student_model):
    # A learning rate too small to change any ranking: dev nDCG never improves after the first check.
    config = _config(make_config, student_model, steps=12, optim={"lr": 1e-12, "warmup_ratio": 0.0},
                     validation={"every": 2, "patience": 2}, checkpoint={"every": 2})
    result = Trainer(config).train()
    assert result.stopped_early and result.steps == 6 and result.best_step == 2
    assert (result.model_path / "config.json").is_file()
    again = Trainer(config).train()
    assert again.stopped_early and again.steps == 6 and again.resumed_from == 6


def test_dev_ndcg_is_drawn_in_the_loss_curve(tmp_path):
    rows = [{"step": s, "loss": 1.0 / s, "lr": 1e-3, "split": 0, "seconds": s} for s in range(1, 9)]
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows[1::2]:
        r["dev_ndcg@10"] = 0.3 + 0.01 * r["step"]
    with_dev = tmp_path / "dev.jsonl"
    with_dev.write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = plot_loss_curve(plain, tmp_path / "plain.png").read_bytes()
    b = plot_loss_curve(with_dev, tmp_path / "dev.png").read_bytes()
    assert a != b
    for r in rows[1::2]:
        r["dev_ndcg@10_by_split"] = {"0": r["dev_ndcg@10"] - 0.05, "1": r["dev_ndcg@10"] + 0.05}
    by_split = tmp_path / "by_split.jsonl"
    by_split.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert plot_loss_curve(by_split, tmp_path / "by_split.png").read_bytes() != b


def test_validation_config_errors(make_config, student_model):
    with pytest.raises(ConfigError, match="needs dev queries"):
        make_config(student_model, validation={"every": 5})
    with pytest.raises(ConfigError, match="holdout"):
        make_config(student_model, validation={"every": 5, "holdout": 1.5})
    with pytest.raises(ConfigError, match="use one"):
        make_config(student_model, data={"folds": 5}, validation={"every": 5, "holdout": 0.1})
    with pytest.raises(ConfigError, match="distinct splits"):
        make_config(student_model, validation={"every": 5, "holdout": 0.1, "splits": [1, 1]})
    with pytest.raises(ConfigError, match="distinct splits"):
        make_config(student_model, validation={"every": 5, "holdout": 0.1, "splits": []})
    with pytest.raises(ConfigError, match="trackers"):
        make_config(student_model, trackers=["wandb-typo"])


def test_tensorboard_tracker_receives_the_log(make_config, student_model, tiny_groups):
    pytest.importorskip("tensorboard")
    result = Trainer(make_config(student_model, steps=2, trackers=["tensorboard"]), tiny_groups).train()
    events = list(result.output.rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_validation_scores_in_the_config_dtype_and_trains_in_fp32(irdata, make_config, student_model):
    import copy

    import torch

    trainer = Trainer(_config(make_config, student_model, dtype="bf16"))
    trainer.setup()
    value = trainer.validate()
    assert trainer.student.dtype == torch.float32 and trainer.student.config.dtype == "fp32"
    with trainer._at_split() as student:
        by_hand = dev_ndcg(copy.deepcopy(student).to(torch.bfloat16), trainer.dev)
        fp32 = dev_ndcg(student, trainer.dev)
    assert value == pytest.approx(by_hand, abs=1e-9)
    assert Trainer(_config(make_config, student_model)).validate() == pytest.approx(fp32, abs=1e-9)

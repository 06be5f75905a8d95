"""report_to: the loss log reaches accelerate's trackers (wandb and mlflow offline, read back with
their own readers), the final cross-validation table too; trackers stays an alias."""

from __future__ import annotations

import json
import re

import pytest

from lateint.errors import ConfigError
from lateint.training.trainer import Trainer

DL19 = "msmarco-passage/trec-dl-2019/judged"


def _config(make_config, model, **overrides):
    return make_config(model, steps=4, batch_size=2,
                       data={"dataset": DL19, "run": "bm25", "negatives": 2, "depth": 20, "min_relevance": 2,
                             "max_queries": 6},
                       validation={"every": 2, "holdout": 0.1, "depth": 10, "max_queries": 3}, **overrides)


def _loss_log(result) -> list[dict]:
    return [json.loads(line) for line in result.loss_log.read_text().splitlines()]


def test_report_to_checks_names_and_keeps_trackers_as_its_alias(make_config, student_model, monkeypatch):
    assert make_config(student_model, trackers=["tensorboard"]).tracker_names == ["tensorboard"]
    assert make_config(student_model, report_to=["wandb", "mlflow"]).tracker_names == ["wandb", "mlflow"]
    with pytest.raises(ConfigError, match=r"report_to \['neptune'\] are unknown.*trackio"):
        make_config(student_model, report_to=["neptune"])
    with pytest.raises(ConfigError, match="disagree"):
        make_config(student_model, report_to=["wandb"], trackers=["tensorboard"])
    import lateint.training.tracking as tracking

    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"'wandb'.*not installed.*\[wandb\]"):
        Trainer(make_config(student_model, steps=1, report_to=["wandb"]), [])


def test_mlflow_receives_loss_lr_and_dev_ndcg(irdata, make_config, student_model, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store, as offline as it gets
    result = Trainer(_config(make_config, student_model, report_to=["mlflow"])).train()
    log = _loss_log(result)

    client = mlflow.tracking.MlflowClient(uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    history = {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
               for key in ("loss", "lr", "dev_ndcg_10")}
    for key, logged in (("loss", "loss"), ("lr", "lr"), ("dev_ndcg_10", "dev_ndcg@10")):
        rows = [r for r in log if logged in r]
        assert [step for step, _ in history[key]] == [r["step"] for r in rows], key
        assert [value for _, value in history[key]] == pytest.approx([r[logged] for r in rows]), key
    assert len(history["dev_ndcg_10"]) == 2  # validations at steps 2 and 4
    assert runs[0].data.params["optim.lr"] == str(result_lr(result))


def result_lr(result) -> float:
    from lateint.training.config import TrainConfig

    return TrainConfig.load(result.config_path).optim.lr


def test_wandb_offline_run_holds_the_log(irdata, make_config, student_model, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = Trainer(_config(make_config, student_model, report_to=["wandb"])).train()
    log = _loss_log(result)

    # wandb's offline run keeps what it was sent in its binary log (read by wandb sync); each
    # history item is a protobuf field "key" (tag 0x12) followed by its JSON value (tag 0x82 0x01).
    (path,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()

    def sent(key: str) -> list[float]:
        name = key.encode()
        values = []
        for match in re.finditer(re.escape(b"\x12" + bytes([len(name)]) + name + b"\x82\x01"), data):
            size = data[match.end()]
            values.append(float(data[match.end() + 1:match.end() + 1 + size]))
        return values

    for key in ("loss", "lr", "dev_ndcg@10"):
        logged = [r[key] for r in log if key in r]
        got = sent(key)
        assert len(logged) >= 2 and all(any(v == pytest.approx(x) for v in got) for x in logged), key


def test_the_final_test_table_is_logged(irdata, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from lateint.data import load_dataset
    from lateint.evaluation import evaluate
    from lateint.training.tracking import log_test_table

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a folder store, as offline as it gets
    ds = load_dataset(DL19)
    evaluation = evaluate(ds, {"bm25": "bm25"})
    log_test_table(["mlflow"], "crossval-test", str(tmp_path), evaluation)
    client = mlflow.tracking.MlflowClient(uri)
    (run,) = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert run.data.metrics["test/bm25/nDCG_10"] == pytest.approx(evaluation.means["bm25"]["nDCG@10"])
    assert run.data.metrics["test/bm25/nDCG_10"] == pytest.approx(0.5058, abs=5e-4)

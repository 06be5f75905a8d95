"""Sweeps over trained checkpoints: each at its own split, a dial checkpoint at every split."""

from __future__ import annotations

import pytest

from lateint import ConfigError
from lateint.data import read_run
from lateint.ranker import SplitRanker
from lateint.sweep import run_sweep
from lateint.sweep.config import parse_sweep_config
from lateint.training.trainer import Trainer

DL19 = "msmarco-passage/trec-dl-2019/judged"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, irdata, minilm_path):
    """A per-L model trained at L = 1 and a dial model, both validated on held-out DL19 queries."""
    from tests.training.conftest import make_spread_model
    from lateint.training.config import TrainConfig

    folder = tmp_path_factory.mktemp("trained")
    base = make_spread_model(folder / "base", 2, 0.2, 1, minilm_path)
    common = {
        "model": str(base), "steps": 2, "batch_size": 2, "device": "cpu", "progress": False,
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
        "data": {"dataset": DL19, "run": "bm25", "negatives": 2, "depth": 20, "min_relevance": 2,
                 "max_queries": 4, "max_query_length": 12, "max_doc_length": 24},
        "validation": {"every": 2, "holdout": 0.1, "depth": 5, "max_queries": 2},
    }
    per_l = Trainer(TrainConfig.from_dict({**common, "split": 1, "output": str(folder / "per-L1")})).train()
    dial = Trainer(TrainConfig.from_dict({**common, "split": 0, "output": str(folder / "dial"),
                                          "dial": {"enabled": True}})).train()
    assert per_l.best_path.is_dir() and dial.best_path.is_dir()
    return per_l.model_path, dial.model_path


def test_trained_models_at_their_own_split_and_a_dial_model_at_every_split(tmp_path, trained):
    per_l, dial = trained
    config = parse_sweep_config({
        "models": [{"path": str(per_l), "name": "per-L1", "trained": True, "group": "per-L"},
                   {"path": str(dial), "name": "dial", "trained": True, "splits": "all"}],
        "points": {"storage": ["fp32"]},
        "data": {"dataset": DL19, "first_stage": "bm25", "depth": 5, "max_queries": 2},
        "evaluation": {"metrics": ["nDCG@10"], "correction": "none"},
    })
    results = run_sweep(config, tmp_path / "sweep", progress=False, log=lambda *_: None)
    points = {r["point"]: r for r in results["points"]}
    assert sorted(points) == ["dial-trained-L0-fp32", "dial-trained-L1-fp32", "per-L1-trained-L1-fp32"]
    assert points["per-L1-trained-L1-fp32"]["group"] == "per-L-fp32"
    assert (tmp_path / "sweep" / "pareto.png").is_file() and "per-L1" in (tmp_path / "sweep" / "table.md").read_text()
    # The oracle: each checkpoint scoring the candidates itself, with its own trained head.
    from lateint.data import load_dataset

    ds = load_dataset(DL19)
    for name, path, split in (("per-L1-trained-L1-fp32", per_l, 1), ("dial-trained-L0-fp32", dial, 0)):
        ranker = SplitRanker.from_pretrained(path)
        ranker = ranker.at(split)
        assert ranker.config.head.name == points[name]["ranker"]["head"]["name"]
        run = read_run(points[name]["run_path"])
        qid = sorted(run)[0]
        docs = sorted(run[qid])
        texts = ds.doc_text(docs)
        expected = ranker.score([ds.queries()[qid]] * len(docs), [texts[d] for d in docs]).tolist()
        assert [run[qid][d] for d in docs] == pytest.approx(expected, abs=1e-4)


def test_trained_model_config_errors():
    with pytest.raises(ConfigError, match="needs trained = true"):
        parse_sweep_config({"models": [{"path": "m", "splits": "own"}]})
    with pytest.raises(ConfigError, match="labels must differ"):
        parse_sweep_config({"models": [{"path": "a/m"}, {"path": "b/m"}]})
    with pytest.raises(ConfigError, match="use \"own\""):
        parse_sweep_config({"models": [{"path": "m", "trained": True, "splits": "mine"}]})

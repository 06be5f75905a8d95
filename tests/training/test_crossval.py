"""k-fold cross-validation on the real TREC DL 2019 queries with a tiny model: no fold trains on
its own test queries, the merged run covers every query once, and a rerun resumes."""

from __future__ import annotations

import json

import pytest

from lateint.data import load_dataset, read_run
from lateint.errors import ConfigError
from lateint.training.crossval import cross_validate
from lateint.training.groups import kfold

DL19 = "msmarco-passage/trec-dl-2019/judged"


@pytest.fixture
def crossval_config(make_config, student_model, tmp_path):
    return make_config(
        student_model, steps=2, batch_size=2, split=1, output=str(tmp_path / "cv"),
        data={"dataset": DL19, "run": "bm25", "negatives": 3, "min_relevance": 2, "folds": 3, "max_queries": 3},
        dial={"enabled": True, "splits": [0, 1]},
    )


def test_folds_are_held_out_merged_and_resumed(irdata, crossval_config, tmp_path):
    result = cross_validate(crossval_config, depth=5, progress=False)
    ds = load_dataset(DL19)
    qids = sorted(q for q in ds.qrels() if q in ds.queries())
    with_candidates = set(ds.candidates("bm25", 5))
    assert [r.test_qids for r in result.folds] == [test for _, test in kfold(qids, 3, 0)]
    for rec in result.folds:
        assert rec.train_qids and not set(rec.train_qids) & set(rec.test_qids)
        for split in (0, 1):
            assert set(read_run(rec.runs[split])) == set(rec.test_qids) & with_candidates
    assert sorted(result.runs) == [0, 1]
    for split, path in result.runs.items():
        merged = read_run(path)
        assert set(merged) == with_candidates and all(len(docs) == 5 for docs in merged.values())
    means = result.evaluation.means
    assert set(means) == {"first stage", "L=0", "L=1"}
    record = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    assert record["seed"] == 0 and len(record["folds"]) == 3
    assert not list((tmp_path / "cv").glob("fold*/*.caches"))  # caches go once a fold's run is complete

    # Interrupted before fold 1 re-ranked at L=1 (so before its record was written): the rerun
    # skips the recorded folds, re-ranks only that run and trains nothing.
    merged_before = result.runs[1].read_text()
    for name in ("test-L1.trec", "test-L1.trec.progress"):
        (tmp_path / "cv" / "fold1" / name).unlink()
    (tmp_path / "cv" / "folds" / "fold1.json").unlink()
    again = cross_validate(crossval_config, depth=5, progress=False)
    assert [r.train["resumed_from"] for r in again.folds] == [0, 2, 0]  # folds 0 and 2: their records
    assert again.folds[0] == result.folds[0] and again.folds[2] == result.folds[2]
    assert [r.median_latency_ms[0] is not None for r in again.folds] == [True, False, True]
    assert again.folds[1].median_latency_ms[1] is not None  # re-ranked in this call
    assert again.runs[1].read_text() == merged_before


def test_crossval_needs_folds(crossval_config):
    crossval_config.data.folds = 0
    with pytest.raises(ConfigError, match="data.folds"):
        cross_validate(crossval_config, progress=False)

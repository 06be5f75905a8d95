"""``lateint rerank``, ``evaluate`` and ``sweep`` and the PyTerrier re-ranker on tiny random models of
every supported family, on the real DL19 data."""

from __future__ import annotations

import json

import pytest

from lateint.cli.main import main

DL19 = "msmarco-passage/trec-dl-2019/judged"
FAMILIES = ["distilbert", "deberta-v3", "modernbert"]


@pytest.mark.parametrize("family", FAMILIES)
def test_rerank_and_evaluate(tmp_path, irdata, family_model, capsys, family):
    model = str(family_model(family, seq_cls=True))
    run = tmp_path / "run.trec"
    assert main(["rerank", "--model", model, "--split", "1", "--max-doc-length", "48", "--dataset", DL19,
                 "--first-stage", "bm25", "--depth", "2", "--out", str(run), "--no-progress"]) == 0
    lines = run.read_text().splitlines()
    assert len(lines) == 43 * 2 and lines[0].split()[-1].endswith("L1of3-cls-offset-fp16")
    capsys.readouterr()
    assert main(["evaluate", "--dataset", DL19, "bm25", f"tiny={run}", "--format", "json"]) == 0
    assert "tiny" in capsys.readouterr().out


@pytest.mark.parametrize("family", FAMILIES)
def test_sweep(tmp_path, irdata, family_model, family):
    from lateint.sweep import run_sweep
    from lateint.sweep.config import parse_sweep_config

    config = parse_sweep_config({
        "sweep": {"name": "t", "seed": 0},
        "models": [{"path": str(family_model(family, seq_cls=True)), "name": family, "max_doc_length": 48}],
        "points": {"splits": [0, 2], "storage": ["fp16"]},
        "data": {"dataset": DL19, "first_stage": "bm25", "depth": 2},
    })
    results = run_sweep(config, tmp_path / "sweep", progress=False, log=lambda *_: None)
    assert {r["split"] for r in results["points"]} == {0, 2}
    assert all(0.0 <= r["metrics"]["nDCG@10"] <= 1.0 for r in results["points"])

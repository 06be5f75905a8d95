"""Sweeps: config checking, the table's significance against ranx.compare, resuming."""

from __future__ import annotations

import json

import pytest
import ranx

from lateint import ConfigError
from lateint.sweep import load_sweep_config, run_sweep
from lateint.sweep.config import parse_sweep_config


def test_default_config_is_the_dl19_minilm_sweep():
    config = load_sweep_config()
    assert config.data.dataset == "msmarco-passage/trec-dl-2019/judged" and config.data.first_stage == "bm25"
    assert config.points.splits == "all" and config.models[0].path == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize("raw,message", [
    ({"models": [{"path": "m"}], "colour": {}}, "unknown section"),
    ({"models": [{"path": "m", "size": 3}]}, r"\[models\]: unknown key 'size'"),
    ({"models": []}, "at least one"),
    ({"models": [{"path": "m"}], "points": {"splits": "some"}}, "list of integers"),
    ({"models": [{"path": "m"}], "points": {"storage": ["bf4"]}}, "bf4"),
    ({"models": [{"path": "m"}], "points": {"heads": [{"pooling": "mean"}]}}, "needs a 'head'"),
    ({"models": [{"path": "m", "quantization": "int4"}]}, r"m: quantization='int4' is unknown; use one of none, int8"),
])
def test_config_errors(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep_config(raw)


def _config(minilm_path, correction):
    return parse_sweep_config({
        "sweep": {"name": "t", "seed": 0},
        "models": [{"path": str(minilm_path), "name": "m", "max_doc_length": 96}],
        "points": {"splits": [0, 6], "storage": ["fp16"], "heads": [{"head": "twin", "pooling": "mean", "crossing": "cosine"}]},
        "data": {"dataset": "msmarco-passage/trec-dl-2019/judged", "first_stage": "bm25", "depth": 20},
        "evaluation": {"metrics": ["nDCG@10", "MAP"], "correction": correction},
    })


def test_sweep_table_significance_agrees_with_ranx_and_resumes(tmp_path, irdata, minilm_path):
    config = _config(minilm_path, "none")
    out = tmp_path / "sweep"
    results = run_sweep(config, out, progress=False, log=lambda *_: None)
    points = {r["split"]: r for r in results["points"]}
    assert set(points) == {0, 6}
    assert (out / "pareto.png").stat().st_size > 10_000
    table = (out / "table.md").read_text()

    from lateint.data import load_dataset

    ds = load_dataset("msmarco-passage/trec-dl-2019/judged")
    qrels = ranx.Qrels({q: r for q, r in ds.qrels().items()})
    runs = [ranx.Run.from_file(points[s]["run_path"], kind="trec") for s in (0, 6)]
    runs[0].name, runs[1].name = "L0", "L6"
    report = ranx.compare(qrels, runs, metrics=["ndcg@10", "map-l2"], max_p=0.05, stat_test="student")
    for ours, theirs in (("nDCG@10", "ndcg@10"), ("MAP", "map-l2")):
        significant = "L0" in str(report.results) and bool(report.comparisons[("L6", "L0")][theirs]["significant"])
        assert points[6]["significance"][ours]["significant"] == significant
        mark = points[6]["significance"][ours]["mark"]
        assert (mark != "") == significant
        assert f"{points[6]['metrics'][ours]:.4f}{mark}" in table
    assert any(points[6]["significance"][m]["significant"] for m in ("nDCG@10", "MAP"))

    # Rerunning skips both finished points and reproduces the same results.
    logged = []
    again = run_sweep(config, out, progress=False, log=logged.append)
    assert sum("done earlier" in line for line in logged) == 2
    assert [r["metrics"] for r in again["points"]] == [r["metrics"] for r in results["points"]]

    # Another configuration in the same folder is refused.
    with pytest.raises(ConfigError, match="different sweep configuration"):
        run_sweep(_config(minilm_path, "holm"), out, progress=False, log=lambda *_: None)
    json.loads((out / "results.json").read_text())


def test_a_folder_saved_before_a_new_key_resumes_and_another_version_is_refused(tmp_path, minilm_path):
    from lateint.sweep.config import SweepConfig
    from lateint.sweep.runner import _check_out_dir

    config = _config(minilm_path, "none")
    saved = config.to_dict()
    assert SweepConfig.from_dict(saved) == config
    for m in saved["models"]:
        del m["quantization"]  # as written before models had a quantization
    out = tmp_path / "old"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(saved))
    _check_out_dir(out, config)  # resumes: the missing key is at its default

    config.models[0].quantization = "int8"  # no longer the default: another sweep
    with pytest.raises(ConfigError, match="different sweep configuration"):
        _check_out_dir(out, config)
    (out / "config.json").write_text(json.dumps({**saved, "colour": "red"}))  # a key this version lacks
    with pytest.raises(ConfigError, match="different sweep configuration"):
        _check_out_dir(out, _config(minilm_path, "none"))


@pytest.mark.skipif(not __import__("lateint.modeling.linear_kernels", fromlist=["x"]).int8_available(),
                    reason="this torch build has no fbgemm int8 kernels")
def test_models_entries_set_their_own_quantization(tmp_path, irdata, minilm_path):
    from lateint import SplitRanker

    model = {"path": str(minilm_path), "max_doc_length": 96}
    config = parse_sweep_config({
        "models": [{**model, "name": "fp32"}, {**model, "name": "int8", "quantization": "int8"}],
        "points": {"splits": [3], "storage": ["fp32"], "heads": [{"head": "twin", "pooling": "mean", "crossing": "cosine"}]},
        "data": {"dataset": "msmarco-passage/trec-dl-2019/judged", "first_stage": "bm25", "depth": 5, "max_queries": 2},
        "evaluation": {"metrics": ["nDCG@10"]},
    })
    results = run_sweep(config, tmp_path / "sweep", progress=False, log=lambda *_: None)
    points = {r["model"]["name"]: r for r in results["points"]}
    assert points["int8"]["ranker"]["quantization"] == "int8" and points["fp32"]["ranker"]["quantization"] == "none"
    runs = {name: ranx.Run.from_file(p["run_path"], kind="trec").to_dict() for name, p in points.items()}
    from lateint.data import load_dataset

    ds = load_dataset("msmarco-passage/trec-dl-2019/judged")
    qid, docs = next(iter(runs["fp32"].items()))
    query, passages = ds.queries()[qid], ds.doc_text(list(docs))
    fp32 = SplitRanker.from_pretrained(minilm_path, split=3, head="twin", pooling="mean", crossing="cosine",
                                       max_doc_length=96)
    direct = fp32.score([query] * len(docs), [passages[d] for d in docs]).tolist()
    assert [runs["fp32"][qid][d] for d in docs] == pytest.approx(direct, abs=1e-5)
    # int8 arithmetic was in effect: its scores move (activations are quantized per batch, so they
    # cannot be compared with a direct int8 scoring exactly), by about as much as int8 moves them
    int8 = [runs["int8"][qid][d] for d in docs]
    assert int8 != pytest.approx(direct, abs=1e-4)
    assert int8 == pytest.approx(direct, abs=0.05)

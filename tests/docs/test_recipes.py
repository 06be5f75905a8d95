"""Every recipe of the documentation runs, on tiny models and the local test collections.

The scripts under ``docs/recipes`` are the code the recipe pages show (included, not copied);
here their variables point them at tiny models and small depths, and their outputs are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DL19_QUERIES = 43


def _run_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


def test_evaluate_a_cross_encoder_across_l(run_recipe, tiny_model, tmp_path):
    out = run_recipe("evaluate_across_l.sh", MODEL=tiny_model("bert", 2, seq_cls=True), SPLITS="0 1", DEPTH=3)
    for split in (0, 1):
        lines = _run_lines(tmp_path / "out" / f"L{split}.trec")
        assert len({line[0] for line in lines}) == DL19_QUERIES and len(lines) == 3 * DL19_QUERIES
    table = (tmp_path / "out" / "table.md").read_text()
    assert "L0" in table and "L1" in table and "nDCG@10" in table and table in out


def test_train_per_l_models_and_a_dial(run_recipe, tiny_model, tmp_path):
    run_recipe("per_l_and_dial.sh", MODEL=tiny_model("bert", 2), DOC_LENGTH=64, SPLITS="0 1 2", STEPS=2, EVERY=1,
               MAX_QUERIES=20, DEPTH=3, TEST_QUERIES=10)
    out = tmp_path / "out"
    for name in ("per-L-0", "per-L-1", "per-L-2", "dial"):
        assert (out / name / "best" / "config.json").is_file(), name
        assert json.loads((out / name / "best.json").read_text())["step"] in (1, 2)
    results = json.loads((out / "sweep" / "results.json").read_text())
    text = json.dumps(results)
    assert "per-L-1" in text and "dial" in text
    assert (out / "sweep" / "pareto.png").is_file() and "nDCG@10" in (out / "sweep" / "table.md").read_text()


def test_distil_a_student_with_cross_validation(run_recipe, tiny_model, tmp_path):
    out = run_recipe("distil.sh", TEACHER=tiny_model("bert", 4, seq_cls=True), SPLIT=1, STEPS=2, FOLDS=2, DEPTH=10,
                     DOC_LENGTH=64)
    report = json.loads((tmp_path / "out" / "crossval" / "crossval.json").read_text())
    assert "nDCG@10" in out and report
    config = (tmp_path / "out" / "student.toml").read_text()
    assert 'student_layers = "every_other"' in config and 'soft = "margin_mse"' in config
    student = json.loads(next((tmp_path / "out" / "crossval").rglob("final/config.json")).read_text())
    assert student["num_hidden_layers"] == 2  # every other layer of the 4-layer teacher


def test_build_a_sharded_cache_and_rerank_from_it(run_recipe, tiny_model, tmp_path):
    out = run_recipe("sharded_cache.sh", MODEL=tiny_model("bert", 2, seq_cls=True), SPLIT=1, DEPTH=2)
    assert "every checksum matches" in out
    parts = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("part*/manifest.json"))]
    assert len(parts) == 2
    lines = _run_lines(tmp_path / "out" / "L1.trec")
    assert len(lines) == 2 * DL19_QUERIES
    assert json.loads((tmp_path / "out" / "L1.trec.json").read_text())["cache_path"].endswith("cache")


def test_a_beir_folder_as_a_dataset(run_recipe, tiny_model, tmp_path, irdata):
    import zipfile

    with zipfile.ZipFile(irdata / "beir-scifact" / "scifact.zip") as archive:
        archive.extractall(tmp_path / "beir")
    folder = next(p.parent for p in (tmp_path / "beir").rglob("corpus.jsonl"))
    out = run_recipe("beir_folder.sh", MODEL=tiny_model("bert", 2), BEIR_DIR=folder, SPLIT=2, DEPTH=3)
    queries = {line[0] for line in _run_lines(tmp_path / "out" / "twin.trec")}
    assert len(queries) == 300  # every SciFact test query
    assert "bm25" in out and "twin" in out and "nDCG@10" in out


def test_train_from_a_hugging_face_dataset(run_recipe, tiny_model, tmp_path):
    from tests.training.conftest import DOC_TEXTS, QRELS, QUERY_TEXTS

    rows = []
    for qid, judged in QRELS.items():
        positive = next(d for d, grade in judged.items() if grade > 0)
        negative = next(d for d in DOC_TEXTS if d not in judged)
        rows.append({"query": QUERY_TEXTS[qid], "positive": DOC_TEXTS[positive], "negative": DOC_TEXTS[negative]})
    data = tmp_path / "triplets.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = run_recipe("hf_dataset.sh", MODEL=tiny_model("bert", 2), HF_DATASET=data, SPLIT=1, STEPS=2, DEPTH=2,
                     DOC_LENGTH=64)
    log = [json.loads(line) for line in (tmp_path / "out" / "model" / "loss_log.jsonl").read_text().splitlines()]
    assert len(log) == 2
    assert len(_run_lines(tmp_path / "out" / "trained.trec")) == 2 * DL19_QUERIES and "trained" in out


def test_a_pyterrier_pipeline(run_recipe, tiny_model, tmp_path):
    out = run_recipe("pyterrier_pipeline.py", MODEL=tiny_model("bert", 2), SPLIT=2, DEPTH=3)
    import csv

    rows = {row["name"]: row for row in csv.DictReader((tmp_path / "out" / "experiment.csv").open())}
    assert set(rows) == {"bm25", "bm25 >> twin", "twin over the candidates' cache"}
    # PyTerrier's BM25 row is the dataset's BM25 top 3, as ranx scores it
    from ranx import Qrels, Run, evaluate

    from lateint.data import load_dataset

    ds = load_dataset("msmarco-passage/trec-dl-2019/judged")
    run = Run({q: dict(ranked) for q, ranked in ds.candidates("bm25", depth=3).items()})
    assert float(rows["bm25"]["ndcg_cut_10"]) == pytest.approx(evaluate(Qrels(ds.qrels()), run, "ndcg@10"), abs=1e-4)
    assert "bm25 >> twin" in out


def test_run_a_sweep_and_read_its_pareto_front(run_recipe, tiny_model, tmp_path):
    out = run_recipe("sweep.sh", MODEL=tiny_model("bert", 2, seq_cls=True), SPLITS="[0, 1]", DEPTH=2)
    results = json.loads((tmp_path / "out" / "result" / "results.json").read_text())
    assert len(results["points"]) == 4  # 2 splits x 2 storages
    assert (tmp_path / "out" / "result" / "pareto.png").stat().st_size > 0
    front = out.split("Pareto front (nDCG@10 against latency):\n")[1].splitlines()
    assert front and all(line.strip().split(":")[0] in {p["point"] for p in results["points"]} for line in front)
    fastest = min(results["points"], key=lambda p: p["mean_latency_ms"])
    assert front[0].strip().startswith(fastest["point"] + ":")  # nothing is faster than the fastest point

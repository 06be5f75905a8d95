"""Re-ranking a real first stage: the zero-shot twin on DL19 reproduces the reference figure, runs
resume per query, and bad input is refused clearly."""

from __future__ import annotations

import pytest

from lateint import InputError, SplitRanker
from lateint.data import load_dataset, read_run
from lateint.evaluation import evaluate
from lateint.pipeline.rerank_run import rerank_dataset

DL19 = "msmarco-passage/trec-dl-2019/judged"


@pytest.fixture(scope="module")
def dl19(irdata):
    return load_dataset(DL19)


def test_zero_shot_twin_reranks_bm25_to_the_reference_ndcg(tmp_path, dl19, minilm_path):
    """all-MiniLM-L6-v2 as a twin (mean pooling, cosine) re-ranking the BM25 top-100: 0.639 with
    sentence-transformers/transformers (BM25 alone: 0.5058)."""
    ranker = SplitRanker.from_pretrained(minilm_path, split=6, head="twin", pooling="mean", crossing="cosine")
    candidates = dl19.candidates("bm25", 100)
    report = rerank_dataset(ranker, dl19, candidates, tmp_path / "twin.trec", tag="twin", progress=False)
    assert report.queries == 43 and len(report.latencies_ms) == 43
    result = evaluate(dl19, {"bm25": "bm25", "twin": str(tmp_path / "twin.trec")}, ["nDCG@10"])
    assert result.means["bm25"]["nDCG@10"] == pytest.approx(0.5058, abs=5e-5)
    assert result.means["twin"]["nDCG@10"] == pytest.approx(0.639, abs=0.003)


def test_interrupted_rerank_resumes(tmp_path, dl19, tiny_model):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=64)
    candidates = {q: v for q, v in list(dl19.candidates("bm25", 5).items())[:4]}
    out = tmp_path / "run.trec"
    first = rerank_dataset(ranker, dl19, {q: candidates[q] for q in list(candidates)[:2]}, out, tag="t", progress=False)
    assert first.scored_now == 2
    again = rerank_dataset(ranker, dl19, candidates, out, tag="t", progress=False)
    assert again.scored_now == 2 and again.queries == 4
    run = read_run(out)
    assert sorted(run) == sorted(candidates)
    assert all(len(run[q]) == 5 for q in run)
    full = rerank_dataset(ranker, dl19, candidates, tmp_path / "full.trec", tag="t", progress=False)
    assert read_run(tmp_path / "full.trec") == run
    assert full.scored_now == 4


def test_bad_first_stage(tmp_path, dl19, tiny_model):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=64)
    with pytest.raises(InputError, match="empty"):
        rerank_dataset(ranker, dl19, {}, tmp_path / "x.trec", tag="t", progress=False)
    with pytest.raises(InputError, match="unknown-query"):
        rerank_dataset(ranker, dl19, {"unknown-query": [("7067032", 1.0)]}, tmp_path / "y.trec", tag="t", progress=False)
    qid = next(iter(dl19.queries()))
    with pytest.raises(InputError, match="not in"):
        rerank_dataset(ranker, dl19, {qid: [("no-such-passage", 1.0)]}, tmp_path / "z.trec", tag="t", progress=False)

"""BM25 through bm25s: the BEIR SciFact figure, exact ties, and the command line."""

from __future__ import annotations

import json

import pytest

from lateint.cli.main import main
from lateint.errors import InputError
from lateint.retrieval import BM25Index, BM25Settings

pytest.importorskip("bm25s")


def test_bm25_on_scifact_test_reproduces_the_published_figure(irdata, tmp_path, capsys):
    """bm25s + English stemmer over title + text, top-100 of the 300 SciFact test queries:
    nDCG@10 about 0.686 and recall@100 about 0.91 (evaluated by ranx)."""
    from lateint.data import load_dataset, read_run
    from lateint.evaluation import evaluate

    out = tmp_path / "runs" / "bm25.trec"
    assert main(["retrieve", "--dataset", "beir/scifact/test", "--method", "bm25", "--depth", "100",
                 "--out", str(out), "--no-progress"]) == 0
    run = read_run(out)
    assert len(run) == 300 and max(len(docs) for docs in run.values()) == 100
    result = evaluate(load_dataset("beir/scifact/test"), {"bm25": str(out)}, ["nDCG@10", "R@100"])
    assert result.means["bm25"]["nDCG@10"] == pytest.approx(0.686, abs=0.003)
    assert result.means["bm25"]["R@100"] == pytest.approx(0.91, abs=0.01)
    record = json.loads(out.with_name("bm25.trec.json").read_text())
    assert record["method"] == "bm25" and record["bm25"]["stemmer"] == "english"
    # A rerun finds every query done and leaves the run as it was.
    before = out.read_bytes()
    capsys.readouterr()
    assert main(["retrieve", "--dataset", "beir/scifact/test", "--method", "bm25", "--out", str(out),
                 "--no-progress"]) == 0
    assert "already retrieved" in capsys.readouterr().out
    assert out.read_bytes() == before


def test_scores_match_bm25s_and_ties_go_by_document_id():
    import bm25s
    import Stemmer

    docs = [("d3", "the lobster roll"), ("d1", "the lobster roll"), ("d2", "lobster bisque soup"),
            ("d4", "photosynthesis in plants")]
    index = BM25Index.build(docs, progress=False)
    ranked = index.search({"q": "lobster rolls"}, k=2, progress=False)["q"]
    # d1 and d3 have the same text, hence the same score: the lower id comes first.
    assert [d for d, _ in ranked] == ["d1", "d3"]
    stemmer = Stemmer.Stemmer("english")
    oracle = bm25s.BM25()
    oracle.index(bm25s.tokenize([t for _, t in docs], stopwords="en", stemmer=stemmer, show_progress=False),
                 show_progress=False)
    ids, scores = oracle.retrieve(bm25s.tokenize(["lobster rolls"], stopwords="en", stemmer=stemmer,
                                                 show_progress=False), k=4, show_progress=False)
    expected = {docs[i][0]: float(s) for i, s in zip(ids[0], scores[0])}
    for doc_id, score in ranked:
        assert score == pytest.approx(expected[doc_id], rel=1e-6)
    # No query term in common: nothing is retrieved rather than arbitrary zero-score documents.
    assert index.search({"q": "quantum chromodynamics"}, k=3, progress=False)["q"] == []


def test_bad_settings_and_depth_are_clear_errors():
    with pytest.raises(ValueError, match="k1"):
        BM25Settings(k1=-1)
    index = BM25Index.build([("d1", "a lobster")], progress=False)
    with pytest.raises(InputError, match="depth"):
        index.search({"q": "lobster"}, k=0)
    with pytest.raises(InputError, match="twice"):
        BM25Index.build([("d1", "a"), ("d1", "b")], progress=False)

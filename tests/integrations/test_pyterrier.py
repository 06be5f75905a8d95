"""lateint in PyTerrier pipelines: re-ranking, indexing and dense retrieval, and pt.Experiment on DL19."""

from __future__ import annotations

import json

import pytest

pt = pytest.importorskip("pyterrier")
pd = pytest.importorskip("pandas")

from lateint import DocCache, SplitRanker  # noqa: E402
from lateint.errors import InputError  # noqa: E402
from lateint.pyterrier import SplitIndexer, SplitReRanker, TwinRetriever  # noqa: E402

from tests.conftest import DOCS  # noqa: E402


@pytest.fixture(scope="module")
def twin(minilm_path):
    return SplitRanker.from_pretrained(str(minilm_path))


def _results() -> pd.DataFrame:
    rows = [("q1", "what is a lobster roll", f"d{i}", DOCS[i], 1.0) for i in (2, 0, 1)]
    rows += [("q2", "who wrote the origin of species", f"d{i}", DOCS[i], 1.0) for i in (4, 3)]
    return pd.DataFrame(rows, columns=["qid", "query", "docno", "text", "score"])


def test_reranker_scores_text_and_ranks_like_pyterrier(twin):
    frame = _results()
    out = SplitReRanker(twin, batch_size=2).transform(frame)
    expected = twin.score(frame["query"].tolist(), frame["text"].tolist()).tolist()
    by_pair = dict(zip(zip(frame["qid"], frame["docno"]), expected))
    assert len(out) == len(frame) and set(out.columns) >= {"qid", "query", "docno", "text", "score", "rank"}
    for row in out.itertuples():
        assert row.score == pytest.approx(by_pair[(row.qid, row.docno)], abs=1e-6)
    for _, group in out.groupby("qid"):
        assert group["score"].is_monotonic_decreasing
        assert group["rank"].tolist() == list(range(pt.model.FIRST_RANK, pt.model.FIRST_RANK + len(group)))
    assert out[out.qid == "q1"].iloc[0]["docno"] == "d0"
    with pytest.raises(InputError, match="text"):
        SplitReRanker(twin).transform(frame.drop(columns=["text"]))


def test_indexer_cache_reranker_and_twin_retriever(twin, tmp_path):
    corpus = [{"docno": f"d{i}", "text": text} for i, text in enumerate(DOCS)]
    cache = SplitIndexer(twin, tmp_path / "cache", storage="fp32", progress=False).index(iter(corpus))
    assert isinstance(cache, DocCache) and len(cache) == len(DOCS)
    frame = _results()
    # With a cache, documents are found by docno: no text needed, the same scores.
    cached = SplitReRanker(twin, cache=cache).transform(frame.drop(columns=["text"]))
    plain = SplitReRanker(twin).transform(frame)
    assert cached["docno"].tolist() == plain["docno"].tolist()
    assert cached["score"].tolist() == pytest.approx(plain["score"].tolist(), abs=1e-6)
    topics = frame[["qid", "query"]].drop_duplicates()
    retrieved = TwinRetriever(twin, cache, num_results=2).transform(topics)
    assert retrieved.groupby("qid").size().tolist() == [2, 2]
    for qid, query in topics.itertuples(index=False):
        oracle = twin.score([query] * len(DOCS), DOCS).tolist()
        best = sorted(range(len(DOCS)), key=lambda i: -oracle[i])[:2]
        got = retrieved[retrieved.qid == qid]
        assert got["docno"].tolist() == [f"d{i}" for i in best]
        assert got["score"].tolist() == pytest.approx([oracle[i] for i in best], abs=1e-5)
    # A first stage and a re-ranker compose into one pipeline.
    pipeline = TwinRetriever(twin, cache, num_results=3) >> SplitReRanker(twin, cache=cache)
    assert pipeline.transform(topics).groupby("qid").size().tolist() == [3, 3]


def test_experiment_on_dl19_reproduces_lateint_rerank(irdata, minilm_path, tmp_path):
    """bm25 >> SplitReRanker(twin) inside pt.Experiment gives lateint rerank's nDCG@10 (0.6387)."""
    from lateint.cli.main import main
    from lateint.data import load_dataset
    from lateint.evaluation import evaluate

    dataset_id = "msmarco-passage/trec-dl-2019/judged"
    out = tmp_path / "twin.trec"
    assert main(["rerank", "--model", str(minilm_path), "--dataset", dataset_id, "--first-stage", "bm25",
                 "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    ds = load_dataset(dataset_id)
    reranked = evaluate(ds, {"twin": str(out)}, ["nDCG@10"]).means["twin"]["nDCG@10"]
    assert reranked == pytest.approx(0.6387, abs=5e-4)

    candidates = ds.candidates("bm25", depth=100)
    bm25 = pt.Transformer.from_df(pd.DataFrame(
        [(qid, doc, score) for qid, ranked in candidates.items() for doc, score in ranked],
        columns=["qid", "docno", "score"]))
    topics = pd.DataFrame(list(ds.queries().items()), columns=["qid", "query"])
    qrels = pd.DataFrame([(q, d, g) for q, judged in ds.qrels().items() for d, g in judged.items()],
                         columns=["qid", "docno", "label"])
    cache = DocCache.open(json.loads(out.with_name("twin.trec.json").read_text())["cache_path"])
    twin = SplitRanker.from_pretrained(str(minilm_path))
    table = pt.Experiment([bm25, bm25 >> SplitReRanker(twin, cache=cache)], topics, qrels,
                          eval_metrics=["ndcg_cut_10"], names=["bm25", "bm25 >> twin"])
    scores = dict(zip(table["name"], table["ndcg_cut_10"]))
    assert scores["bm25"] == pytest.approx(0.5058, abs=5e-4)
    assert scores["bm25 >> twin"] == pytest.approx(reranked, abs=1e-4)


def test_indexer_refuses_or_skips_documents_without_text(twin, tmp_path):
    corpus = [{"docno": f"d{i}", "text": text} for i, text in enumerate(DOCS)]
    corpus[1:1] = [{"docno": "blank", "text": "  "}, {"docno": "none", "text": ""}]
    with pytest.raises(InputError, match="document 'blank' has an empty text.*skip_empty=True"):
        SplitIndexer(twin, tmp_path / "refused", storage="fp32", progress=False).index(iter(corpus))
    indexer = SplitIndexer(twin, tmp_path / "cache", storage="fp32", progress=False, skip_empty=True)
    cache = indexer.index(iter(corpus))
    assert indexer.skipped == ["blank", "none"]
    assert sorted(cache.reader.iter_ids()) == sorted(f"d{i}" for i in range(len(DOCS)))

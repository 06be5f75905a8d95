"""Scores on a two-query fixture small enough to compute by hand."""

from __future__ import annotations

import json
from math import log2

import pytest

from lateint.errors import InputError
from lateint.evaluation import evaluate, parse_metric

QRELS = {
    "q1": {"d1": 2, "d2": 1, "d3": 0},
    "q2": {"d5": 1, "d6": 3},
}
RUN = {
    "q1": {"d3": 0.9, "d1": 0.8, "d2": 0.7, "d4": 0.6},
    "q2": {"d5": 1.0, "d7": 0.6, "d6": 0.5},
}

# q1 ranks d3 (0), d1 (2), d2 (1), d4 (unjudged); q2 ranks d5 (1), d7 (unjudged), d6 (3).
NDCG_Q1 = (2 / log2(3) + 1 / log2(4)) / (2 + 1 / log2(3))
NDCG_Q2 = (1 + 3 / log2(4)) / (3 + 1 / log2(3))
# Relevant from grade 1: q1 {d1, d2} at ranks 2, 3; q2 {d5, d6} at ranks 1, 3.
RR_L1 = {"q1": 1 / 2, "q2": 1.0}
AP_L1 = {"q1": (1 / 2 + 2 / 3) / 2, "q2": (1 + 2 / 3) / 2}
RECALL2_L1 = {"q1": 1 / 2, "q2": 1 / 2}
# Relevant from grade 2: q1 {d1} at rank 2; q2 {d6} at rank 3.
RR_L2 = {"q1": 1 / 2, "q2": 1 / 3}
AP_L2 = {"q1": 1 / 2, "q2": 1 / 3}
RECALL2_L2 = {"q1": 1.0, "q2": 0.0}


def _mean(by_query):
    return sum(by_query.values()) / len(by_query)


def test_level_one():
    result = evaluate(QRELS, {"run": RUN}, ["nDCG@10", "MRR@10", "MAP", "R@2"])
    assert result.per_query["run"]["nDCG@10"] == pytest.approx({"q1": NDCG_Q1, "q2": NDCG_Q2})
    assert result.per_query["run"]["MRR@10"] == pytest.approx(RR_L1)
    assert result.per_query["run"]["MAP"] == pytest.approx(AP_L1)
    assert result.per_query["run"]["R@2"] == pytest.approx(RECALL2_L1)
    assert result.mean("run", "nDCG@10") == pytest.approx((NDCG_Q1 + NDCG_Q2) / 2)
    assert result.mean("run", "MAP") == pytest.approx(_mean(AP_L1))


def test_level_two_changes_binary_measures_only():
    result = evaluate(QRELS, {"run": RUN}, ["nDCG@10", "MRR@10", "MAP", "R@2"], relevance_level=2)
    assert result.per_query["run"]["nDCG@10"] == pytest.approx({"q1": NDCG_Q1, "q2": NDCG_Q2})
    assert result.per_query["run"]["MRR@10"] == pytest.approx(RR_L2)
    assert result.per_query["run"]["MAP"] == pytest.approx(AP_L2)
    assert result.per_query["run"]["R@2"] == pytest.approx(RECALL2_L2)
    # An explicit level wins over the default one.
    explicit = evaluate(QRELS, {"run": RUN}, ["map-l1"], relevance_level=2)
    assert explicit.mean("run", "MAP-l1") == pytest.approx(_mean(AP_L1))


def test_missing_query_scores_zero_and_extra_query_is_ignored():
    partial = {"q1": RUN["q1"], "q9": {"d1": 1.0}}
    result = evaluate(QRELS, {"partial": partial}, ["nDCG@10", "MRR@10"])
    assert result.query_ids == ["q1", "q2"]
    assert result.per_query["partial"]["nDCG@10"] == pytest.approx({"q1": NDCG_Q1, "q2": 0.0})
    assert result.mean("partial", "MRR@10") == pytest.approx(RR_L1["q1"] / 2)
    assert result.missing_queries == {"partial": ["q2"]}
    assert "Queries without results score 0 (partial: 1)" in result.to_markdown()


def test_ranked_list_input_and_rendering():
    ranked = {qid: sorted(docs.items(), key=lambda item: -item[1]) for qid, docs in RUN.items()}
    result = evaluate(QRELS, {"dict": RUN, "list": ranked}, ["nDCG@10"], baseline="dict")
    assert result.means["dict"] == result.means["list"]
    comparison = result.comparisons["list"]["nDCG@10"]
    assert comparison.difference == 0 and not comparison.significant and comparison.mark == ""
    markdown = result.to_markdown()
    assert "| dict (baseline) | 0.6791 |" in markdown  # (NDCG_Q1 + NDCG_Q2) / 2 = 0.67910
    assert "\\textbf{0.6791}" in result.to_latex()
    data = json.loads(result.to_json(per_query=True))
    assert data["means"]["list"]["nDCG@10"] == pytest.approx((NDCG_Q1 + NDCG_Q2) / 2)
    assert data["per_query"]["dict"]["nDCG@10"]["q2"] == pytest.approx(NDCG_Q2)
    assert data["comparisons"]["list"]["nDCG@10"]["p_value"] is None  # identical runs: no p-value


def test_metric_names():
    assert parse_metric("nDCG@10", 2).ranx_name == "ndcg@10"
    assert parse_metric("MRR@10", 2).ranx_name == "mrr@10-l2"
    assert parse_metric("MAP", 2).ranx_name == "map-l2"
    assert parse_metric("R@100", 2).ranx_name == "recall@100-l2"
    assert parse_metric("R@100", 1).ranx_name == "recall@100"
    assert parse_metric("recall@100", 1).label == "R@100"
    assert parse_metric("map@100-l3", 1).label == "MAP@100-l3"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["nDCG@10-l2"]}, "takes no -l level"),
        ({"metrics": ["ERR@10"]}, "unknown metric"),
        ({"metrics": ["MAP", "map"]}, "same measure"),
        ({"baseline": "other"}, "baseline 'other' is not one of the runs"),
        ({"stat_test": "tukey"}, "stat_test"),
        ({"correction": "fdr"}, "correction"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        evaluate(QRELS, {"run": RUN}, **kwargs)


def test_bad_inputs():
    with pytest.raises(InputError, match="qrels are empty"):
        evaluate({}, {"run": RUN})
    with pytest.raises(InputError, match="non-empty mapping"):
        evaluate(QRELS, {})
    with pytest.raises(InputError, match="none of the 2 judged queries"):
        evaluate(QRELS, {"run": {"zz": {"d1": 1.0}}})

"""The TREC DL 2019 runs: the published BM25 figure, and significance marks that agree with ranx."""

from __future__ import annotations

import json

import pytest

from lateint.data import load_dataset
from lateint.evaluation import BETTER_MARK, WORSE_MARK, evaluate

DL19 = "msmarco-passage/trec-dl-2019/judged"
RUNS = ["bm25", "bm25-rm3", "tasb", "splade-pp-ed", "ada2"]
METRICS = ["nDCG@10", "MRR@10", "MAP", "R@100"]


@pytest.fixture(scope="module")
def dataset(irdata):
    return load_dataset(DL19)


@pytest.fixture(scope="module")
def uncorrected(dataset):
    return evaluate(dataset, {name: name for name in RUNS}, baseline="bm25", correction="none")


def test_bm25_matches_the_published_ndcg(dataset, irdata):
    path = irdata / "msmarco-passage-trec-dl-2019" / "runs" / "bm25.top100.trec"
    result = evaluate(dataset, {"bm25": str(path)})
    assert result.mean("bm25", "nDCG@10") == pytest.approx(0.5058, abs=0.00005)
    assert [spec.ranx_name for spec in result.metrics] == ["ndcg@10", "mrr@10-l2", "map-l2", "recall@100-l2"]
    assert len(result.query_ids) == 43 and result.missing_queries == {"bm25": []}


def test_plain_qrels_need_the_level_spelled_out(dataset):
    run = {"bm25": "bm25"}
    from_handle = evaluate(dataset, run)
    by_hand = evaluate(dataset.qrels(), {"bm25": dataset.candidates("bm25")}, relevance_level=2)
    assert by_hand.means == from_handle.means
    level_one = evaluate(dataset.qrels(), {"bm25": dataset.candidates("bm25")})
    assert level_one.mean("bm25", "MAP") > from_handle.mean("bm25", "MAP")  # more documents count


def _ranx_report(irdata, alpha):
    # Built from the files by ranx alone, so that nothing of ours is involved.
    import ranx

    folder = irdata / "msmarco-passage-trec-dl-2019"
    qrels = ranx.Qrels.from_file(str(folder / "qrels.txt"), kind="trec")
    runs = []
    for name in RUNS:
        run = ranx.Run.from_file(str(folder / "runs" / f"{name}.top100.trec"), kind="trec")
        run.name = name
        runs.append(run)
    return ranx.compare(qrels, runs, ["ndcg@10", "mrr@10-l2", "map-l2", "recall@100-l2"], max_p=alpha,
                        stat_test="student")


def test_marks_agree_with_ranx_compare(irdata, uncorrected):
    report = _ranx_report(irdata, alpha=0.05)
    ranx_metric = {spec.label: spec.ranx_name for spec in uncorrected.metrics}
    baseline_letter = "ᵃ"  # bm25 is ranx's first model
    marked = 0
    for name in RUNS[1:]:
        letter = "ᵃᵇᶜᵈᵉ"[RUNS.index(name)]
        for label in METRICS:
            m = ranx_metric[label]
            ours = uncorrected.comparisons[name][label]
            theirs = report.comparisons["bm25", name][m]
            assert ours.p_value == pytest.approx(float(theirs["p_value"]), rel=1e-12)
            assert uncorrected.mean(name, label) == pytest.approx(report.results[name][m], abs=1e-12)
            mark = uncorrected.mark(name, label)
            assert (mark == BETTER_MARK) == (baseline_letter in report.get_superscript_for_table(name, m))
            assert (mark == WORSE_MARK) == (letter in report.get_superscript_for_table("bm25", m))
            assert (mark != "") == bool(theirs["significant"])
            marked += mark != ""
    assert marked > 0  # the check above would be vacuous without significant differences
    table = uncorrected.to_markdown()
    assert f"| tasb | {uncorrected.mean('tasb', 'nDCG@10'):.4f}{BETTER_MARK} |" in table


def test_holm_correction_over_runs_and_metrics(dataset, uncorrected):
    from lateint.evaluation import adjust_p_values

    corrected = evaluate(dataset, {name: name for name in RUNS}, baseline="bm25")
    assert corrected.correction == "holm"
    keys = [(name, label) for name in RUNS[1:] for label in METRICS]
    raw = [uncorrected.comparisons[name][label].p_value for name, label in keys]
    expected = adjust_p_values(raw, "holm")
    for (name, label), p_holm in zip(keys, expected):
        comparison = corrected.comparisons[name][label]
        assert comparison.p_value == pytest.approx(uncorrected.comparisons[name][label].p_value)
        assert comparison.p_adjusted == pytest.approx(p_holm)
        assert comparison.significant == (p_holm <= 0.05)
    # The correction can only remove marks, and here it does remove some.
    corrected_marks = {key for key in keys if corrected.mark(*key)}
    raw_marks = {key for key in keys if uncorrected.mark(*key)}
    assert corrected_marks < raw_marks
    assert "Holm-Bonferroni correction over 16 tests" in corrected.to_markdown()


def test_per_query_scores_and_json(uncorrected):
    per_query = uncorrected.query_scores("nDCG@10")
    assert len(per_query) == 43 and set(next(iter(per_query.values()))) == set(RUNS)
    mean = sum(scores["bm25"] for scores in per_query.values()) / 43
    assert mean == pytest.approx(uncorrected.mean("bm25", "nDCG@10"))
    data = json.loads(uncorrected.to_json())
    assert data["num_queries"] == 43 and data["relevance_level"] == 2 and data["baseline"] == "bm25"
    assert data["comparisons"]["tasb"]["nDCG@10"]["significant"] is True
    latex = uncorrected.to_latex()
    assert "\\begin{tabular}{lrrrr}" in latex and "splade-pp-ed" in latex and "$\\geq$ 2" in latex

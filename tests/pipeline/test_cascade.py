"""Cascades along one checkpoint's dial on a tiny model and the real DL19 first stage: one stage is a plain
re-rank, later stages reorder only the top of the earlier ones, runs resume, nonsense stages are refused."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import lateint
from lateint import InputError, SplitRanker
from lateint.cli.main import main
from lateint.data import load_dataset, read_run
from lateint.pipeline.rerank_run import rerank_dataset

DL19 = "msmarco-passage/trec-dl-2019/judged"


@pytest.fixture(scope="module")
def dl19(irdata):
    return load_dataset(DL19)


@pytest.fixture(scope="module")
def ranker(tiny_model):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 4), split=3, head="cls", max_doc_length=64)
    # a random model's scores lie within 1e-3 of each other: spread them far beyond rounding, so that the splits'
    # different orders are what the tests see
    with torch.no_grad():
        ranker.head.out.weight.mul_(1000.0)
    return ranker


def _order(run_for_query: dict) -> list[str]:
    return [d for d, _ in sorted(run_for_query.items(), key=lambda x: (-x[1], x[0]))]


def test_one_stage_cascade_is_a_plain_rerank(tmp_path, dl19, ranker):
    candidates = {q: v for q, v in list(dl19.candidates("bm25", 6).items())[:3]}
    report = lateint.cascade(ranker, dl19, candidates, tmp_path / "cascade.trec", stages=[(1, 6)], tag="t",
                             progress=False)
    assert report.queries == 3 and report.scored_now == 3
    rerank_dataset(ranker.at(1), dl19, candidates, tmp_path / "rerank.trec", tag="t", progress=False)
    assert read_run(tmp_path / "cascade.trec") == read_run(tmp_path / "rerank.trec")
    assert (tmp_path / "cascade.trec").read_text() == (tmp_path / "rerank.trec").read_text()


def test_later_stages_reorder_the_top_and_the_rest_keeps_the_earlier_order(tmp_path, dl19, ranker):
    candidates = {q: v for q, v in list(dl19.candidates("bm25", 10).items())[:6]}
    queries = dl19.queries()
    report = lateint.cascade(ranker, dl19, candidates, tmp_path / "run.trec", stages=[(3, 10), (1, 6), (0, 2)],
                             tag="t", storage="fp32", progress=False)
    run = read_run(tmp_path / "run.trec")
    disagree = []
    for qid, ranked in candidates.items():
        # each stage scored end to end (no cache) on what the stage before passed on
        docs = [d for d, _ in ranked][:10]
        texts = dl19.doc_text(docs)
        orders = []
        for split, depth in [(3, 10), (1, 6), (0, 2)]:
            docs = docs[:depth]
            scores = ranker.at(split).score([queries[qid]] * len(docs), [texts[d] for d in docs]).tolist()
            docs = [d for d, _ in sorted(zip(docs, scores), key=lambda x: (-x[1], x[0]))]
            orders.append(docs)
        expected = orders[2] + [d for d in orders[1] if d not in orders[2]] \
            + [d for d in orders[0] if d not in orders[1]]
        # whether a stage's order of what it did not pass on differs from the order the stage before gave them
        passed_over = [d for d in orders[1] if d not in orders[2]]
        disagree.append((passed_over != [d for d in orders[0] if d in passed_over], orders[1][:2] != orders[2]))
        assert _order(run[qid]) == expected
        assert len(run[qid]) == 10  # what the first stage re-ranked, the BM25 top 10
        # the top keeps the last stage's own scores
        top = ranker.at(0).score([queries[qid]] * 2, [texts[d] for d in orders[2]]).tolist()
        assert [run[qid][d] for d in orders[2]] == pytest.approx(top, rel=1e-4)
    # some query where each stage reorders what the one before passed on, so the test sees the merge's order
    assert any(a for a, _ in disagree) and any(b for _, b in disagree)
    timing = json.loads((tmp_path / "run.trec.json").read_text())
    assert [(s["split"], s["depth"]) for s in timing["stages"]] == [(3, 10), (1, 6), (0, 2)]
    assert all(len(s["latencies_ms"]) == 6 and s["cache"] for s in timing["stages"])
    assert len({s["cache"] for s in timing["stages"]}) == 3  # each stage reads its own cache
    assert timing["end_to_end"]["median_ms"] == pytest.approx(report.median_latency_ms)
    for i in range(6):
        assert timing["latencies_ms"][i] == pytest.approx(sum(s["latencies_ms"][i] for s in timing["stages"]))


def test_interrupted_cascade_resumes(tmp_path, dl19, ranker):
    candidates = {q: v for q, v in list(dl19.candidates("bm25", 6).items())[:4]}
    stages = [{"split": 3, "depth": 6}, {"split": 0, "depth": 2}]
    out = tmp_path / "run.trec"
    first = lateint.cascade(ranker, dl19, {q: candidates[q] for q in list(candidates)[:2]}, out, stages=stages,
                            tag="t", progress=False)
    assert first.scored_now == 2
    again = lateint.cascade(ranker, dl19, candidates, out, stages=stages, tag="t", progress=False)
    assert again.scored_now == 2 and again.queries == 4
    whole = lateint.cascade(ranker, dl19, candidates, tmp_path / "whole.trec", stages=stages, tag="t", progress=False)
    assert whole.scored_now == 4
    assert read_run(out) == read_run(tmp_path / "whole.trec")
    assert (tmp_path / "run.trec.progress").exists()


def test_resuming_a_cascade_with_other_stages_or_weights_is_refused(tmp_path, dl19, ranker):
    from lateint import CacheMismatchError

    candidates = {q: v for q, v in list(dl19.candidates("bm25", 6).items())[:3]}
    out = tmp_path / "run.trec"
    stages = [{"split": 3, "depth": 6}, {"split": 0, "depth": 2}]
    lateint.cascade(ranker, dl19, {q: candidates[q] for q in list(candidates)[:1]}, out, stages=stages, tag="t",
                    progress=False)
    with pytest.raises(CacheMismatchError, match="stages"):
        lateint.cascade(ranker, dl19, candidates, out, stages=[{"split": 3, "depth": 6}, {"split": 0, "depth": 3}],
                        tag="t", progress=False)
    other = copy.deepcopy(ranker)  # ranker.at() would share the weights changed below
    with torch.no_grad():
        next(p for p in other.parameters() if p.requires_grad).add_(0.01)
    with pytest.raises(CacheMismatchError, match="fingerprint"):
        lateint.cascade(other, dl19, candidates, out, stages=stages, tag="t", progress=False)
    assert len(read_run(out)) == 1  # nothing was added by the refused resumes


@pytest.mark.parametrize("stages, message", [
    ([(2, 5), (1, 5)], "fewer documents than the one before"),
    ([(2, 5), (0, 8)], "fewer documents than the one before"),
    ([(4, 5)], "runs splits 0..3"),  # the cls head needs a joint layer
    ([(-1, 5)], "runs splits 0..3"),
    ([(2, 0)], "depth of at least 1"),
    ([], "at least one stage"),
    ([(2, "5")], "integers"),
])
def test_nonsense_stages_are_refused(tmp_path, dl19, ranker, stages, message):
    candidates = {q: v for q, v in list(dl19.candidates("bm25", 5).items())[:1]}
    with pytest.raises(InputError, match=message):
        lateint.cascade(ranker, dl19, candidates, tmp_path / "x.trec", stages=stages, progress=False)
    assert not (tmp_path / "x.trec").exists()


def test_cascade_command(tmp_path, irdata, tiny_model, capsys):
    common = ["--model", str(tiny_model("bert", 2)), "--split", "2", "--head", "twin", "--max-doc-length", "64",
              "--dataset", DL19, "--first-stage", "bm25", "--no-progress"]
    run = tmp_path / "run.trec"
    assert main(["cascade", *common, "--stages", "2:4,0:2", "--out", str(run)]) == 0
    assert "43 queries (43 scored now)" in capsys.readouterr().out
    assert len(run.read_text().splitlines()) == 43 * 4
    timing = json.loads((tmp_path / "run.trec.json").read_text())
    assert [s["depth"] for s in timing["stages"]] == [4, 2] and timing["queries"] == 43

    assert main(["cascade", *common, "--stages", "2:4,0:9", "--out", str(tmp_path / "bad.trec")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lateint cascade: error:") and "fewer documents" in err and "\n" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["cascade", *common, "--stages", "2-4", "--out", str(tmp_path / "bad.trec")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--stages" in err and "SPLIT:DEPTH" in err and "Traceback" not in err


def test_cascade_command_takes_the_shared_running_flags():
    from tests.cli.test_cli_consistency import _options, _subparser

    from lateint.cli.common import DEFAULT_STORAGE, positive_int

    options = _options(_subparser(("cascade",)))
    assert {"--device", "--batch-size", "--no-progress"} <= set(options)
    assert options["--batch-size"].type is positive_int and options["--storage"].default == DEFAULT_STORAGE
    assert options["--out"].metavar == "RUN.trec"

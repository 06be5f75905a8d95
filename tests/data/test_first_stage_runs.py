"""First-stage runs by name, by file, in memory, and as the dataset's scoreddocs."""

from __future__ import annotations

import pytest

from lateint.data import first_stage_run, load_dataset, named_runs
from lateint.errors import InputError

DL19 = "msmarco-passage/trec-dl-2019/judged"
RUN_NAMES = {"bm25", "bm25-rm3", "tasb", "splade-pp-ed", "ada2"}


def _first_lines(path, count):
    with open(path, encoding="utf-8") as lines:
        return [next(lines).split() for _ in range(count)]


def test_the_five_named_runs(irdata):
    assert set(named_runs(DL19)) == RUN_NAMES
    for name in RUN_NAMES:
        run = first_stage_run(DL19, name)
        assert len(run) == 43
        assert all(len(docs) == 100 for docs in run.values())


def test_candidates_follow_the_file_ranking(irdata):
    handle = load_dataset(DL19)
    top = _first_lines(irdata / "msmarco-passage-trec-dl-2019" / "runs" / "tasb.top100.trec", 3)
    candidates = handle.candidates("tasb", depth=3)
    qid = top[0][0]
    assert [doc_id for doc_id, _ in candidates[qid]] == [line[2] for line in top]
    assert [score for _, score in candidates[qid]] == [float(line[4]) for line in top]
    assert all(len(ranked) == 3 for ranked in candidates.values())


def test_scoreddocs_are_the_bm25_run(irdata):
    handle = load_dataset(DL19)
    assert handle.candidates() == handle.candidates("bm25")
    assert first_stage_run(handle) == first_stage_run(handle, "bm25")


def test_run_by_path_and_in_memory(irdata, tmp_path):
    path = irdata / "msmarco-passage-trec-dl-2019" / "runs" / "ada2.top100.trec"
    by_path = first_stage_run(DL19, str(path))
    assert by_path == first_stage_run(DL19, "ada2")
    ranked = load_dataset(DL19).candidates(by_path, depth=None)
    assert first_stage_run(DL19, ranked) == by_path


def test_unknown_run_name(irdata):
    with pytest.raises(InputError, match="'bm26' is neither a run known.*bm25"):
        first_stage_run(DL19, "bm26")


def test_run_for_another_dataset_is_refused(irdata, tmp_path):
    run = {"19335": {"1017759": 1.0}, "no-such-query": {"1": 2.0}, "another-one": {"2": 1.0}}
    with pytest.raises(InputError, match="2 query id\\(s\\) the dataset does not have: 'another-one', 'no-such-query'"):
        first_stage_run(DL19, run)


def test_depth_must_be_positive(irdata):
    with pytest.raises(InputError, match="depth"):
        load_dataset(DL19).candidates("bm25", depth=0)

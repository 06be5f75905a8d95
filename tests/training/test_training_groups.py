"""Training groups from plain dicts, and k-fold query splits."""

from __future__ import annotations

import pytest

from lateint.errors import InputError
from lateint.training.groups import build_groups, kfold

from .conftest import CANDIDATES, DOC_TEXTS, QRELS, QUERY_TEXTS, doc_text


def test_groups_put_the_positive_first_and_exclude_judged_positives():
    groups = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=3, depth=8, seed=0)
    assert [g.qid for g in groups] == ["q1", "q2", "q3", "q4", "q5", "q6"]
    for g in groups:
        assert g.doc_ids[0] in QRELS[g.qid] and QRELS[g.qid][g.doc_ids[0]] >= 1
        assert g.labels == (1.0, 0.0, 0.0, 0.0)
        assert len(set(g.doc_ids)) == 4
        assert all(QRELS[g.qid].get(d, 0) < 1 for d in g.doc_ids[1:])
        assert g.docs == tuple(DOC_TEXTS[d] for d in g.doc_ids)
        assert g.query == QUERY_TEXTS[g.qid]


def test_negatives_come_from_the_top_depth_only():
    # q1's run: d1, d7 (judged) then d2, d3, ...; depth 4 leaves d7 (judged non-relevant), d2, d3.
    groups = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=3, depth=4, seed=5, qids=["q1"])
    assert len(groups) == 1
    assert sorted(groups[0].doc_ids[1:]) == ["d2", "d3", "d7"]


def test_groups_are_deterministic_and_depend_on_the_seed():
    a = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=2, depth=8, seed=3)
    b = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=2, depth=8, seed=3)
    c = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=2, depth=8, seed=4)
    assert a == b
    assert [g.doc_ids for g in a] != [g.doc_ids for g in c]
    # A query's group does not depend on which other queries are built.
    alone = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=2, depth=8, seed=3, qids=["q4"])
    assert alone == [g for g in a if g.qid == "q4"]


def test_queries_with_too_few_candidates_or_no_positive_are_skipped():
    qrels = {**QRELS, "q6": {"d6": 0}}
    cands = {**CANDIDATES, "q5": [("d5", 1.0), ("d1", 0.5)]}
    groups = build_groups(QUERY_TEXTS, qrels, cands, doc_text, negatives=3, depth=8)
    assert {g.qid for g in groups} == {"q1", "q2", "q3", "q4"}


def test_in_batch_groups_hold_the_positive_only():
    groups = build_groups(QUERY_TEXTS, QRELS, None, doc_text, negatives=0)
    assert [g.doc_ids for g in groups] == [("d1",), ("d2",), ("d3",), ("d4",), ("d5",), ("d6",)]


def test_missing_negative_text_is_an_error():
    positives = {d for judged in QRELS.values() for d, g in judged.items() if g >= 1}
    with pytest.raises(InputError, match="no text"):
        build_groups(QUERY_TEXTS, QRELS, CANDIDATES, lambda ids: {d: DOC_TEXTS[d] for d in ids if d in positives},
                     negatives=1, depth=8)


def test_positives_missing_from_the_collection_are_left_out(caplog):
    # A partial collection (as the local MS MARCO subset) lacks some judged positives: their groups go.
    without_d2 = lambda ids: {d: DOC_TEXTS[d] for d in ids if d != "d2"}  # noqa: E731
    full = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=1, depth=8, seed=0)
    groups = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, without_d2, negatives=1, depth=8, seed=0)
    assert [g for g in full if g.doc_ids[0] != "d2"] == groups
    assert "1 judged positive(s) have no text" in caplog.text


def test_kfold_is_disjoint_covering_and_deterministic():
    qids = [f"q{i}" for i in range(10)] + ["q3"]
    folds = kfold(qids, 3, seed=1)
    assert len(folds) == 3
    tests = [set(test) for _, test in folds]
    assert sorted(len(t) for t in tests) == [3, 3, 4]
    assert set().union(*tests) == {f"q{i}" for i in range(10)}
    assert sum(len(t) for t in tests) == 10
    for train, test in folds:
        assert not set(train) & set(test)
        assert set(train) | set(test) == {f"q{i}" for i in range(10)}
    assert kfold(qids, 3, seed=1) == folds
    assert kfold(qids, 3, seed=2) != folds


def test_kfold_hand_checked_two_folds():
    folds = kfold(["a", "b"], 2, seed=0)
    assert sorted(test[0] for _, test in folds) == ["a", "b"]
    assert all(train == [q for q in ["a", "b"] if q not in test] for train, test in folds)


@pytest.mark.parametrize("k", [1, 0, 5])
def test_kfold_rejects_bad_k(k):
    with pytest.raises(InputError):
        kfold(["a", "b", "c", "d"], k)


def test_groups_from_the_partial_dl19_collection(irdata, caplog):
    # The local MS MARCO is the subset the runs retrieved, so some judged positives have no text:
    # building groups from the dataset itself leaves them out with a warning instead of failing.
    from lateint.data import load_dataset
    from lateint.training.config import DataSettings
    from lateint.training.groups import groups_from_dataset

    settings = DataSettings(dataset="msmarco-passage/trec-dl-2019/judged", run="bm25", negatives=3,
                            min_relevance=2, folds=5, fold=0, max_queries=4)
    groups = groups_from_dataset(settings, seed=0)
    assert "have no text in the collection and were left out" in caplog.text
    ds = load_dataset(settings.dataset)
    train_qids = kfold(sorted(ds.qrels()), 5, 0)[0][0]
    assert groups and {g.qid for g in groups} <= set(train_qids) and len({g.qid for g in groups}) <= 4
    qrels = ds.qrels()
    for g in groups:
        assert len(g) == 4 and all(text.strip() for text in g.docs)
        assert qrels[g.qid][g.doc_ids[0]] >= 2 and all(qrels[g.qid].get(d, 0) < 2 for d in g.doc_ids[1:])

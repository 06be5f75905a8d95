"""Reading, checking and writing TREC run files."""

from __future__ import annotations

import pytest

from lateint.data import check_run_queries, read_run, write_run
from lateint.errors import InputError, MissingResourceError

GOOD = "q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 1.5 tag\n\nq2 Q0 d1 1 -0.25 tag\n"


def _write(tmp_path, text, name="run.trec"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_a_good_run(tmp_path):
    assert read_run(_write(tmp_path, GOOD)) == {"q1": {"d1": 2.5, "d2": 1.5}, "q2": {"d1": -0.25}}


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("q3 Q0 d1 1 0.5", "expected 6 whitespace-separated fields .* got 5"),
        ("q3 Q0 d1 1 0.5 tag extra", "expected 6 .* got 7: .q3 Q0 d1 1 0.5 tag extra."),
        ("q3 Q0 d1 first 0.5 tag", "rank \\(4th field\\) must be an integer, got 'first'"),
        ("q3 Q0 d1 1 high tag", "score \\(5th field\\) must be a number, got 'high'"),
        ("q3 Q0 d1 1 nan tag", "score \\(5th field\\) must be finite"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path, GOOD + bad_line + "\n")
    # GOOD holds four lines (one blank), so the bad line is line 5.
    with pytest.raises(InputError, match=f"{path.name}:5: {message}"):
        read_run(path)


def test_empty_runs(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_run(_write(tmp_path, ""))
    with pytest.raises(InputError, match="empty"):
        read_run(_write(tmp_path, "\n  \n", name="blank.trec"))


def test_missing_run_file(tmp_path):
    with pytest.raises(MissingResourceError, match="does not exist"):
        read_run(tmp_path / "absent.trec")


def test_duplicates_are_refused_unless_a_policy_is_named(tmp_path):
    path = _write(tmp_path, GOOD + "q1 Q0 d1 3 9.0 tag\n")
    with pytest.raises(InputError, match="line 5: document 'd1' appears twice for query 'q1' \\(first at line 1\\)"):
        read_run(path)
    assert read_run(path, on_duplicate="first")["q1"]["d1"] == 2.5
    assert read_run(path, on_duplicate="max")["q1"]["d1"] == 9.0
    with pytest.raises(InputError, match="on_duplicate"):
        read_run(path, on_duplicate="last")


def test_unknown_queries_are_listed(tmp_path):
    run = {f"x{i}": {"d": 1.0} for i in range(8)} | {"q1": {"d": 1.0}}
    with pytest.raises(InputError, match="8 query id\\(s\\) .*'x0', 'x1', 'x2', 'x3', 'x4' and 3 more"):
        check_run_queries(run, ["q1", "q2"], source="my run")
    check_run_queries({"q1": {}}, ["q1", "q2"])


def test_write_orders_by_score_then_doc_id(tmp_path):
    run = {"q2": {"b": 1.0, "a": 1.0, "c": 3.0}, "q1": [("z", 0.1), ("y", 0.7)]}
    path = write_run(run, tmp_path / "out" / "run.trec", tag="mine")
    assert path.read_text().splitlines() == [
        "q1 Q0 y 1 0.7 mine",
        "q1 Q0 z 2 0.1 mine",
        "q2 Q0 c 1 3.0 mine",
        "q2 Q0 a 2 1.0 mine",
        "q2 Q0 b 3 1.0 mine",
    ]
    assert read_run(path) == {"q1": {"y": 0.7, "z": 0.1}, "q2": {"a": 1.0, "b": 1.0, "c": 3.0}}
    assert [p.name for p in path.parent.iterdir()] == ["run.trec"]  # no temporary file left behind


def test_write_keeps_full_precision_and_depth(tmp_path):
    score = 0.1 + 0.2  # 0.30000000000000004 must survive the round trip
    path = write_run({"q": {"a": score, "b": 0.0, "c": -1.0}}, tmp_path / "run.trec", tag="t", depth=2)
    assert read_run(path) == {"q": {"a": score, "b": 0.0}}


@pytest.mark.parametrize(
    ("run", "tag", "message"),
    [
        ({}, "t", "empty run"),
        ({"q": {"a": 1.0}}, "two words", "tag"),
        ({"q": {"a": float("inf")}}, "t", "non-finite"),
        ({"q": {"a b": 1.0}}, "t", "document ids"),
        ({"q q": {"a": 1.0}}, "t", "query ids"),
        ({"q": [("a", 1.0), ("a", 2.0)]}, "t", "given twice"),
    ],
)
def test_write_rejects_what_cannot_be_written(tmp_path, run, tag, message):
    with pytest.raises(InputError, match=message):
        write_run(run, tmp_path / "run.trec", tag=tag)

"""The ``evaluate`` command as it plugs into an argparse command line."""

from __future__ import annotations

import argparse
import json

import pytest

from lateint.evaluation.cli import add_evaluate_command, run_label

DL19 = "msmarco-passage/trec-dl-2019/judged"


def _parse(argv):
    parser = argparse.ArgumentParser(prog="lateint")
    add_evaluate_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_json_to_a_file(irdata, tmp_path):
    run_file = tmp_path / "mine.trec"
    run_file.write_text((irdata / "msmarco-passage-trec-dl-2019" / "runs" / "tasb.top100.trec").read_text())
    out = tmp_path / "out" / "table.json"
    args = _parse(["evaluate", "--dataset", DL19, "bm25", str(run_file), "other=" + str(run_file),
                   "--baseline", "bm25", "--metrics", "nDCG@10,MAP", "--metrics", "R@100",
                   "--format", "json", "--out", str(out)])
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    assert data["runs"] == ["bm25", "mine", "other"]
    assert [m["label"] for m in data["metrics"]] == ["nDCG@10", "MAP", "R@100"]
    assert data["means"]["bm25"]["nDCG@10"] == pytest.approx(0.5058, abs=0.00005)
    assert data["means"]["mine"] == data["means"]["other"]
    assert data["comparisons"]["mine"]["nDCG@10"]["significant"] is True


def test_markdown_to_stdout(irdata, capsys):
    args = _parse(["evaluate", "--dataset", DL19, "bm25", "tasb", "--metrics", "nDCG@10"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("| Run | nDCG@10 |") and "| bm25 | 0.5058 |" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bm25", "--baseline", "tasb"], "baseline 'tasb' is not one of the runs"),
        (["bm26"], "'bm26' is neither a run known"),
        (["bm25", "--metrics", "ERR@10"], "unknown metric"),
    ],
)
def test_bad_input_exits_with_2(irdata, capsys, argv, message):
    args = _parse(["evaluate", "--dataset", DL19, *argv])
    assert args.func(args) == 2
    assert message in capsys.readouterr().err


def test_run_labels(tmp_path):
    existing = tmp_path / "rerank.top100.trec"
    existing.write_text("q Q0 d 1 1.0 t\n")
    assert run_label(str(existing)) == ("rerank", str(existing))
    assert run_label("best=" + str(existing)) == ("best", str(existing))
    assert run_label("bm25") == ("bm25", "bm25")

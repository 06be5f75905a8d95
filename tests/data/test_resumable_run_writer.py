"""The per-query resumable writer: a killed job resumes with nothing lost and nothing repeated."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lateint.data import ResumableRunWriter, read_run
from lateint.errors import CorruptionError, InputError


def _ranking(qid: str) -> dict[str, float]:
    # Distinct, query-dependent scores so that a misplaced line would be noticed.
    return {f"{qid}-d{i}": float(10 * len(qid) - i) for i in range(5)}


QIDS = [f"q{i}" for i in range(1, 8)]


def _expected(qids):
    return {qid: _ranking(qid) for qid in qids}


def test_fresh_run(tmp_path):
    path = tmp_path / "run.trec"
    with ResumableRunWriter(path, tag="rr") as writer:
        assert writer.done == frozenset()
        for qid in writer.pending(QIDS):
            writer.write(qid, _ranking(qid))
    assert read_run(path) == _expected(QIDS)
    assert path.read_text().splitlines()[0] == "q1 Q0 q1-d0 1 20.0 rr"


def test_resume_after_a_partial_block(tmp_path):
    path = tmp_path / "run.trec"
    with ResumableRunWriter(path, tag="rr") as writer:
        for qid in QIDS[:3]:
            writer.write(qid, _ranking(qid))
    # A killed process got half of q4's block onto disk, the last line cut mid-way, and never
    # recorded q4 as complete.
    with open(path, "a", encoding="utf-8") as run:
        run.write("q4 Q0 q4-d0 1 20.0 rr\nq4 Q0 q4-d1 2 19")

    with ResumableRunWriter(path, tag="rr") as writer:
        assert writer.done == {"q1", "q2", "q3"}
        assert writer.dropped_bytes == len("q4 Q0 q4-d0 1 20.0 rr\nq4 Q0 q4-d1 2 19")
        todo = writer.pending(QIDS)
        assert todo == QIDS[3:]
        for qid in todo:
            writer.write(qid, _ranking(qid))

    lines = path.read_text().splitlines()
    assert len(lines) == 5 * len(QIDS)
    assert len(set(lines)) == len(lines)
    assert read_run(path) == _expected(QIDS)


def test_resume_after_a_kill_between_block_and_record(tmp_path):
    # A real process that dies (os._exit, no cleanup) after q3's block is on disk but before q3
    # is recorded as complete.
    path = tmp_path / "run.trec"
    code = textwrap.dedent(f"""
        import os
        from lateint.data import ResumableRunWriter
        writer = ResumableRunWriter({str(path)!r}, tag="rr")
        writer.write("q1", {_ranking("q1")!r})
        writer.write("q2", {_ranking("q2")!r})
        original = writer._sync
        def dying_sync(file):
            original(file)
            if file is writer._run_file:
                os._exit(9)
        writer._sync = dying_sync
        writer.write("q3", {_ranking("q3")!r})
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 9, result.stderr
    assert "q3 Q0" in path.read_text()  # the unconfirmed block did reach the file

    with ResumableRunWriter(path, tag="rr") as writer:
        assert writer.done == {"q1", "q2"}
        assert writer.dropped_bytes > 0
        for qid in writer.pending(QIDS):
            writer.write(qid, _ranking(qid))
    assert read_run(path) == _expected(QIDS)


def test_a_cut_progress_record_is_redone(tmp_path):
    path = tmp_path / "run.trec"
    with ResumableRunWriter(path, tag="rr") as writer:
        for qid in QIDS[:2]:
            writer.write(qid, _ranking(qid))
    progress = tmp_path / "run.trec.progress"
    complete = progress.read_bytes()
    with open(path, "a", encoding="utf-8") as run:
        run.write("".join(f"q3 Q0 {doc} {rank} {score!r} rr\n"
                          for rank, (doc, score) in enumerate(_ranking("q3").items(), start=1)))
    progress.write_bytes(complete + b"q3\t12")  # the record of q3 was cut short

    with ResumableRunWriter(path, tag="rr") as writer:
        assert writer.done == {"q1", "q2"}
        for qid in writer.pending(QIDS):
            writer.write(qid, _ranking(qid))
    assert read_run(path) == _expected(QIDS)
    assert progress.read_text().count("\n") == len(QIDS)


def test_writing_a_query_twice_is_refused(tmp_path):
    path = tmp_path / "run.trec"
    with ResumableRunWriter(path, tag="rr") as writer:
        writer.write("q1", _ranking("q1"))
        with pytest.raises(InputError, match="already complete"):
            writer.write("q1", _ranking("q1"))
    with ResumableRunWriter(path, tag="rr") as writer:
        with pytest.raises(InputError, match="already complete"):
            writer.write("q1", {"other": 1.0})
        with pytest.raises(InputError, match="no documents"):
            writer.write("q2", {})
    assert read_run(path) == _expected(["q1"])


def test_a_second_writer_on_the_same_run_is_refused(tmp_path):
    path = tmp_path / "run.trec"
    with ResumableRunWriter(path, tag="rr"):
        with pytest.raises(InputError, match="another process"):
            ResumableRunWriter(path, tag="rr")


def test_a_run_without_progress_record_is_not_touched(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d 1 1.0 other\n")
    with pytest.raises(CorruptionError, match="no progress file"):
        ResumableRunWriter(path, tag="rr")
    assert path.read_text() == "q1 Q0 d 1 1.0 other\n"


def test_a_run_shortened_behind_the_writers_back(tmp_path):
    path = tmp_path / "run.trec"
    with ResumableRunWriter(path, tag="rr") as writer:
        writer.write("q1", _ranking("q1"))
    os.truncate(path, 10)
    with pytest.raises(CorruptionError, match="changed after it was written"):
        ResumableRunWriter(path, tag="rr")

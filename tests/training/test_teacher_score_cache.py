"""Teacher scores are computed once and reused from their file."""

from __future__ import annotations

import json

import torch

from lateint.ranker import SplitRanker
from lateint.training.teacher import TeacherScores, cached_teacher_scores, teacher_fingerprint


def test_scores_are_cached_and_reused(teacher_model, tiny_groups, tmp_path, monkeypatch):
    teacher = SplitRanker.from_pretrained(teacher_model, max_query_length=12, max_doc_length=24)
    path = tmp_path / "scores.json"
    first = cached_teacher_scores(teacher, tiny_groups, path)
    pairs = {(g.qid, d) for g in tiny_groups for d in g.doc_ids}
    assert first.computed == len(pairs) == len(first)
    g = tiny_groups[0]
    direct = teacher.score([g.query] * len(g), list(g.docs))
    assert torch.allclose(torch.tensor(first.group_scores(g)), direct, atol=1e-4, rtol=1e-4)
    stored = json.loads(path.read_text().splitlines()[0])
    assert stored["fingerprint"] == teacher_fingerprint(teacher)

    def fail(*args, **kwargs):
        raise AssertionError("the teacher scored again")

    monkeypatch.setattr(teacher, "score", fail)
    again = cached_teacher_scores(teacher, tiny_groups, path)
    assert again.computed == 0 and again.scores == first.scores


def test_another_teacher_does_not_reuse_the_file(teacher_model, student_model, tiny_groups, tmp_path):
    path = tmp_path / "scores.json"
    t1 = SplitRanker.from_pretrained(teacher_model, max_query_length=12, max_doc_length=24)
    t2 = SplitRanker.from_pretrained(student_model, max_query_length=12, max_doc_length=24)
    cached_teacher_scores(t1, tiny_groups[:2], path)
    other = cached_teacher_scores(t2, tiny_groups[:2], path)
    assert other.computed == len(other) > 0
    assert TeacherScores.read(path, teacher_fingerprint(t1)).scores == {}
    # Partial reuse: new groups add only their new pairs.
    more = cached_teacher_scores(t2, tiny_groups[:3], path)
    assert more.computed == len({(tiny_groups[2].qid, d) for d in tiny_groups[2].doc_ids})


def test_new_scores_are_appended_not_rewritten(teacher_model, tiny_groups, tmp_path):
    teacher = SplitRanker.from_pretrained(teacher_model, max_query_length=12, max_doc_length=24)
    path = tmp_path / "scores.json"
    cached_teacher_scores(teacher, tiny_groups[:2], path)
    before = path.read_bytes()
    more = cached_teacher_scores(teacher, tiny_groups[:4], path)
    after = path.read_bytes()
    assert after.startswith(before) and len(after) > len(before)  # appended, the old lines untouched
    assert len(after.decode().splitlines()) == 1 + len(more)  # header + one line per pair, no duplicates
    # A writer killed mid-append leaves a cut line: it is ignored and its score recomputed.
    path.write_bytes(after[:-7])
    cut = TeacherScores.read(path, teacher_fingerprint(teacher))
    assert len(cut) == len(more) - 1
    again = cached_teacher_scores(teacher, tiny_groups[:4], path)
    assert again.computed == 1 and again.scores == more.scores
    assert TeacherScores.read(path, teacher_fingerprint(teacher)).scores == more.scores


def test_only_the_writing_process_touches_the_file(teacher_model, tiny_groups, tmp_path):
    teacher = SplitRanker.from_pretrained(teacher_model, max_query_length=12, max_doc_length=24)
    path = tmp_path / "scores.json"
    reader = cached_teacher_scores(teacher, tiny_groups[:2], path, write=False)
    assert reader.computed > 0 and not path.exists()
    assert not list(tmp_path.glob("*.tmp"))

"""The forward pass that keeps every layer's states, for intermediate-layer distillation."""

from __future__ import annotations

import pytest
import torch

from lateint.ranker import SplitRanker
from lateint.training.states import capture_forward, pair_batches

from .conftest import DOC_TEXTS, QUERY_TEXTS


@pytest.mark.parametrize("split,head", [(0, None), (1, None), (2, "twin"), (1, "maxsim")])
def test_captured_scores_equal_the_forward(student_model, split, head):
    ranker = SplitRanker.from_pretrained(student_model, split=split, head=head, max_query_length=12, max_doc_length=24)
    queries = list(QUERY_TEXTS.values())[:4]
    docs = list(DOC_TEXTS.values())[:4]
    q_sides, d_sides = ranker.query_sides(queries), ranker.doc_sides(docs)
    with torch.no_grad():
        expected = ranker(*pair_batches(ranker, q_sides, d_sides))
        captured = capture_forward(ranker, q_sides, d_sides)
    assert torch.allclose(captured.scores, expected, atol=1e-5)
    T = ranker.num_layers
    assert len(captured.hidden) == T + 1 and len(captured.attentions) == T
    S = captured.mask.shape[1]
    assert all(h.shape[:2] == (4, S) for h in captured.hidden)
    assert all(a.shape == (4, 4, S, S) for a in captured.attentions)
    # Lower layers never let one side attend to the other.
    Sq = max(len(s) for s in q_sides)
    for a in captured.attentions[:split]:
        assert (a[:, :, :Sq, Sq:] <= -1e30).all() and (a[:, :, Sq:, :Sq] <= -1e30).all()


def test_split_student_and_unsplit_teacher_align_token_by_token(student_model):
    # The same weights at split 0 and split 1: the embeddings (index 0) coincide token by token
    # except for document positions (packed vs offset), and the query side is identical up to L.
    teacher = SplitRanker.from_pretrained(student_model, split=0, max_query_length=12, max_doc_length=24)
    student = SplitRanker.from_pretrained(student_model, split=1, max_query_length=12, max_doc_length=24)
    queries, docs = ["what causes rain"], ["Rain forms when water vapour condenses."]
    q_sides, d_sides = student.query_sides(queries), student.doc_sides(docs)
    with torch.no_grad():
        s = capture_forward(student, q_sides, d_sides)
        t = capture_forward(teacher, q_sides, d_sides)
    assert torch.equal(s.mask, t.mask)
    Sq = len(q_sides[0])
    assert torch.allclose(s.hidden[0][:, :Sq], t.hidden[0][:, :Sq])
    assert s.hidden[-1].shape == t.hidden[-1].shape

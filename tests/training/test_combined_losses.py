"""The training objective (Simplified TinyBERT's and DeFormer's sums of terms) and DeFormer's upper-layer mimicry."""

from __future__ import annotations

import math

import pytest
import torch

from lateint.errors import ConfigError, InputError
from lateint.training.config import LossSettings
from lateint.training.losses import (
    IntermediateDistillation,
    combine_terms,
    hidden_mse,
    listwise_ce,
    listwise_kl,
    pointwise_bce,
    score_mse,
    upper_layer_mimicry,
)


def _group(seed: int, batch: int = 2, n: int = 3, seq: int = 4):
    """Scores of B groups of n candidates and the states of the B * n scored sequences."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(batch, n, generator=g, requires_grad=True)
    t = torch.randn(batch, n, generator=g)
    rows = batch * n
    s_hidden = [torch.randn(rows, seq, 4, generator=g, requires_grad=True) for _ in range(3)]
    t_hidden = [torch.randn(rows, seq, 6, generator=g) for _ in range(5)]
    s_att = [torch.randn(rows, 2, seq, seq, generator=g) for _ in range(2)]
    t_att = [torch.randn(rows, 2, seq, seq, generator=g) for _ in range(4)]
    return s, t, s_hidden, t_hidden, s_att, t_att


def _settings(**kw):
    return LossSettings(**{"hard": "listwise_ce", "soft": None, **kw})


def _first_column(s):
    labels = torch.zeros_like(s)
    labels[:, 0] = 1
    return labels


def test_simplified_tinybert_combines_terms_in_one_step():
    s, t, s_hidden, t_hidden, s_att, t_att = _group(0)
    inter = IntermediateDistillation(4, 6, 2, 4)
    settings = _settings(soft="kl", temperature=2.0, intermediate=True, intermediate_weight=0.5,
                         soft_weight=2.0, hard_weight=3.0)
    total, terms = combine_terms(settings, s, _first_column(s), None, t, intermediate=inter,
                                 student_hidden=s_hidden, teacher_hidden=t_hidden,
                                 student_attentions=s_att, teacher_attentions=t_att)
    parts = inter(s_hidden, t_hidden, s_att, t_att)
    soft = listwise_kl(s, t, temperature=2.0)
    hard = listwise_ce(s)
    intermediate = parts["embedding"] + parts["hidden"] + parts["attention"]
    assert torch.allclose(terms["soft"], soft) and torch.allclose(terms["hard"], hard)
    assert torch.allclose(terms["intermediate"], intermediate)
    assert set(terms) == {"soft", "hard", "intermediate", "embedding", "hidden", "attention"}
    assert torch.allclose(total, 0.5 * intermediate + 2.0 * soft + 3.0 * hard)
    total.backward()
    assert s.grad is not None and all(h.grad is not None for h in s_hidden)
    assert inter.hidden_projection.weight.grad is not None


def test_simplified_tinybert_by_hand_without_intermediate():
    s = torch.tensor([[2.0, 0.0]])
    t = torch.tensor([[0.0, 0.0]])
    total, terms = combine_terms(_settings(soft="kl"), s, _first_column(s), None, t)
    # hard: log(1 + e^-2) = 0.126928
    # soft: p = (1/2, 1/2), q = (e^2, 1) / (e^2 + 1): KL = -1/2 log(4 q0 q1) = -1/2 log(4 e^2 / (e^2 + 1)^2)
    q0 = math.exp(2) / (math.exp(2) + 1)
    soft = -0.5 * math.log(4 * q0 * (1 - q0))
    assert abs(terms["hard"].item() - math.log1p(math.exp(-2))) < 1e-5
    assert abs(terms["soft"].item() - soft) < 1e-5
    assert abs(total.item() - (soft + math.log1p(math.exp(-2)))) < 1e-5
    assert "intermediate" not in terms


def test_simplified_tinybert_selectable_soft_and_hard():
    s, t, *_ = _group(1)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    total, terms = combine_terms(_settings(soft="mse", hard="bce"), s, labels, mask, t)
    assert torch.allclose(terms["soft"], score_mse(s, t, mask))
    assert torch.allclose(terms["hard"], pointwise_bce(s, labels, mask))
    assert torch.allclose(total, terms["soft"] + terms["hard"])


def test_hard_scale_multiplies_the_scores_of_the_hard_term_only():
    s, t, *_ = _group(3)
    total, terms = combine_terms(_settings(soft="mse"), s, _first_column(s), None, t, hard_scale=20.0)
    assert torch.allclose(terms["hard"], listwise_ce(s * 20.0))
    assert torch.allclose(terms["soft"], score_mse(s, t))


def test_simplified_tinybert_teacher_gets_no_gradient():
    s, t, *_ = _group(2)
    t.requires_grad_()
    total, _ = combine_terms(_settings(soft="kl"), s, _first_column(s), None, t)
    total.backward()
    assert s.grad is not None and t.grad is None


def test_objective_errors():
    s = torch.zeros(1, 2)
    with pytest.raises(ConfigError, match="weight 0"):
        combine_terms(_settings(hard_weight=0.0), s, _first_column(s))
    with pytest.raises(InputError, match="teacher scores"):
        combine_terms(_settings(soft="kl", hard=None), s, _first_column(s))
    with pytest.raises(InputError, match="hidden states"):
        combine_terms(_settings(intermediate=True), s, _first_column(s))
    with pytest.raises(InputError, match="IntermediateDistillation"):
        combine_terms(_settings(intermediate=True), s, _first_column(s), student_hidden=[s], teacher_hidden=[s])


# ---------------------------------------------------------------- DeFormer
def test_upper_layer_mimicry_by_hand_uses_only_upper_layers():
    zeros = [torch.zeros(1, 2, 2) for _ in range(4)]  # T = 3: embedding + 3 layers
    teacher = [torch.zeros(1, 2, 2), torch.full((1, 2, 2), 9.0), torch.ones(1, 2, 2), torch.full((1, 2, 2), 2.0)]
    # split 1: layers 2 and 3 compare; layer 1 (the lower, separate one) does not: 1 + 4 = 5
    assert upper_layer_mimicry(zeros, teacher, split=1).item() == pytest.approx(5.0)
    # split 0 adds layer 1: 81 + 1 + 4
    assert upper_layer_mimicry(zeros, teacher, split=0).item() == pytest.approx(86.0)
    # split T: no joint layer
    assert upper_layer_mimicry(zeros, teacher, split=3).item() == 0.0


def test_upper_layer_mimicry_masks_padding_and_detaches_teacher():
    torch.manual_seed(3)
    student = [torch.randn(2, 5, 4, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(2, 5, 4, requires_grad=True) for _ in range(3)]
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    loss = upper_layer_mimicry(student, teacher, 1, mask)
    assert torch.allclose(loss, hidden_mse(student[2], teacher[2], mask))
    loss.backward()
    assert student[2].grad is not None and (student[2].grad[0, 3:] == 0).all()
    assert all(t.grad is None for t in teacher)


def test_upper_layer_mimicry_errors():
    states = [torch.zeros(1, 2, 2) for _ in range(3)]
    with pytest.raises(ConfigError, match=r"\[0, 2\]"):
        upper_layer_mimicry(states, states, 3)
    with pytest.raises(InputError, match="3 hidden states.*2"):
        upper_layer_mimicry(states, states[:2], 1)


def test_deformer_objective_combines_task_kd_and_mimicry():
    torch.manual_seed(4)
    s = torch.randn(2, 3, requires_grad=True)
    t = torch.randn(2, 3)
    student = [torch.randn(6, 4, 8, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(6, 4, 8) for _ in range(3)]
    settings = _settings(soft="kl", temperature=2.0, mimicry=True, hard_weight=0.5, soft_weight=2.0,
                         mimicry_weight=3.0)
    total, terms = combine_terms(settings, s, _first_column(s), None, t, student_hidden=student,
                                 teacher_hidden=teacher, split=1)
    expected = 0.5 * listwise_ce(s) + 2.0 * listwise_kl(s, t, temperature=2.0) \
        + 3.0 * upper_layer_mimicry(student, teacher, 1)
    assert torch.allclose(total, expected)
    assert set(terms) == {"hard", "soft", "mimicry"}
    total.backward()
    assert s.grad is not None and student[2].grad is not None
    # the lower (separate) layer gets no mimicry gradient
    assert student[1].grad is None

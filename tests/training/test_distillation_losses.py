"""Score-distillation losses on hand-checkable inputs, against torch references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lateint.errors import InputError
from lateint.training.losses import listwise_kl, margin_mse, score_mse


def close(value: torch.Tensor, expected: float, tol: float = 1e-5) -> bool:
    return abs(value.item() - expected) < tol


def test_score_mse_by_hand():
    # ((1 - 0)^2 + (2 - 4)^2) / 2 = 2.5
    assert close(score_mse(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])), 2.5)
    # masking the second candidate leaves (1 - 0)^2 = 1
    assert close(score_mse(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]]), torch.tensor([[1, 0]])), 1.0)


def test_margin_mse_by_hand():
    student = torch.tensor([[3.0, 1.0, 0.0]])
    teacher = torch.tensor([[2.0, 1.0, 1.0]])
    # student margins (3-1, 3-0) = (2, 3); teacher margins (1, 1); ((2-1)^2 + (3-1)^2) / 2 = 2.5
    assert close(margin_mse(student, teacher), 2.5)
    # padding the last negative leaves (2 - 1)^2 = 1
    assert close(margin_mse(student, teacher, torch.tensor([[1, 1, 0]])), 1.0)


def test_margin_mse_matches_triple_formula():
    torch.manual_seed(0)
    s, t = torch.randn(5, 2), torch.randn(5, 2)
    ref = F.mse_loss(s[:, 0] - s[:, 1], t[:, 0] - t[:, 1])
    assert torch.allclose(margin_mse(s, t), ref)


def test_margin_mse_ignores_offsets_and_needs_a_negative():
    torch.manual_seed(1)
    s = torch.randn(3, 4)
    assert margin_mse(s, s + 7.0).item() < 1e-10
    with pytest.raises(InputError, match=r"\(3, 1\)"):
        margin_mse(torch.zeros(3, 1), torch.zeros(3, 1))


def test_kl_by_hand():
    # teacher uniform p = (1/2, 1/2); student q = softmax(ln 3, 0) = (3/4, 1/4)
    # KL = 1/2 ln(2/3) + 1/2 ln(2) = 1/2 ln(4/3) = 0.143841
    loss = listwise_kl(torch.tensor([[math.log(3), 0.0]]), torch.tensor([[0.0, 0.0]]))
    assert close(loss, 0.5 * math.log(4 / 3))


@pytest.mark.parametrize("tau", [1.0, 2.0, 0.5])
def test_kl_matches_torch_kl_div_times_tau_squared(tau):
    torch.manual_seed(2)
    s, t = torch.randn(4, 6), torch.randn(4, 6)
    ref = F.kl_div(F.log_softmax(s / tau, 1), F.log_softmax(t / tau, 1), log_target=True, reduction="batchmean")
    assert torch.allclose(listwise_kl(s, t, temperature=tau), ref * tau**2, atol=1e-6)


def test_kl_is_zero_for_equal_scores_and_rejects_bad_temperature():
    s = torch.randn(2, 3)
    assert listwise_kl(s, s.clone()).abs().item() < 1e-6
    with pytest.raises(InputError, match="temperature"):
        listwise_kl(s, s, temperature=0.0)


@pytest.mark.parametrize("loss", [score_mse, margin_mse, listwise_kl])
def test_padded_candidates_change_nothing(loss):
    torch.manual_seed(3)
    s, t = torch.randn(2, 3), torch.randn(2, 3)
    garbage = torch.tensor([[float("nan")], [float("inf")]])
    s_pad = torch.cat([s, garbage], 1).requires_grad_()
    t_pad = torch.cat([t, -garbage], 1)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]])
    padded = loss(s_pad, t_pad, mask)
    assert torch.allclose(padded, loss(s, t), atol=1e-6)
    padded.backward()
    assert torch.isfinite(s_pad.grad).all() and (s_pad.grad[:, 3] == 0).all()


def test_kl_masked_row_renormalises_over_valid_candidates():
    s = torch.tensor([[1.0, 0.0, 5.0]])
    t = torch.tensor([[0.0, 2.0, -3.0]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(listwise_kl(s, t, mask), listwise_kl(s[:, :2], t[:, :2]))


@pytest.mark.parametrize("loss", [score_mse, margin_mse, listwise_kl])
def test_gradient_reaches_student_only(loss):
    torch.manual_seed(4)
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("loss", [score_mse, margin_mse, listwise_kl])
def test_shape_mismatch_names_both_shapes(loss):
    with pytest.raises(InputError, match=r"\(2, 3\).*\(2, 4\)"):
        loss(torch.zeros(2, 3), torch.zeros(2, 4))

"""Hard-label ranking losses on hand-checkable inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lateint.errors import InputError
from lateint.training.losses import hinge_loss, listwise_ce, pointwise_bce, ranknet_loss


def close(value: torch.Tensor, expected: float, tol: float = 1e-5) -> bool:
    return abs(value.item() - expected) < tol


# ---------------------------------------------------------------- pointwise BCE
def test_bce_by_hand():
    scores = torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([[1.0, 0.0]])
    # -log σ(0) = log 2 = 0.693147; -log(1 - σ(2)) = log(1 + e^2) = 2.126928; mean = 1.410038
    assert close(pointwise_bce(scores, labels), (math.log(2) + math.log1p(math.e**2)) / 2)
    assert close(pointwise_bce(scores, labels), 1.410038)


def test_bce_matches_torch_any_shape():
    torch.manual_seed(0)
    scores = torch.randn(3, 4, 2)
    labels = torch.randint(0, 2, (3, 4, 2)).float()
    ref = F.binary_cross_entropy_with_logits(scores, labels)
    assert torch.allclose(pointwise_bce(scores, labels), ref)


def test_bce_mask_ignores_padding():
    scores = torch.tensor([[0.0, 2.0, float("nan")]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    mask = torch.tensor([[1, 1, 0]])
    loss = pointwise_bce(scores, labels, mask)
    assert close(loss, 1.410038)
    loss.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[0, 2] == 0


def test_bce_rejects_bad_labels_and_shapes():
    with pytest.raises(InputError, match=r"\(1, 2\).*\(1, 3\)"):
        pointwise_bce(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        pointwise_bce(torch.zeros(1, 2), torch.tensor([[2.0, 0.0]]))


# ---------------------------------------------------------------- pairwise
def test_ranknet_by_hand():
    scores = torch.tensor([[2.0, 0.0, 1.0]])
    # pairs (pos, neg): softplus(0 - 2) = log(1 + e^-2) = 0.126928; softplus(1 - 2) = 0.313262
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))) / 2
    assert close(ranknet_loss(scores), expected)
    assert close(ranknet_loss(scores), 0.220095)


def test_ranknet_graded_labels_use_every_ordered_pair():
    scores = torch.tensor([[0.0, 1.0, 3.0]])
    labels = torch.tensor([[2.0, 1.0, 0.0]])
    # pairs (0,1): softplus(1) = 1.313262; (0,2): softplus(3) = 3.048587; (1,2): softplus(2) = 2.126928
    assert close(ranknet_loss(scores, labels), (1.313262 + 3.048587 + 2.126928) / 3)


def test_ranknet_matches_reference_formula():
    torch.manual_seed(1)
    scores = torch.randn(4, 5)
    ref = F.softplus(scores[:, 1:] - scores[:, :1]).mean()
    assert torch.allclose(ranknet_loss(scores), ref)


def test_hinge_by_hand_and_margin():
    scores = torch.tensor([[2.0, 0.0, 1.5]])
    # margin 1: max(0, 1 - 2) = 0, max(0, 1 - 0.5) = 0.5 -> mean 0.25
    assert close(hinge_loss(scores), 0.25)
    # margin 3: 3 - 2 = 1, 3 - 0.5 = 2.5 -> mean 1.75
    assert close(hinge_loss(scores, margin=3.0), 1.75)


def test_hinge_matches_margin_ranking_loss():
    torch.manual_seed(2)
    scores = torch.randn(6, 2)
    ref = torch.nn.MarginRankingLoss(margin=0.7)(scores[:, 0], scores[:, 1], torch.ones(6))
    assert torch.allclose(hinge_loss(scores, margin=0.7), ref)


@pytest.mark.parametrize("loss", [ranknet_loss, hinge_loss])
def test_pairwise_mask_drops_padded_candidates(loss):
    scores = torch.tensor([[2.0, 0.0, 1.0, float("inf")]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0]])
    padded = loss(scores, None, mask)
    assert torch.allclose(padded, loss(scores[:, :3].detach()))
    padded.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[0, 3] == 0


def test_pairwise_without_pairs_is_zero_with_graph():
    scores = torch.tensor([[1.0, 2.0]], requires_grad=True)
    loss = ranknet_loss(scores, torch.tensor([[1.0, 1.0]]))
    assert loss.item() == 0
    loss.backward()
    assert torch.equal(scores.grad, torch.zeros(1, 2))


def test_pairwise_needs_2d_scores():
    with pytest.raises(InputError, match=r"\[B, n\].*\(3,\)"):
        ranknet_loss(torch.zeros(3))


# ---------------------------------------------------------------- listwise
def test_listwise_ce_by_hand():
    # -2 + log(e^2 + e^0) = log(1 + e^-2) = 0.126928
    assert close(listwise_ce(torch.tensor([[2.0, 0.0]])), 0.126928)
    # equal scores over 3 candidates: log 3 = 1.098612
    assert close(listwise_ce(torch.tensor([[1.0, 1.0, 1.0]])), math.log(3))


def test_listwise_ce_matches_cross_entropy():
    torch.manual_seed(3)
    scores = torch.randn(4, 6)
    ref = F.cross_entropy(scores, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(listwise_ce(scores), ref)


def test_in_batch_negatives_with_index_targets():
    scores = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    # row 0: log(1 + e^-3) = 0.048587; row 1: log 2 = 0.693147; mean 0.370867
    loss = listwise_ce(scores, torch.arange(2))
    assert close(loss, (math.log1p(math.exp(-3)) + math.log(2)) / 2)
    assert torch.allclose(loss, F.cross_entropy(scores, torch.arange(2)))


def test_listwise_ce_graded_labels_share_mass():
    scores = torch.tensor([[0.0, 0.0, math.log(2)]])
    # softmax = (1, 1, 2) / 4; target (1/2, 1/2, 0): -(1/2 log 1/4 + 1/2 log 1/4) = log 4
    assert close(listwise_ce(scores, torch.tensor([[1.0, 1.0, 0.0]])), math.log(4))


def test_listwise_ce_skips_rows_without_positive():
    scores = torch.tensor([[2.0, 0.0], [5.0, -5.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert close(listwise_ce(scores, labels), 0.126928)


def test_listwise_ce_mask_ignores_padding_and_keeps_gradients_finite():
    scores = torch.tensor([[2.0, 0.0, 99.0], [1.0, float("-inf"), float("nan")]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    loss = listwise_ce(scores, None, mask)
    # row 0: 0.126928 as without the padded candidate; row 1: a lone positive costs log 1 = 0
    assert close(loss, 0.126928 / 2)
    loss.backward()
    assert torch.isfinite(scores.grad).all()
    assert scores.grad[0, 2] == 0 and scores.grad[1, 1] == 0 and scores.grad[1, 2] == 0


def test_listwise_ce_rejects_bad_targets():
    scores = torch.zeros(2, 3)
    with pytest.raises(InputError, match=r"\(3,\).*\(2, 3\)"):
        listwise_ce(scores, torch.arange(3))
    with pytest.raises(InputError, match="lie in"):
        listwise_ce(scores, torch.tensor([0, 3]))
    with pytest.raises(InputError, match="masked"):
        listwise_ce(scores, torch.tensor([0, 2]), torch.tensor([[1, 1, 1], [1, 1, 0]]))
    with pytest.raises(InputError, match=r"\(2, 3\).*\(2, 4\)"):
        listwise_ce(scores, torch.zeros(2, 4))
    with pytest.raises(InputError, match=r"mask.*\(2, 2\)"):
        listwise_ce(scores, None, torch.ones(2, 2))

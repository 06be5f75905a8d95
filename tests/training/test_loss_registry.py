"""Losses by name, with one uniform signature."""

from __future__ import annotations

import pytest
import torch

from lateint.errors import ConfigError, InputError
from lateint.training.losses import (
    LOSSES,
    get_loss,
    hinge_loss,
    listwise_ce,
    listwise_kl,
    loss_names,
    margin_mse,
    pointwise_bce,
    ranknet_loss,
    score_mse,
)

EXPECTED = {
    "bce": pointwise_bce,
    "ranknet": ranknet_loss,
    "hinge": hinge_loss,
    "listwise_ce": listwise_ce,
    "mse": score_mse,
    "margin_mse": margin_mse,
    "kl": listwise_kl,
}


def test_names_and_mapping():
    assert sorted(loss_names()) == sorted(EXPECTED)
    assert dict(LOSSES) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_uniform_signature_with_and_without_mask(name):
    torch.manual_seed(0)
    scores = torch.randn(3, 4, requires_grad=True)
    target = torch.zeros(3, 4)
    target[:, 0] = 1
    if name in ("mse", "margin_mse", "kl"):
        target = torch.randn(3, 4)
    loss = get_loss(name)
    value = loss(scores, target)
    assert value.dim() == 0 and torch.isfinite(value)
    assert torch.allclose(value, EXPECTED[name](scores, target))
    mask = torch.ones(3, 4)
    mask[:, 3] = 0
    padded = loss(scores, target, mask)
    assert torch.allclose(padded, loss(scores[:, :3], target[:, :3]))
    padded.backward()
    assert scores.grad is not None


def test_options_are_bound():
    scores = torch.tensor([[2.0, 0.0, 1.5]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    # margin 3: (3 - 2 + 3 - 0.5) / 2 = 1.75
    assert get_loss("hinge", margin=3.0)(scores, labels).item() == pytest.approx(1.75)
    teacher = torch.tensor([[0.0, 1.0, 2.0]])
    kl = get_loss("kl", temperature=2.0)
    assert torch.allclose(kl(scores, teacher), listwise_kl(scores, teacher, temperature=2.0))
    assert kl.__name__ == "kl"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        get_loss("lambdarank")
    message = str(err.value)
    assert "lambdarank" in message
    assert all(name in message for name in EXPECTED)


def test_bad_options():
    with pytest.raises(ConfigError, match="margin"):
        get_loss("ranknet", margin=1.0)
    with pytest.raises(ConfigError, match="accepts: temperature"):
        get_loss("kl", tau=2.0)
    with pytest.raises(ConfigError, match="positive"):
        get_loss("kl", temperature=-1.0)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shape_mismatch_is_input_error_naming_shapes(name):
    with pytest.raises(InputError, match=r"\(2, 3\).*\(2, 5\)"):
        get_loss(name)(torch.zeros(2, 3), torch.zeros(2, 5))

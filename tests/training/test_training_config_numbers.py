"""Optimizer, loss and data numbers of a training config are checked: finite, in range, named in a
one-line error (a NaN passes every comparison, so it used to slip through)."""

from __future__ import annotations

import pytest

from lateint.errors import ConfigError
from lateint.training.config import TrainConfig

NAN, INF = float("nan"), float("inf")


def config(**tables):
    data = {"model": "m", "steps": 2, "batch_size": 2}
    data.update(tables)
    return data


BAD = [
    ("optim", "betas", [0.9], "optim.betas"),
    ("optim", "betas", [0.9, 0.999, 0.5], "optim.betas"),
    ("optim", "betas", [1.0, 0.999], r"optim.betas\[0\]"),
    ("optim", "betas", [0.9, -0.1], r"optim.betas\[1\]"),
    ("optim", "betas", [0.9, NAN], r"optim.betas\[1\]"),
    ("optim", "eps", 0.0, "optim.eps"),
    ("optim", "eps", -1e-8, "optim.eps"),
    ("optim", "eps", NAN, "optim.eps"),
    ("optim", "weight_decay", -0.01, "optim.weight_decay"),
    ("optim", "weight_decay", NAN, "optim.weight_decay"),
    ("optim", "head_lr", 0.0, "optim.head_lr"),
    ("optim", "head_lr", -1e-3, "optim.head_lr"),
    ("optim", "head_lr", INF, "optim.head_lr"),
    ("optim", "max_grad_norm", NAN, "optim.max_grad_norm"),
    ("optim", "max_grad_norm", INF, "optim.max_grad_norm"),
    ("optim", "lr", NAN, "optim.lr"),
    ("optim", "warmup_ratio", NAN, "optim.warmup_ratio"),
    ("loss", "hard_scale", -20.0, "loss.hard_scale"),
    ("loss", "hard_scale", 0.0, "loss.hard_scale"),
    ("loss", "temperature", -1.0, "loss.temperature"),
    ("loss", "temperature", NAN, "loss.temperature"),
    ("loss", "hard_weight", NAN, "loss.hard_weight"),
    ("loss", "soft_weight", -1.0, "loss.soft_weight"),
    ("loss", "hinge_margin", NAN, "loss.hinge_margin"),
    ("data", "max_queries", -1, "data.max_queries"),
    ("data", "max_positives", -2, "data.max_positives"),
    ("validation", "holdout", NAN, "validation.holdout"),
]


@pytest.mark.parametrize("table, key, value, name", BAD, ids=[f"{t}.{k}={v}" for t, k, v, _ in BAD])
def test_bad_numbers_are_refused_by_name(table, key, value, name):
    with pytest.raises(ConfigError, match=name) as info:
        TrainConfig.from_dict(config(**{table: {key: value}}))
    assert "\n" not in str(info.value)


def test_nan_max_grad_norm_in_toml_is_refused_by_name(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('model = "m"\nsteps = 2\n[optim]\nmax_grad_norm = nan\n')
    with pytest.raises(ConfigError, match="optim.max_grad_norm=nan"):
        TrainConfig.load(path)


@pytest.mark.parametrize("table, key, value", [("optim", "betas", [0.0, 0.5]), ("optim", "eps", 1e-6),
                                               ("optim", "weight_decay", 0.0), ("optim", "head_lr", 1e-3),
                                               ("optim", "max_grad_norm", 0.0), ("loss", "hard_scale", 20.0),
                                               ("data", "max_queries", 0), ("loss", "hinge_margin", 0.0)])
def test_good_numbers_pass(table, key, value):
    assert getattr(getattr(TrainConfig.from_dict(config(**{table: {key: value}})), table), key) == value

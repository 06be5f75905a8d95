"""Switching a model to evaluation mode for one call, and back."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Put every submodule of ``model`` in evaluation mode for the block, then give back exactly
    the submodules that were training their mode.

    Only the modules that were training are touched: ``model.eval()`` and ``model.train()``
    visit every module through ``__setattr__``, which cost more than a fast re-ranking's
    arithmetic, and a blanket ``train(was_training)`` would also change submodules a caller had
    set on their own.
    """
    training = [m for m in model.modules() if m.training]
    for m in training:
        m.training = False
    try:
        yield
    finally:
        for m in training:
            m.training = True

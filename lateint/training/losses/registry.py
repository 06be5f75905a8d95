"""Score losses by name, all with one signature.

Every registered loss is called as ``loss(student_scores, target, mask=None) -> scalar`` with
``student_scores`` ``[B, n]``, ``target`` ``[B, n]`` (hard labels for the ranking losses, the
teacher's scores for the distillation losses) and an optional ``[B, n]`` mask of real candidates.
Configuration files and the command line name losses with these keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import torch

from lateint.errors import ConfigError
from lateint.training.losses.distillation import listwise_kl, margin_mse, score_mse
from lateint.training.losses.ranking import hinge_loss, listwise_ce, pointwise_bce, ranknet_loss

__all__ = ["HARD_LABEL_LOSSES", "LOSSES", "LossFn", "SOFT_LABEL_LOSSES", "get_loss", "loss_names"]


class LossFn(Protocol):
    """``(student_scores [B, n], labels_or_teacher [B, n], mask=None) -> scalar``."""

    def __call__(
        self, student_scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor: ...


#: Losses whose target is a relevance label per candidate.
HARD_LABEL_LOSSES = ("bce", "ranknet", "hinge", "listwise_ce")
#: Losses whose target is a teacher's score per candidate.
SOFT_LABEL_LOSSES = ("mse", "margin_mse", "kl")

_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "bce": pointwise_bce,
    "ranknet": ranknet_loss,
    "hinge": hinge_loss,
    "listwise_ce": listwise_ce,
    "mse": score_mse,
    "margin_mse": margin_mse,
    "kl": listwise_kl,
}
# Keyword options a loss accepts through get_loss(name, **options).
_OPTIONS: dict[str, tuple[str, ...]] = {"hinge": ("margin",), "kl": ("temperature",)}

#: Name -> loss function with its default options (read-only).
LOSSES: Mapping[str, LossFn] = MappingProxyType(_FUNCTIONS)


def loss_names() -> list[str]:
    """The registered names, hard-label losses first."""
    return list(HARD_LABEL_LOSSES + SOFT_LABEL_LOSSES)


def get_loss(name: str, **options: Any) -> LossFn:
    """The loss registered as ``name``, with ``options`` bound.

    Args:
        name: one of :func:`loss_names` (``bce``, ``ranknet``, ``hinge``, ``listwise_ce``, ``mse``,
            ``margin_mse``, ``kl``).
        **options: ``margin`` for ``hinge``, ``temperature`` for ``kl``.

    Returns:
        A callable ``(student_scores, target, mask=None) -> scalar``.

    Raises:
        ConfigError: unknown name, an option the loss does not take, or a non-positive temperature.
    """
    if name not in _FUNCTIONS:
        raise ConfigError(f"unknown loss {name!r}; valid names are {', '.join(loss_names())}")
    allowed = _OPTIONS.get(name, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise ConfigError(f"loss {name!r} takes no option {', '.join(unknown)}; it accepts: {accepted}")
    if "temperature" in options and not float(options["temperature"]) > 0:
        raise ConfigError(f"the temperature must be positive, got {options['temperature']}")
    if "margin" in options:
        options["margin"] = float(options["margin"])
    fn = _FUNCTIONS[name]
    if not options:
        return fn

    def loss(
        student_scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return fn(student_scores, target, mask, **options)

    loss.__name__ = loss.__qualname__ = name
    loss.__doc__ = fn.__doc__
    return loss

"""Scoring heads: ``cls`` (monoBERT), ``twin`` (TwinBERT), ``maxsim`` (ColBERT), ``dipair`` (DiPair)."""

from __future__ import annotations


from lateint.config import HeadSettings
from lateint.modeling.heads.base import Head, PairHead, SideRep
from lateint.modeling.heads.cls import ClsHead
from lateint.modeling.heads.dipair import DiPairHead
from lateint.modeling.heads.maxsim import MaxSimHead
from lateint.modeling.heads.twin import TwinHead

__all__ = ["ClsHead", "DiPairHead", "Head", "MaxSimHead", "PairHead", "SideRep", "TwinHead", "build_head"]


def build_head(settings: HeadSettings, hidden_size: int, dropout: float = 0.1, **cls_options) -> Head:
    """A freshly initialised head for ``settings`` (weights drawn from the current torch seed);
    ``cls_options`` are the family's :class:`ClsHead` options (pooling, norm)."""
    if settings.name == "cls":
        return ClsHead(hidden_size, settings.pooler_activation, dropout, **cls_options)
    if settings.name == "twin":
        return TwinHead(hidden_size, settings.pooling, settings.crossing)
    if settings.name == "maxsim":
        return MaxSimHead(hidden_size, settings.maxsim_dim)
    return DiPairHead(
        hidden_size, settings.dipair_tokens, settings.dipair_dim, settings.dipair_layers, settings.dipair_heads, dropout
    )

"""Pooling a side's token states into one vector."""

from __future__ import annotations

import torch
from torch import nn


class Pooler(nn.Module):
    """``cls`` (first token), ``mean`` (over real tokens, as sentence-transformers does) or
    ``weighted`` (TwinBERT's learned weighted average: a softmax over real tokens of a learned
    linear score of each state).

    The weighted scorer starts at zero, so an untrained weighted pooler equals mean pooling.
    """

    def __init__(self, mode: str, hidden_size: int):
        super().__init__()
        self.mode = mode
        self.scorer = None
        if mode == "weighted":
            self.scorer = nn.Linear(hidden_size, 1)
            nn.init.zeros_(self.scorer.weight)
            nn.init.zeros_(self.scorer.bias)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``states`` ``[B, S, H]``, ``mask`` ``[B, S]`` -> ``[B, H]``."""
        if self.mode == "cls":
            return states[:, 0]
        if self.mode == "mean":
            m = mask.unsqueeze(-1).to(states.dtype)
            return (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        # the softmax in fp32: under bf16 autocast the scorer's logits are bf16, which cannot hold fp32's minimum
        logits = self.scorer(states).squeeze(-1).float().masked_fill(~mask, torch.finfo(torch.float32).min)
        weights = logits.softmax(dim=-1).unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(dim=1)

"""ColBERT's late interaction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lateint.modeling.heads.base import PairHead, SideRep


class MaxSimHead(PairHead):
    """Per-token linear projection to ``dim`` (no bias, as ColBERT), L2 normalisation, and the sum
    over query tokens of the maximum similarity with any document token.

    Unlike ColBERT, queries are not padded with [MASK] tokens and document punctuation is kept: the
    head scores exactly the tokens the sides hold.
    """

    def __init__(self, hidden_size: int, dim: int = 128):
        super().__init__()
        self.proj = nn.Linear(hidden_size, dim, bias=False)

    def represent(self, states: torch.Tensor, mask: torch.Tensor, side: str) -> SideRep:
        vecs = F.normalize(self.proj(states), p=2, dim=-1) * mask.unsqueeze(-1).to(states.dtype)
        return SideRep(vecs, mask)

    def combine(self, query: SideRep, doc: SideRep) -> torch.Tensor:
        sim = torch.einsum("bqd,bkd->bqk", query.values, doc.values)
        sim = sim.masked_fill(~doc.mask[:, None, :], torch.finfo(sim.dtype).min)
        best = sim.max(dim=-1).values * query.mask.to(sim.dtype)
        return best.sum(dim=-1)

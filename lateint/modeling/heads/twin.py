"""TwinBERT's head: pool each side, then cross the two vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lateint.modeling.heads.base import PairHead, SideRep
from lateint.modeling.heads.pooling import Pooler


class ResidualCrossing(nn.Module):
    """TwinBERT's residual crossing network: ``x = [q; d]``, ``y = ReLU(W x + b) + x``, and a
    logistic-regression layer on ``y`` (we return its logit)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.fc = nn.Linear(2 * hidden_size, 2 * hidden_size)
        self.out = nn.Linear(2 * hidden_size, 1)

    def forward(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        x = torch.cat([q, d], dim=-1)
        return self.out(torch.relu(self.fc(x)) + x).squeeze(-1)


class TwinHead(PairHead):
    """Pooling (``cls``/``mean``/``weighted``) and crossing (``cosine``/``dot``/``residual``).

    With ``cosine`` the stored document vector is L2-normalised, so scoring is a dot product.
    """

    def __init__(self, hidden_size: int, pooling: str = "mean", crossing: str = "cosine"):
        super().__init__()
        self.pooler = Pooler(pooling, hidden_size)
        self.crossing = crossing
        self.residual = ResidualCrossing(hidden_size) if crossing == "residual" else None

    def represent(self, states: torch.Tensor, mask: torch.Tensor, side: str) -> SideRep:
        vec = self.pooler(states, mask)
        if self.crossing == "cosine":
            vec = F.normalize(vec, p=2, dim=-1)
        return SideRep(vec)

    def combine(self, query: SideRep, doc: SideRep) -> torch.Tensor:
        if self.residual is not None:
            return self.residual(query.values, doc.values)
        return (query.values * doc.values).sum(dim=-1)

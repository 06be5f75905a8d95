"""DiPair's head: a light transformer over the first k output tokens of each side."""

from __future__ import annotations

import torch
from torch import nn

from lateint.modeling.heads.base import PairHead, SideRep


class DiPairHead(PairHead):
    """Keep the first ``k`` output tokens of each side, project them to ``dim``, add a learned
    segment and position embedding, run ``layers`` transformer layers over the concatenation and
    score the first token with a linear layer."""

    def __init__(self, hidden_size: int, k: int = 8, dim: int = 128, layers: int = 1, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.k = k
        self.proj = nn.Linear(hidden_size, dim)
        self.segment = nn.Embedding(2, dim)
        self.position = nn.Embedding(2 * k, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(dim, 1)

    def represent(self, states: torch.Tensor, mask: torch.Tensor, side: str) -> SideRep:
        return _pad_to(SideRep(self.proj(states[:, : self.k]), mask[:, : self.k]), self.k)

    def combine(self, query: SideRep, doc: SideRep) -> torch.Tensor:
        k = self.k
        # Stored representations of short documents hold fewer than k rows.
        query, doc = _pad_to(query, k), _pad_to(doc, k)
        device = query.values.device
        x = torch.cat([query.values, doc.values], dim=1)
        seg = torch.cat([torch.zeros(k, dtype=torch.long, device=device), torch.ones(k, dtype=torch.long, device=device)])
        x = x + self.segment(seg) + self.position(torch.arange(2 * k, device=device))
        mask = torch.cat([query.mask, doc.mask], dim=1)
        out = self.encoder(x, src_key_padding_mask=~mask)
        return self.out(out[:, 0]).squeeze(-1)


def _pad_to(rep: SideRep, k: int) -> SideRep:
    """``rep`` with its token rows padded (masked out) to ``k``."""
    values, mask = rep.values, rep.mask
    if values.shape[1] < k:
        pad = k - values.shape[1]
        values = torch.nn.functional.pad(values, (0, 0, 0, pad))
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
    return SideRep(values, mask)

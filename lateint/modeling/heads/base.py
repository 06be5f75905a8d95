"""What every scoring head shares."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SideRep:
    """What a pair head keeps of one side: a pooled vector ``[B, D]`` (``mask`` None) or token
    vectors ``[B, S, D]`` with their ``[B, S]`` mask. This is what a twin-end cache stores."""

    values: torch.Tensor
    mask: torch.Tensor | None = None

    def index(self, rows: torch.Tensor) -> "SideRep":
        """The representations of ``rows`` (for gathering the sides of pairs)."""
        return SideRep(self.values[rows], None if self.mask is None else self.mask[rows])


class PairHead(nn.Module):
    """A head that reads both sides' token states: represent each side, then combine the two.

    At L = T the two representations are computed independently (and a document's can be cached);
    at L < T they are read from the two sides' slices of the final joint states.
    """

    def represent(self, states: torch.Tensor, mask: torch.Tensor, side: str) -> SideRep:
        """Reduce one side's final states ``[B, S, H]`` to what the head keeps of it."""
        raise NotImplementedError

    def combine(self, query: SideRep, doc: SideRep) -> torch.Tensor:
        """Score aligned pairs of representations: ``[B]``."""
        raise NotImplementedError

    def forward(self, query: torch.Tensor, query_mask: torch.Tensor, doc: torch.Tensor, doc_mask: torch.Tensor) -> torch.Tensor:
        return self.combine(self.represent(query, query_mask, "query"), self.represent(doc, doc_mask, "doc"))

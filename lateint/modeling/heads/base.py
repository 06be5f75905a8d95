"""What every scoring head shares: one call signature, ``head(encoded) -> scores``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SideRep:
    """What a pair head keeps of one side: a pooled vector ``[B, D]`` (``mask`` None) or token
    vectors ``[B, S, D]`` with their ``[B, S]`` mask. This is what a bi-encoder cache stores."""

    values: torch.Tensor
    mask: torch.Tensor | None = None

    def index(self, rows: torch.Tensor) -> "SideRep":
        """The representations of ``rows`` (for gathering the sides of pairs)."""
        return SideRep(self.values[rows], None if self.mask is None else self.mask[rows])

    def expand(self, n: int) -> "SideRep":
        """One representation (batch of 1) repeated ``n`` times, without copying."""
        values = self.values.expand(n, *self.values.shape[1:])
        return SideRep(values, None if self.mask is None else self.mask.expand(n, *self.mask.shape[1:]))


class Head(nn.Module):
    """A scoring head. Every head is called the same way: ``head(encoded)`` with a
    :class:`~lateint.modeling.split_encoder.SplitEncoderOutput`, returning ``[B]`` scores.

    Attributes:
        reads_first_row_only: the head reads only the final [CLS] row, so the last layer need not
            compute the other rows.
        compares_sides: the head reduces each side on its own and then compares the two, so at
            L = T the two sides never meet and a document's representation can be cached.
    """

    reads_first_row_only = False
    compares_sides = False

    def forward(self, encoded) -> torch.Tensor:
        raise NotImplementedError


class PairHead(Head):
    """A head that reads both sides' token states: represent each side, then combine the two.

    At L = T the two representations are computed independently (and a document's can be cached);
    at L < T they are read from the two sides' slices of the final joint states.
    """

    compares_sides = True

    def represent(self, states: torch.Tensor, mask: torch.Tensor, side: str) -> SideRep:
        """Reduce one side's final states ``[B, S, H]`` to what the head keeps of it."""
        raise NotImplementedError

    def combine(self, query: SideRep, doc: SideRep) -> torch.Tensor:
        """Score aligned pairs of representations: ``[B]``."""
        raise NotImplementedError

    def forward(self, encoded) -> torch.Tensor:
        return self.combine(
            self.represent(encoded.query, encoded.query_mask, "query"),
            self.represent(encoded.doc, encoded.doc_mask, "doc"),
        )

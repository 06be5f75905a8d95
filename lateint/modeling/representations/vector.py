"""``vector``: at L = T with a twin head a document is stored as its pooled (normalised) vector.

Query time encodes the query and takes one dot product (or the residual crossing) per candidate.
"""

from __future__ import annotations

from typing import Sequence

import torch

from lateint.modeling.heads import SideRep
from lateint.modeling.representations.base import Field, Gathered, Representation
from lateint.tokenization import SideTokens


class VectorRepresentation(Representation):
    name = "vector"
    fixed_length = True

    @property
    def fields(self) -> list[Field]:
        return [Field("vector", self.storage, self.ranker.encoder.hidden_size, length=1)]

    def dependencies(self):
        return {**super().dependencies(), "head": self.ranker.head}

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list[torch.Tensor]]:
        return {"vector": [v[None].float() for v in self.ranker.represent(sides, "doc").values]}

    def encode_query(self, side: SideTokens) -> SideRep:
        return self.ranker.represent([side], "query")

    def score(self, query: SideRep, gathered: dict[str, Gathered]) -> torch.Tensor:
        values, _ = self._to_ranker(gathered["vector"])
        return self.ranker.head.combine(query.expand(values.shape[0]), SideRep(values[:, 0]))

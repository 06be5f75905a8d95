"""``token_vectors``: at L = T with a ``maxsim`` (ColBERT) or ``dipair`` head a document is stored
as the head's token vectors (all of them for MaxSim, the first k for DiPair)."""

from __future__ import annotations

from typing import Sequence

import torch

from lateint.modeling.heads import SideRep
from lateint.modeling.representations.base import Field, Gathered, Representation
from lateint.tokenization import SideTokens


class TokenVectorsRepresentation(Representation):
    name = "token_vectors"

    @property
    def fields(self) -> list[Field]:
        head = self.ranker.config.head
        dim = head.maxsim_dim if head.name == "maxsim" else head.dipair_dim
        return [Field("vectors", self.storage, dim)]

    def dependencies(self):
        return {**super().dependencies(), "head": self.ranker.head}

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list[torch.Tensor]]:
        rep = self.ranker.represent(sides, "doc")
        lengths = rep.mask.sum(dim=1).tolist()
        return {"vectors": [rep.values[i, :n].float() for i, n in enumerate(lengths)]}

    def encode_query(self, side: SideTokens) -> SideRep:
        return self.ranker.represent([side], "query")

    def score(self, query: SideRep, gathered: dict[str, Gathered]) -> torch.Tensor:
        values, mask = self._to_ranker(gathered["vectors"])
        return self.ranker.head.combine(query.expand(values.shape[0]), SideRep(values, mask))

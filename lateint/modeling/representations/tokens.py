"""``tokens``: at L = 0 a document is stored as its token ids and types.

Nothing the query does not touch can be precomputed at L = 0 except the embedding lookup, a
gather; storing 384-768 floats per token for it would cost ~100x the bytes of the ids for no
saving. Query time runs the whole cross-encoder.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from lateint.modeling.representations.base import Field, Gathered, Representation
from lateint.tokenization import SideTokens


class TokensRepresentation(Representation):
    name = "tokens"

    @property
    def fields(self) -> list[Field]:
        return [Field("input_ids", "raw-int32"), Field("token_type_ids", "raw-int8")]

    def dependencies(self):
        return {}

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list]:
        return {"input_ids": [np.asarray(s.ids, dtype=np.int32) for s in sides],
                "token_type_ids": [np.asarray(s.types, dtype=np.int8) for s in sides]}

    def encode_query(self, side: SideTokens) -> SideTokens:
        return side

    def score(self, query: SideTokens, gathered: dict[str, Gathered]) -> torch.Tensor:
        ids, mask = gathered["input_ids"]
        types, _ = gathered["token_type_ids"]
        lengths = mask.sum(dim=1).tolist()
        sides = [SideTokens(tuple(ids[i, :n].tolist()), tuple(types[i, :n].tolist())) for i, n in enumerate(lengths)]
        n = len(sides)
        return self.ranker.score_sides([query], sides, torch.zeros(n, dtype=torch.long), torch.arange(n), batch_size=max(n, 1))

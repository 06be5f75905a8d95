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


def token_fields(ids_codec: str = "raw-int32") -> list[Field]:
    """The stored token ids (in ``ids_codec``) and token types of a document."""
    return [Field("input_ids", ids_codec), Field("token_type_ids", "raw-int8")]


def smallest_ids_codec(vocab_size: int) -> str:
    """2 bytes per id where the vocabulary allows (BERT's 30,522 ids), 4 otherwise."""
    return "raw-uint16" if vocab_size <= 1 << 16 else "raw-int32"


def token_arrays(sides: Sequence[SideTokens]) -> dict[str, list[np.ndarray]]:
    """Each document's ids and types, as the :func:`token_fields` store them."""
    return {"input_ids": [np.asarray(s.ids, dtype=np.int64) for s in sides],
            "token_type_ids": [np.asarray(s.types, dtype=np.int8) for s in sides]}


def gathered_sides(gathered: dict[str, Gathered]) -> list[SideTokens]:
    """The documents' sides back from a padded batch of their :func:`token_fields`."""
    ids, mask = gathered["input_ids"]
    types, _ = gathered["token_type_ids"]
    lengths = mask.sum(dim=1).tolist()
    return [SideTokens(tuple(ids[i, :n].tolist()), tuple(types[i, :n].tolist())) for i, n in enumerate(lengths)]


class TokensRepresentation(Representation):
    name = "tokens"

    @property
    def fields(self) -> list[Field]:
        return token_fields()

    def dependencies(self):
        return {}

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list]:
        return token_arrays(sides)

    def encode_query(self, side: SideTokens) -> SideTokens:
        return side

    def score(self, query: SideTokens, gathered: dict[str, Gathered]) -> torch.Tensor:
        sides = gathered_sides(gathered)
        n = len(sides)
        return self.ranker.score_sides([query], sides, torch.zeros(n, dtype=torch.long), torch.arange(n), batch_size=max(n, 1))

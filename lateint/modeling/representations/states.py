"""``states``: at 0 < L < T a document is stored as its layer-L token states.

Optionally PreTTR-compressed to e dims per token (restored by the compressor at query time).
Query time runs the query's L layers once, then the T - L joint layers per candidate batch.
"""

from __future__ import annotations

from typing import Sequence

import torch

from lateint.modeling.representations.base import Field, Gathered, Representation, unpad
from lateint.tokenization import SideTokens


class StatesRepresentation(Representation):
    name = "states"

    @property
    def fields(self) -> list[Field]:
        dim = self.compressor.dim if self.compressor is not None else self.ranker.encoder.hidden_size
        return [Field("states", self.storage, dim)]

    def _lower_states(self, sides: Sequence[SideTokens]) -> tuple[torch.Tensor, list[int]]:
        batch = self.ranker.doc_batch(sides)
        return self.ranker.lower_states(batch), batch.lengths.tolist()

    def _stored(self, states: torch.Tensor) -> torch.Tensor:
        if self.compressor is None:
            return states
        return self.compressor.to(states.device, states.dtype).compress(states)

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list[torch.Tensor]]:
        states, lengths = self._lower_states(sides)
        return {"states": unpad(self._stored(states), lengths)}

    def encode_query(self, side: SideTokens) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.ranker.query_batch([side])
        return self.ranker.lower_states(batch), batch.mask

    def _restored(self, gathered: Gathered) -> Gathered:
        states, mask = self._to_ranker(gathered)
        if self.compressor is not None:
            states = self.compressor.to(states.device, states.dtype).decompress(states)
        return states, mask

    def score(self, query, gathered: dict[str, Gathered]) -> torch.Tensor:
        q_states, q_mask = query
        d_states, d_mask = self._restored(gathered["states"])
        n = d_states.shape[0]
        return self.ranker.score_states(q_states.expand(n, -1, -1), q_mask.expand(n, -1), d_states, d_mask)

"""``states``: at 0 < L < T a document is stored as its layer-L token states.

Optionally PreTTR-compressed to e dims per token (restored by the compressor at query time); a
compressor with SDR's side information also has the token ids and types stored, from which query
time recomputes the static embeddings it restores the states with. Query time runs the query's L
layers once, then the T - L joint layers per candidate batch.
"""

from __future__ import annotations

from typing import Sequence

import torch

from lateint.modeling.representations.base import Field, Gathered, Representation, unpad
from lateint.modeling.representations.tokens import gathered_sides, smallest_ids_codec, token_arrays, token_fields
from lateint.tokenization import SideBatch, SideTokens


class StatesRepresentation(Representation):
    name = "states"

    @property
    def side_info(self) -> bool:
        """The compressor restores states from codes plus each token's static embedding."""
        return self.compressor is not None and self.compressor.side_info

    @property
    def fields(self) -> list[Field]:
        dim = self.compressor.dim if self.compressor is not None else self.ranker.encoder.hidden_size
        fields = [Field("states", self.storage, dim)]
        if self.side_info:
            fields += token_fields(smallest_ids_codec(len(self.ranker.tokenizer)))
        return fields

    def settings(self):
        settings = super().settings()
        if self.side_info:  # absent otherwise, so caches built before the option stay valid
            settings["compression_side_info"] = True
        return settings

    def _lower_states(self, sides: Sequence[SideTokens]) -> tuple[torch.Tensor, list[int], SideBatch]:
        batch = self.ranker.doc_batch(sides)
        return self.ranker.lower_states(batch), batch.lengths.tolist(), batch

    def _compressor(self, like: torch.Tensor):
        return self.compressor.to(like.device, like.dtype)

    def _stored(self, states: torch.Tensor, batch: SideBatch) -> torch.Tensor:
        if self.compressor is None:
            return states
        static = self.ranker.encoder.embed(batch) if self.side_info else None
        return self._compressor(states).compress(states, static)

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list[torch.Tensor]]:
        return self._states_fields(sides, *self._lower_states(sides))

    def _states_fields(self, sides: Sequence[SideTokens], states: torch.Tensor, lengths: list[int], batch: SideBatch) -> dict:
        out = {"states": unpad(self._stored(states, batch), lengths)}
        if self.side_info:
            out.update(token_arrays(sides))
        return out

    def encode_query(self, side: SideTokens) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.ranker.query_batch([side])
        return self.ranker.lower_states(batch), batch.mask

    def _restored(self, gathered: dict[str, Gathered]) -> Gathered:
        states, mask = self._to_ranker(gathered["states"])
        if self.compressor is not None:
            static = None
            if self.side_info:
                static = self.ranker.encoder.embed(self.ranker.doc_batch(gathered_sides(gathered))).to(states.dtype)
            states = self._compressor(states).decompress(states, static)
        return states, mask

    def score(self, query, gathered: dict[str, Gathered]) -> torch.Tensor:
        q_states, q_mask = query
        d_states, d_mask = self._restored(gathered)
        n = d_states.shape[0]
        return self.ranker.score_states(q_states.expand(n, -1, -1), q_mask.expand(n, -1), d_states, d_mask)

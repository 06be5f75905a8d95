"""``kv``: layer-L states plus the first joint layer's document keys and values.

The first joint layer then projects keys and values for the query rows only. At L = T - 1 with a
[CLS] head, for families whose attention reads no position (BERT, DistilBERT), the states
themselves are not stored: the last layer computes only the [CLS] row, which attends over the
query's keys and values (computed once per query) and each candidate's cached ones, so only keys
and values are kept. Rotary (ModernBERT) and relative (DeBERTa) attention keep the states and run
the padded path.
"""

from __future__ import annotations

from typing import Sequence

import torch

from lateint.modeling.layers import first_row_over_packed
from lateint.modeling.representations.base import Field, Gathered, unpad
from lateint.modeling.representations.states import StatesRepresentation
from lateint.modeling.split_encoder import SplitEncoderOutput
from lateint.tokenization import SideTokens


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    B, n, S, d = x.shape
    return x.transpose(1, 2).reshape(B, S, n * d)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    B, S, Hd = x.shape
    return x.view(B, S, heads, Hd // heads).transpose(1, 2)


class KeyValueRepresentation(StatesRepresentation):
    name = "kv"

    @property
    def keys_values_only(self) -> bool:
        """L = T - 1 with a head that reads only the [CLS] row: the states are not needed."""
        r = self.ranker
        return (r.split == r.num_layers - 1 and r.head.reads_first_row_only
                and r.encoder.adapter.ops.packed_first_row)

    @property
    def packed(self) -> bool:
        # Only the [CLS] row is computed, over keys and values: nothing needs a padded layout.
        return self.keys_values_only

    @property
    def padding_growth(self) -> float:
        # Packed rows carry no padding, while every batch pays the last layer's and the head's
        # weights again: fewer, fuller batches win ...
        return float("inf") if self.keys_values_only else super().padding_growth

    @property
    def batch_rows(self) -> int | None:
        # ... up to 16,384 packed rows, which hold a DL19 top-100 (8,000-10,000 rows) in one batch.
        return 16384 if self.keys_values_only else None

    @property
    def fields(self) -> list[Field]:
        kv = Field("keys_values", self.storage, 2 * self.ranker.encoder.hidden_size)
        return [kv] if self.keys_values_only else [*super().fields, kv]

    def dependencies(self):
        modules = super().dependencies()
        kv = self.ranker.encoder.key_value_modules(self.ranker.split)
        modules.update({f"joint.{name}": module for name, module in kv.items()})
        return modules

    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list[torch.Tensor]]:
        states, lengths, batch = self._lower_states(sides)
        k, v = self.ranker.encoder.joint_keys_values(states, self.ranker.split, batch.position_ids)
        out = {"keys_values": unpad(torch.cat([_merge_heads(k), _merge_heads(v)], dim=-1), lengths)}
        if not self.keys_values_only:
            out.update(self._states_fields(sides, states, lengths, batch))
        return out

    def encode_query(self, side: SideTokens):
        q_states, q_mask = super().encode_query(side)
        positions = self.ranker.query_batch([side]).position_ids.to(q_states.device)
        return q_states, q_mask, self.ranker.encoder.joint_keys_values(q_states, self.ranker.split, positions)

    def score(self, query, gathered: dict[str, Gathered]) -> torch.Tensor:
        q_states, q_mask, (qk, qv) = query
        ranker = self.ranker
        if self.keys_values_only:
            kv, lengths = (t.to(ranker.device) for t in gathered["keys_values"])  # packed; fp16 stays fp16
            H = kv.shape[-1] // 2
            n = lengths.shape[0]
            layer = ranker.encoder.layers[ranker.split]
            cls_row = first_row_over_packed(layer, q_states[:, :1], (qk, qv), q_mask, (kv[..., :H], kv[..., H:]), lengths)
            cls_row = ranker.encoder.final_norm(cls_row)
            no_doc_rows = torch.ones(n, 0, dtype=torch.bool, device=cls_row.device)
            return ranker.head(SplitEncoderOutput(cls_row, q_mask[:, :1].expand(n, 1), cls_row[:, 1:], no_doc_rows))
        kv, d_mask = self._to_ranker(gathered["keys_values"])
        H = kv.shape[-1] // 2
        n = kv.shape[0]
        heads = ranker.encoder.num_heads
        dk, dv = _split_heads(kv[..., :H], heads), _split_heads(kv[..., H:], heads)
        d_states, d_mask = self._restored(gathered)
        keys_values = (torch.cat([qk.expand(n, -1, -1, -1), dk], dim=2), torch.cat([qv.expand(n, -1, -1, -1), dv], dim=2))
        return ranker.score_states(q_states.expand(n, -1, -1), q_mask.expand(n, -1), d_states, d_mask, keys_values=keys_values)

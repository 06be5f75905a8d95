"""The split encoder: L independent lower layers per side, then T - L joint layers.

Two execution paths compute the same function:

* the **efficient split**: each side runs through the embeddings and the first L layers on its
  own (this is what a document cache stores), then the two sides' states are concatenated and the
  remaining layers run jointly. Work on the other side is really skipped, not masked.
* the **reference**: one concatenated sequence per pair through every layer, with a block-diagonal
  attention mask in the first L layers so that neither side sees the other, run through the
  ``transformers`` layer modules themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lateint.modeling.layers import layer_forward, project_keys_values, reference_layer_forward
from lateint.tokenization import SideBatch


@dataclass
class PairStates:
    """Final states of a batch of pairs, split back into their two sides (padded per side)."""

    query: torch.Tensor
    query_mask: torch.Tensor
    doc: torch.Tensor
    doc_mask: torch.Tensor


class SplitEncoder(nn.Module):
    """A ``transformers`` BERT-family base model run with a split at layer ``split``.

    Args:
        backbone: the base model (``BertModel``, ``ElectraModel``, ``RobertaModel`` ...).
        split: L, the number of lower layers run on each side separately.
    """

    def __init__(self, backbone: nn.Module, split: int):
        super().__init__()
        self.backbone = backbone
        self.split = split

    # -- structure ---------------------------------------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers in use (T of them)."""
        return self.backbone.encoder.layer

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    # -- efficient path -------------------------------------------------------------------------
    def embed(self, side: SideBatch) -> torch.Tensor:
        """Token embeddings of one side (word + position + type, LayerNorm), ``[B, S, H]``."""
        emb = self.backbone.embeddings(
            input_ids=side.input_ids, token_type_ids=side.token_type_ids, position_ids=side.position_ids
        )
        project = getattr(self.backbone, "embeddings_project", None)
        return project(emb) if project is not None else emb

    def run_layers(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        start: int,
        stop: int,
        *,
        first_only_last: bool = False,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Run layers ``start..stop-1`` with a key-padding mask.

        ``first_only_last`` computes only row 0 in the last of them; ``keys_values`` are used as
        the keys and values of the first of them instead of projecting ``hidden``.
        """
        for i in range(start, stop):
            hidden = layer_forward(
                self.layers[i],
                hidden,
                mask,
                first_only=first_only_last and i == stop - 1,
                keys_values=keys_values if i == start else None,
            )
        return hidden

    def encode_side(self, side: SideBatch, stop: int | None = None) -> torch.Tensor:
        """States of one side after its embeddings and the first ``stop`` (default L) layers."""
        stop = self.split if stop is None else stop
        return self.run_layers(self.embed(side), side.mask, 0, stop)

    def encode_joint(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        doc: torch.Tensor,
        doc_mask: torch.Tensor,
        *,
        first_only: bool = False,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Concatenate lower-layer states of aligned pairs and run the joint layers L..T-1.

        ``keys_values``, if given, are the first joint layer's keys and values of the concatenated
        sequence (from a cache), so that layer does not project them again.

        Returns ``[B, Sq + Sd, H]`` (or ``[B, 1, H]``, the [CLS] row, with ``first_only``).
        """
        hidden = torch.cat([query, doc], dim=1)
        mask = torch.cat([query_mask, doc_mask], dim=1)
        return self.run_layers(
            hidden, mask, self.split, self.num_layers, first_only_last=first_only, keys_values=keys_values
        )

    def joint_keys_values(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values that the first joint layer computes from layer-L states ``hidden``."""
        return project_keys_values(self.layers[self.split], hidden)

    # -- reference path -------------------------------------------------------------------------
    def reference(self, query: SideBatch, doc: SideBatch) -> PairStates:
        """Final states of aligned pairs computed as one masked sequence per pair.

        Each pair is laid out as its query tokens followed by its document tokens (no padding in
        between), embedded as one sequence, and run through the ``transformers`` layers with a
        block-diagonal mask in the first L layers and a plain padding mask after.
        """
        q_len = query.lengths.tolist()
        d_len = doc.lengths.tolist()
        B = len(q_len)
        width = max(a + b for a, b in zip(q_len, d_len))
        device = query.input_ids.device
        ids = torch.zeros((B, width), dtype=torch.long, device=device)
        types = torch.zeros_like(ids)
        positions = torch.zeros_like(ids)
        side = torch.full((B, width), -1, dtype=torch.long, device=device)
        for i, (a, b) in enumerate(zip(q_len, d_len)):
            ids[i, :a], ids[i, a : a + b] = query.input_ids[i, :a], doc.input_ids[i, :b]
            types[i, :a], types[i, a : a + b] = query.token_type_ids[i, :a], doc.token_type_ids[i, :b]
            positions[i, :a], positions[i, a : a + b] = query.position_ids[i, :a], doc.position_ids[i, :b]
            side[i, :a], side[i, a : a + b] = 0, 1
        valid = side >= 0
        hidden = self.embed(SideBatch(ids, types, positions, valid))
        # Padding rows attend like query rows; they are never read.
        row_side = side.clamp(min=0)
        block = (row_side[:, :, None] == side[:, None, :]) & valid[:, None, :]
        full = valid[:, None, :].expand(B, width, width)
        for i, layer in enumerate(self.layers):
            hidden = reference_layer_forward(layer, hidden, block if i < self.split else full)
        Sq, Sd = max(q_len), max(d_len)
        q_out = hidden.new_zeros((B, Sq, hidden.shape[-1]))
        d_out = hidden.new_zeros((B, Sd, hidden.shape[-1]))
        for i, (a, b) in enumerate(zip(q_len, d_len)):
            q_out[i, :a] = hidden[i, :a]
            d_out[i, :b] = hidden[i, a : a + b]
        return PairStates(q_out, query.mask[:, :Sq], d_out, doc.mask[:, :Sd])

"""The split encoder: L independent lower layers per side, then T - L joint layers.

Two execution paths compute the same function:

* the **efficient split** (:meth:`SplitEncoder.forward`): each side runs through the embeddings
  and the first L layers on its own (this is what a document cache stores), then the two sides'
  states are concatenated and the remaining layers run jointly. Work on the other side is really
  skipped, not masked.
* the **reference** (:meth:`SplitEncoder.reference`): one concatenated sequence per pair through
  every layer, with a block-diagonal attention mask in the first L layers so that neither side
  sees the other, run through the ``transformers`` layer modules themselves.

The encoder holds weights only; the split L is an argument of every call (it lives in the
ranker's config), so one encoder serves every point of the dial at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lateint.modeling.backbones import Backbone, backbone_for
from lateint.modeling.layers import layer_forward, project_keys_values, reference_layer_forward
from lateint.tokenization import SideBatch


@dataclass
class SplitEncoderOutput:
    """What one pass over a batch of aligned pairs returns, split back into the two sides.

    Attributes:
        query: ``[B, Sq, H]`` final query-side states (``[B, 1, H]``, the [CLS] row, when only the
            first row of the last layer was computed).
        query_mask: ``[B, Sq]`` bool, True for real tokens.
        doc: ``[B, Sd, H]`` final document-side states (empty ``[B, 0, H]`` with ``first_row_only``).
        doc_mask: ``[B, Sd]``.
        hidden_states: with ``output_hidden_states``, ``T + 1`` states ``[B, Sq + Sd, H]`` of the
            concatenated pair, embedding output first (below the split the two sides' separate
            states side by side).
        attentions: with ``output_attentions``, ``T`` raw attention scores
            ``[B, heads, Sq + Sd, Sq + Sd]`` (before softmax, masked entries at ``finfo.min``;
            below the split the cross-side blocks are masked, since those scores do not exist).
        mask: ``[B, Sq + Sd]`` key mask of the concatenated pair.
    """

    query: torch.Tensor
    query_mask: torch.Tensor
    doc: torch.Tensor
    doc_mask: torch.Tensor
    hidden_states: list[torch.Tensor] | None = None
    attentions: list[torch.Tensor] | None = None

    @property
    def mask(self) -> torch.Tensor:
        return torch.cat([self.query_mask, self.doc_mask], dim=1)


def keep_layers(backbone: nn.Module, indices: list[int]) -> None:
    """Keep only the transformer layers ``indices`` of a ``transformers`` base model, in order
    (how shallower models and students are cut from deeper ones)."""
    backbone_for(backbone).keep_layers(indices)


def _joint_positions(query: torch.Tensor | None, doc: torch.Tensor | None) -> torch.Tensor | None:
    if query is None or doc is None:
        return None
    return torch.cat([query, doc], dim=1)


def _block_diagonal(q_scores: torch.Tensor, d_scores: torch.Tensor) -> torch.Tensor:
    B, h, Sq, _ = q_scores.shape
    Sd = d_scores.shape[-1]
    full = q_scores.new_full((B, h, Sq + Sd, Sq + Sd), torch.finfo(q_scores.dtype).min)
    full[:, :, :Sq, :Sq] = q_scores
    full[:, :, Sq:, Sq:] = d_scores
    return full


class SplitEncoder(nn.Module):
    """A ``transformers`` encoder of a supported family run with a split.

    Args:
        backbone: the base model (``BertModel``, ``DistilBertModel``, ``ModernBertModel`` ...); the
            family's adapter (:mod:`lateint.modeling.backbones`) gives everything else.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        backbone_for(backbone)  # refuses an unsupported family here, in one line

    # -- structure ---------------------------------------------------------------------------
    @property
    def adapter(self) -> Backbone:
        """The backbone seen through the protocol (built on demand, so copies and cuts follow)."""
        return backbone_for(self.backbone)

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers in use (T of them)."""
        return self.adapter.layers

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    @property
    def num_heads(self) -> int:
        return int(self.backbone.config.num_attention_heads)

    def embedding_modules(self) -> dict[str, nn.Module]:
        """The modules that turn token ids into layer-0 input (what every cached value depends on)."""
        return self.adapter.embedding_modules()

    def key_value_modules(self, layer: int) -> dict[str, nn.Module]:
        """The modules ``layer``'s keys and values depend on (what cached keys and values depend on)."""
        adapter = self.adapter
        if not adapter.caches_keys_values:
            adapter.refuse("precompute='kv' (cached joint-layer keys and values)")
        return adapter.ops.key_value_modules(self.layers[layer])

    def feed_forward_outputs(self) -> list[nn.Module]:
        """Each layer's feed-forward output projection (intermediate size to hidden size)."""
        ops = self.adapter.ops
        return [ops.feed_forward_output(layer) for layer in self.layers]

    def final_norm(self, hidden: torch.Tensor) -> torch.Tensor:
        """The family's norm after the last layer (identity for post-norm families)."""
        return self.adapter.final_norm(hidden)

    # -- efficient path -------------------------------------------------------------------------
    def embed(self, side: SideBatch) -> torch.Tensor:
        """Token embeddings of one side (word, and position and type where the family has them), ``[B, S, H]``."""
        return self.adapter.embed(side.input_ids, side.token_type_ids, side.position_ids, side.mask)

    def run_layers(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        start: int,
        stop: int,
        *,
        first_row_only: bool = False,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
        hidden_states: list[torch.Tensor] | None = None,
        attentions: list[torch.Tensor] | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run layers ``start..stop-1`` with a key-padding mask.

        ``first_row_only`` computes only row 0 in the last of them; ``keys_values`` are used as the
        keys and values of the first of them instead of projecting ``hidden``. Each layer's output
        is appended to ``hidden_states`` and its raw attention scores to ``attentions`` when those
        lists are given. ``positions`` ``[B, S]`` are the rows' position ids (families with rotary
        or relative positions read them in every layer). After the last layer of the model the
        family's final norm is applied.
        """
        ctx = self.adapter.context(positions, hidden) if start < stop else None
        for i in range(start, stop):
            out = layer_forward(
                self.layers[i],
                hidden,
                mask,
                first_only=first_row_only and i == stop - 1,
                keys_values=keys_values if i == start else None,
                return_scores=attentions is not None,
                ctx=ctx,
            )
            if attentions is not None:
                hidden, scores = out
                attentions.append(scores)
            else:
                hidden = out
            if i == self.num_layers - 1:
                hidden = self.final_norm(hidden)
            if hidden_states is not None:
                hidden_states.append(hidden)
        return hidden

    def encode_side(self, side: SideBatch, split: int) -> torch.Tensor:
        """States of one side after its embeddings and the first ``split`` layers (what a cache stores)."""
        return self.run_layers(self.embed(side), side.mask, 0, split, positions=side.position_ids)

    def forward(
        self,
        query: SideBatch | None,
        doc: SideBatch | None,
        *,
        split: int,
        query_states: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        doc_states: torch.Tensor | None = None,
        doc_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        first_row_only: bool = False,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
        query_positions: torch.Tensor | None = None,
        doc_positions: torch.Tensor | None = None,
    ) -> SplitEncoderOutput:
        """Encode aligned pairs with a split at layer ``split``.

        Each side is given either tokenized (``query``/``doc``, run through the embeddings and the
        first ``split`` layers here) or as its layer-``split`` states with their mask (from a cache
        or computed once for many pairs). The joint layers then run on the concatenation.

        Args:
            split: L, the number of lower layers each side runs alone.
            output_hidden_states, output_attentions: also return every layer's states / raw
                attention scores (tokenized sides only; the scores take the slower explicit path).
            first_row_only: compute only row 0 (the [CLS] row) of the last layer; needs a joint layer.
            keys_values: the first joint layer's keys and values of the concatenated pairs
                (from a cache), so that layer does not project them again.
            query_positions, doc_positions: the position ids of sides given as states (families
                whose layers read positions need them in the joint layers).
        """
        hidden = [] if output_hidden_states else None
        scores = [] if output_attentions else None
        if query is not None:
            query_states, query_mask = self._lower(query, split, hidden, scores, 0)
            query_positions = query.position_ids
        if doc is not None:
            doc_states, doc_mask = self._lower(doc, split, hidden, scores, 1)
            doc_positions = doc.position_ids
        if hidden is not None:
            # Below the split the sides ran apart: each layer's pair states are the two side by side.
            half = len(hidden) // 2
            hidden = [torch.cat([q, d], dim=1) for q, d in zip(hidden[:half], hidden[half:])]
        if scores is not None:
            half = len(scores) // 2
            scores = [_block_diagonal(q, d) for q, d in zip(scores[:half], scores[half:])]
        if split == self.num_layers:
            return SplitEncoderOutput(query_states, query_mask, doc_states, doc_mask, hidden, scores)
        joint = self.run_layers(
            torch.cat([query_states, doc_states], dim=1),
            torch.cat([query_mask, doc_mask], dim=1),
            split,
            self.num_layers,
            first_row_only=first_row_only,
            keys_values=keys_values,
            hidden_states=hidden,
            attentions=scores,
            positions=_joint_positions(query_positions, doc_positions),
        )
        width = query_states.shape[1]
        return SplitEncoderOutput(
            joint[:, :width], query_mask[:, : joint.shape[1]], joint[:, width:], doc_mask[:, : max(0, joint.shape[1] - width)],
            hidden, scores,
        )

    def _lower(self, side: SideBatch, split: int, hidden: list | None, scores: list | None, which: int):
        states = self.embed(side)
        side_hidden = [states] if hidden is not None else None
        side_scores = [] if scores is not None else None
        states = self.run_layers(states, side.mask, 0, split, hidden_states=side_hidden, attentions=side_scores,
                                 positions=side.position_ids)
        # Query lists first, then document lists; ``forward`` pairs them up layer by layer.
        if hidden is not None:
            hidden.extend(side_hidden)
        if scores is not None:
            scores.extend(side_scores)
        return states, side.mask

    def joint_keys_values(self, hidden: torch.Tensor, split: int,
                          positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values that the first joint layer computes from layer-``split`` states at
        ``positions``."""
        adapter = self.adapter
        if not adapter.caches_keys_values:
            adapter.refuse("precompute='kv' (cached joint-layer keys and values)")
        return project_keys_values(self.layers[split], hidden, adapter.context(positions, hidden))

    # -- reference path -------------------------------------------------------------------------
    def reference(self, query: SideBatch, doc: SideBatch, *, split: int) -> SplitEncoderOutput:
        """Final states of aligned pairs computed as one masked sequence per pair.

        Each pair is laid out as its query tokens followed by its document tokens (no padding in
        between), embedded as one sequence, and run through the ``transformers`` layers with a
        block-diagonal mask in the first ``split`` layers and a plain padding mask after.
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
        ctx = self.adapter.context(positions, hidden)
        for i, layer in enumerate(self.layers):
            hidden = reference_layer_forward(layer, hidden, block if i < split else full, ctx)
        hidden = self.final_norm(hidden)
        Sq, Sd = max(q_len), max(d_len)
        q_out = hidden.new_zeros((B, Sq, hidden.shape[-1]))
        d_out = hidden.new_zeros((B, Sd, hidden.shape[-1]))
        for i, (a, b) in enumerate(zip(q_len, d_len)):
            q_out[i, :a] = hidden[i, :a]
            d_out[i, :b] = hidden[i, a : a + b]
        return SplitEncoderOutput(q_out, query.mask[:, :Sq], d_out, doc.mask[:, :Sd])

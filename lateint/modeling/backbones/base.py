"""The backbone protocol: what the split encoder, the heads and the caches may ask of an encoder.

A family's adapter has two parts:

* :class:`LayerOps`, the operations on one of its layer modules, all with one signature: the
  queries of some rows, the keys and values of all rows, any additive score bias, which keys each
  row may see, and the rest of the layer once the attention context is known (output projection,
  residuals, norms, feed-forward). :mod:`lateint.modeling.layers` builds the efficient layer, the
  [CLS]-only last layer and the packed key/value path from these, and runs the reference layer
  through the family's own ``transformers`` module.
* :class:`Backbone`, the whole model: one side's embeddings, the list of layers, the per-pass
  :class:`LayerContext` (positions and what a family derives from them), any final norm, and the
  family's own sequence-classification head.

No module name of any family appears outside its adapter module.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from lateint.errors import ConfigError


class LayerContext:
    """What a layer needs to know of the tokens besides their states: their position ids
    ``[B, S]`` (as the layout placed them) and anything a family computes from them once per pass
    (rotary angles, relative-position embeddings), filled in by :meth:`Backbone.context`."""

    def __init__(self, positions: torch.Tensor | None, per_token: dict[str, Any] | None = None, **shared: Any):
        self.positions = positions
        self.per_token = per_token or {}
        self.shared = shared
        #: Everything a family put in: ``per_token`` values have a ``[B, S, ...]`` layout, ``shared`` ones not.
        self.extra = {**shared, **self.per_token}

    def rows(self, n: int) -> "LayerContext":
        """The context of the first ``n`` rows only (a [CLS]-only last layer)."""
        positions = None if self.positions is None else self.positions[:, :n]
        return LayerContext(positions, {k: _first_rows(v, n) for k, v in self.per_token.items()}, **self.shared)


def _first_rows(value: Any, n: int) -> Any:
    if isinstance(value, dict):
        return {k: _first_rows(v, n) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_first_rows(v, n) for v in value)
    if isinstance(value, torch.Tensor) and value.dim() >= 2:
        return value[:, :n]
    return value


class LayerOps:
    """Operations on one encoder layer module of a family (see the module docstring).

    Tensors: ``rows`` ``[B, R, H]`` are the states whose outputs are computed, ``hidden``
    ``[B, S, H]`` the states that give the keys and values (``rows`` is ``hidden`` or its first row);
    queries, keys and values are ``[B, heads, R or S, head_dim]``.
    """

    #: The last layer's [CLS] row can be computed over packed cached keys and values
    #: (:func:`lateint.modeling.layers.first_row_over_packed`): no position enters the attention.
    packed_first_row: ClassVar[bool] = True

    @staticmethod
    def heads(layer: nn.Module) -> tuple[int, int]:
        """Number of heads and head width."""
        raise NotImplementedError

    @staticmethod
    def query(layer: nn.Module, rows: torch.Tensor, ctx: LayerContext) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def keys_values(layer: nn.Module, hidden: torch.Tensor, ctx: LayerContext) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @classmethod
    def scale(cls, layer: nn.Module) -> float:
        """The factor of the query-key products."""
        return cls.heads(layer)[1] ** -0.5

    @staticmethod
    def bias(layer: nn.Module, q: torch.Tensor, k: torch.Tensor, row_ctx: LayerContext, ctx: LayerContext):
        """An additive score bias ``[B, heads, R, S]`` (relative positions), or None."""
        return None

    @staticmethod
    def allowed(layer: nn.Module, key_mask: torch.Tensor, row_ctx: LayerContext, ctx: LayerContext) -> torch.Tensor:
        """Which keys each row may attend to: ``[B, 1, 1 or R, S]`` bool from the ``[B, S]`` key mask."""
        return key_mask[:, None, None, :]

    @staticmethod
    def attention_dropout(layer: nn.Module) -> float:
        raise NotImplementedError

    @staticmethod
    def finish(layer: nn.Module, context: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The layer's output ``[B, R, H]`` from the attention context ``[B, R, H]`` (heads merged)."""
        raise NotImplementedError

    @staticmethod
    def feed_forward_output(layer: nn.Module) -> nn.Module:
        """The feed-forward output projection (intermediate size to hidden size)."""
        raise NotImplementedError

    @staticmethod
    def key_value_modules(layer: nn.Module) -> dict[str, nn.Module]:
        """The modules the keys and values of this layer depend on (named, for cache fingerprints)."""
        raise NotImplementedError

    @staticmethod
    def reference(layer: nn.Module, hidden: torch.Tensor, allowed: torch.Tensor, ctx: LayerContext) -> torch.Tensor:
        """The layer run through its own ``transformers`` forward with the full ``[B, S, S]`` bool mask
        ``allowed`` (what the split must reproduce)."""
        additive = torch.zeros(allowed.shape, dtype=hidden.dtype, device=hidden.device)
        additive = additive.masked_fill(~allowed, torch.finfo(hidden.dtype).min)[:, None]
        out = layer(hidden, attention_mask=additive)
        return out[0] if isinstance(out, tuple) else out


class Backbone:
    """A ``transformers`` base model seen through the protocol.

    Args:
        model: the base model (``BertModel``, ``DistilBertModel``, ``ModernBertModel`` ...).
    """

    #: The family's name, as error messages and the README give it.
    family: ClassVar[str]
    ops: ClassVar[type[LayerOps]]
    #: Document keys and values of the first joint layer can be cached (``precompute='kv'``).
    caches_keys_values: ClassVar[bool] = True

    def __init__(self, model: nn.Module):
        self.model = model

    @property
    def config(self):
        return self.model.config

    # -- structure -------------------------------------------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def set_layers(self, layers: list[nn.Module]) -> None:
        """Replace the layer list (cutting shallower models and students)."""
        raise NotImplementedError

    def keep_layers(self, indices: list[int]) -> None:
        """Keep only layers ``indices``, in order."""
        kept = [self.layers[i] for i in indices]
        for position, layer in enumerate(kept):
            # transformers numbers layers for its key/value caches; keep the numbering consistent.
            for module in layer.modules():
                if hasattr(module, "layer_idx"):
                    module.layer_idx = position
        self.set_layers(kept)
        self.config.num_hidden_layers = len(kept)

    @property
    def hidden_dropout(self) -> float:
        """The dropout the family's classification head uses."""
        return float(self.config.hidden_dropout_prob)

    # -- embeddings ------------------------------------------------------------------------------
    def embedding_modules(self) -> dict[str, nn.Module]:
        """The modules that turn token ids into layer-0 input (what every cached value depends on)."""
        raise NotImplementedError

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor,
              mask: torch.Tensor) -> torch.Tensor:
        """Layer-0 input ``[B, S, H]`` of one side (or of the concatenated pair in the reference)."""
        raise NotImplementedError

    def context(self, positions: torch.Tensor, like: torch.Tensor) -> LayerContext:
        """The per-pass layer context of tokens at ``positions`` (``like``: a state tensor, for dtype)."""
        return LayerContext(positions)

    def final_norm(self, hidden: torch.Tensor) -> torch.Tensor:
        """Any norm after the last layer (pre-norm families); identity for the others."""
        return hidden

    # -- the family's sequence-classification head ----------------------------------------------
    @classmethod
    def head_activation(cls, config) -> str:
        """The activation of the dense layer of the family's classification head."""
        return "tanh"

    def cls_head_options(self) -> dict[str, Any]:
        """Extra :class:`~lateint.modeling.heads.ClsHead` options that make it the family's head."""
        return {}

    @staticmethod
    def classifier_parts(model: nn.Module) -> dict[str, nn.Module | None]:
        """The ``dense``, ``norm`` and ``out`` layers of a ``*ForSequenceClassification`` model of this
        family (``dense``/``norm`` None where the head has none)."""
        raise NotImplementedError

    def pretrained_pooler(self) -> nn.Linear | None:
        """A pretrained dense layer (BERT's pooler) that starts a fresh ``cls`` head, or None."""
        return None

    def drop_pooler(self) -> None:
        """Remove any pooler from the base model (its weights, if used, live in the head)."""

    def refuse(self, what: str) -> None:
        raise ConfigError(f"{what} is not available for {self.family} models.")

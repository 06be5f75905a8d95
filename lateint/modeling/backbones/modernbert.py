"""ModernBERT: pre-norm layers under ``layers`` (``attn_norm``, fused ``attn.Wqkv``, ``attn.Wo``,
``mlp_norm``, GeGLU ``mlp``), rotary positions, a final norm, and attention alternating between a
local sliding window and global layers.

The layouts set the rotary positions, and a sliding-window layer lets a row attend to the keys
whose *positions* lie within ``config.sliding_window`` of its own. For the ``packed`` layout the
positions are the indices of the concatenated pair, so this is exactly the model run on the pair;
below the split each side runs alone, which is the pair with a block-diagonal mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lateint.errors import ConfigError
from lateint.modeling.backbones.base import Backbone, LayerContext, LayerOps


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

    return apply_rotary_pos_emb(x, x, cos, sin, unsqueeze_dim=1)[0]


def _window(layer, row_ctx: LayerContext, ctx: LayerContext) -> torch.Tensor | None:
    """``[B, 1, R, S]`` True where a row's and a key's positions are within the sliding window."""
    if layer.attention_type != "sliding_attention":
        return None
    distance = (row_ctx.positions[:, :, None] - ctx.positions[:, None, :]).abs()
    return (distance <= layer.attn.config.sliding_window)[:, None]


class ModernBertLayerOps(LayerOps):
    packed_first_row = False  # rotary positions and windows enter the attention

    @staticmethod
    def heads(layer):
        attn = layer.attn
        return attn.config.num_attention_heads, attn.head_dim

    @classmethod
    def _project(cls, layer, x, part: slice) -> torch.Tensor:
        # The fused Wqkv's output rows are (q, k, v) x heads x head_dim; project only the part needed.
        n, d = cls.heads(layer)
        w = layer.attn.Wqkv.weight[part]
        b = None if layer.attn.Wqkv.bias is None else layer.attn.Wqkv.bias[part]
        B, S, _ = x.shape
        return F.linear(layer.attn_norm(x), w, b).view(B, S, -1, n, d)

    @classmethod
    def query(cls, layer, rows, ctx):
        n, d = cls.heads(layer)
        q = cls._project(layer, rows, slice(0, n * d))[:, :, 0].transpose(1, 2)
        cos, sin = ctx.extra["rope"][layer.attention_type]
        return _rotate(q, cos, sin)

    @classmethod
    def keys_values(cls, layer, hidden, ctx):
        n, d = cls.heads(layer)
        kv = cls._project(layer, hidden, slice(n * d, 3 * n * d))
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        cos, sin = ctx.extra["rope"][layer.attention_type]
        return _rotate(k, cos, sin), v

    @staticmethod
    def allowed(layer, key_mask, row_ctx, ctx):
        allowed = key_mask[:, None, None, :]
        window = _window(layer, row_ctx, ctx)
        return allowed if window is None else allowed & window

    @staticmethod
    def attention_dropout(layer):
        return layer.attn.attention_dropout

    @staticmethod
    def finish(layer, context, rows):
        hidden = rows + layer.attn.out_drop(layer.attn.Wo(context))
        return hidden + layer.mlp(layer.mlp_norm(hidden))

    @staticmethod
    def feed_forward_output(layer):
        return layer.mlp.Wo

    @staticmethod
    def key_value_modules(layer):
        return {"attn_norm": layer.attn_norm, "Wqkv": layer.attn.Wqkv}

    @staticmethod
    def reference(layer, hidden, allowed, ctx):
        window = _window(layer, ctx, ctx)
        if window is not None:
            allowed = allowed & window[:, 0]
        additive = torch.zeros(allowed.shape, dtype=hidden.dtype, device=hidden.device)
        additive = additive.masked_fill(~allowed, torch.finfo(hidden.dtype).min)[:, None]
        return layer(hidden, attention_mask=additive, position_embeddings=ctx.extra["rope"][layer.attention_type])


LAYER_OPS = ModernBertLayerOps


class ModernBertBackbone(Backbone):
    family = "ModernBERT"
    ops = ModernBertLayerOps

    @property
    def layers(self):
        return self.model.layers

    def set_layers(self, layers):
        # The first layer has no attention norm (its input is the normed embeddings); a cut must keep it first.
        first_has_no_norm = [isinstance(layer.attn_norm, nn.Identity) for layer in layers]
        if first_has_no_norm != [True] + [False] * (len(layers) - 1):
            raise ConfigError("a ModernBERT model must keep its first layer first (it alone has no attention norm); "
                              "select layers that start with layer 0.")
        self.model.layers = nn.ModuleList(layers)
        self.config.layer_types = [layer.attention_type for layer in layers]

    @property
    def hidden_dropout(self):
        return float(self.config.classifier_dropout)

    def embedding_modules(self):
        return {"embeddings": self.model.embeddings}

    def embed(self, input_ids, token_type_ids, position_ids, mask):
        return self.model.embeddings(input_ids=input_ids)

    def context(self, positions, like):
        if positions is None:
            raise ConfigError("ModernBERT layers need the tokens' positions; give the sides' position ids.")
        rope = {t: self.model.rotary_emb(like, positions, t) for t in set(self.config.layer_types)}
        return LayerContext(positions, {"rope": rope})

    def final_norm(self, hidden):
        return self.model.final_norm(hidden)

    @classmethod
    def head_activation(cls, config):
        name = config.classifier_activation
        if name not in ("gelu", "relu", "tanh"):
            raise ConfigError(f"ModernBERT classifier_activation={name!r} is not supported; lateint's cls head "
                              "has gelu, relu or tanh.")
        return name

    def cls_head_options(self):
        c = self.config
        return {"pooling": c.classifier_pooling, "dense_bias": bool(c.classifier_bias),
                "norm": nn.LayerNorm(c.hidden_size, eps=c.norm_eps, bias=c.norm_bias)}

    @staticmethod
    def classifier_parts(model):
        return {"dense": model.head.dense, "norm": model.head.norm, "out": model.classifier}

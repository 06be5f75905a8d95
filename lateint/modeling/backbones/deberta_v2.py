"""DeBERTa-v2/v3: BERT-like post-norm layers under ``encoder.layer`` whose attention
(``attention.self.{query,key,value}_proj``) adds disentangled relative-position terms
(content-to-position and position-to-content, over log-bucketed relative positions) to the
content scores; a ContextPooler before the classifier.

Relative positions are the differences of the tokens' position ids, as the layout placed them.
For the ``packed`` layout these are the index differences within the concatenated pair, which is
exactly what the model computes on the pair; ``offset`` puts every document token at least
``max_query_length - (query length)`` further from the query tokens, ``restart`` and ``separate``
give a query token and a document token at the same index the distance 0.
"""

from __future__ import annotations

import torch
from torch import nn

from lateint.errors import ConfigError
from lateint.modeling.backbones.base import Backbone, LayerContext
from lateint.modeling.backbones.bert import BertLayerOps


def _buckets(attn, relative: torch.Tensor) -> torch.Tensor:
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

    if attn.position_buckets > 0 and attn.max_relative_positions > 0:
        relative = make_log_bucket_position(relative, attn.position_buckets, attn.max_relative_positions)
    return relative.long()


def _scale_factor(attn) -> int:
    return 1 + ("c2p" in attn.pos_att_type) + ("p2c" in attn.pos_att_type)


class DebertaV2LayerOps(BertLayerOps):
    """DeBERTa's layer keeps BERT's output, intermediate and dropout modules (inherited); its
    attention differs: its own projections and the relative-position score terms."""

    packed_first_row = False  # relative positions enter the attention

    @staticmethod
    def heads(layer):
        attn = layer.attention.self
        return attn.num_attention_heads, attn.attention_head_size

    @classmethod
    def _split(cls, layer, x):
        n, d = cls.heads(layer)
        return x.view(*x.shape[:-1], n, d).transpose(-3, -2)

    @classmethod
    def query(cls, layer, rows, ctx):
        return cls._split(layer, layer.attention.self.query_proj(rows))

    @classmethod
    def keys_values(cls, layer, hidden, ctx):
        attn = layer.attention.self
        return cls._split(layer, attn.key_proj(hidden)), cls._split(layer, attn.value_proj(hidden))

    @classmethod
    def scale(cls, layer):
        return (cls.heads(layer)[1] * _scale_factor(layer.attention.self)) ** -0.5

    @classmethod
    def bias(cls, layer, q, k, row_ctx, ctx):
        attn = layer.attention.self
        if not attn.relative_attention:
            return None
        span = attn.pos_ebd_size
        relative = _buckets(attn, row_ctx.positions[:, :, None] - ctx.positions[:, None, :])
        index = torch.clamp(relative + span, 0, 2 * span - 1)[:, None]  # [B, 1, R, S]
        rel = attn.pos_dropout(ctx.extra["rel_embeddings"][: 2 * span])
        key_proj = attn.key_proj if attn.share_att_key else getattr(attn, "pos_key_proj", None)
        query_proj = attn.query_proj if attn.share_att_key else getattr(attn, "pos_query_proj", None)
        B, n, R, _ = q.shape
        S = k.shape[2]
        score = 0
        if "c2p" in attn.pos_att_type:
            c2p = torch.matmul(q, cls._split(layer, key_proj(rel)).transpose(-1, -2))  # [B, n, R, 2span]
            score = score + torch.gather(c2p, -1, index.expand(B, n, R, S))
        if "p2c" in attn.pos_att_type:
            p2c = torch.matmul(k, cls._split(layer, query_proj(rel)).transpose(-1, -2))  # [B, n, S, 2span]
            score = score + torch.gather(p2c, -1, index.transpose(-1, -2).expand(B, n, S, R)).transpose(-1, -2)
        return score * cls.scale(layer) if torch.is_tensor(score) else None

    @staticmethod
    def key_value_modules(layer):
        attn = layer.attention.self
        return {"key": attn.key_proj, "value": attn.value_proj}

    @staticmethod
    def reference(layer, hidden, allowed, ctx):
        # transformers shares one relative-position matrix across the batch, so each pair (whose
        # positions the layout set) runs on its own.
        attn = layer.attention.self
        out = []
        for b in range(hidden.shape[0]):
            pos = ctx.positions[b]
            relative = _buckets(attn, pos[:, None] - pos[None, :])[None]
            out.append(layer(hidden[b : b + 1], allowed[b : b + 1, None], relative_pos=relative,
                             rel_embeddings=ctx.extra["rel_embeddings"])[0])
        return torch.cat(out)


LAYER_OPS = DebertaV2LayerOps


class DebertaV2Backbone(Backbone):
    family = "DeBERTa-v2/v3"
    ops = DebertaV2LayerOps

    def __init__(self, model):
        super().__init__(model)
        if getattr(model.encoder, "conv", None) is not None:
            raise ConfigError("DeBERTa-v2 models with a convolution layer (conv_kernel_size > 0) are not supported.")

    @property
    def layers(self):
        return self.model.encoder.layer

    def set_layers(self, layers):
        self.model.encoder.layer = nn.ModuleList(layers)

    @property
    def hidden_dropout(self):
        c = self.config
        return float(getattr(c, "pooler_dropout", c.hidden_dropout_prob))

    def embedding_modules(self):
        return {"embeddings": self.model.embeddings}

    def embed(self, input_ids, token_type_ids, position_ids, mask):
        return self.model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids,
                                     mask=mask)

    def context(self, positions, like):
        if positions is None:
            raise ConfigError("DeBERTa layers need the tokens' positions; give the sides' position ids.")
        return LayerContext(positions, rel_embeddings=self.model.encoder.get_rel_embedding())

    @classmethod
    def head_activation(cls, config):
        name = getattr(config, "pooler_hidden_act", "gelu")
        if name not in ("gelu", "relu", "tanh"):
            raise ConfigError(f"DeBERTa pooler_hidden_act={name!r} is not supported; lateint's cls head has gelu, relu or tanh.")
        if getattr(config, "pooler_hidden_size", config.hidden_size) != config.hidden_size:
            raise ConfigError("DeBERTa models whose pooler_hidden_size differs from hidden_size are not supported.")
        return name

    @staticmethod
    def classifier_parts(model):
        return {"dense": model.pooler.dense, "norm": None, "out": model.classifier}

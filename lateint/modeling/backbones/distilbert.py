"""DistilBERT: post-norm ``TransformerBlock`` layers under ``transformer.layer`` with attention
``q_lin/k_lin/v_lin/out_lin``; absolute positions and no token types; its classification head is
``pre_classifier`` -> ReLU -> dropout -> ``classifier``."""

from __future__ import annotations

from torch import nn

from lateint.modeling.backbones.base import Backbone, LayerOps


class DistilBertLayerOps(LayerOps):
    @staticmethod
    def heads(layer):
        attn = layer.attention
        return attn.n_heads, attn.attention_head_size

    @classmethod
    def query(cls, layer, rows, ctx):
        n, d = cls.heads(layer)
        B, R, _ = rows.shape
        return layer.attention.q_lin(rows).view(B, R, n, d).transpose(1, 2)

    @classmethod
    def keys_values(cls, layer, hidden, ctx):
        attn = layer.attention
        n, d = cls.heads(layer)
        B, S, _ = hidden.shape
        return (attn.k_lin(hidden).view(B, S, n, d).transpose(1, 2),
                attn.v_lin(hidden).view(B, S, n, d).transpose(1, 2))

    @staticmethod
    def attention_dropout(layer):
        return layer.attention.dropout.p

    @staticmethod
    def finish(layer, context, rows):
        attended = layer.sa_layer_norm(layer.attention.out_lin(context) + rows)
        return layer.output_layer_norm(layer.ffn(attended) + attended)

    @staticmethod
    def feed_forward_output(layer):
        return layer.ffn.lin2

    @staticmethod
    def key_value_modules(layer):
        return {"key": layer.attention.k_lin, "value": layer.attention.v_lin}


LAYER_OPS = DistilBertLayerOps


class DistilBertBackbone(Backbone):
    family = "DistilBERT"
    ops = DistilBertLayerOps

    @property
    def layers(self):
        return self.model.transformer.layer

    def set_layers(self, layers):
        self.model.transformer.layer = nn.ModuleList(layers)
        self.model.transformer.n_layers = len(layers)

    @property
    def hidden_dropout(self):
        return float(self.config.seq_classif_dropout)

    def embedding_modules(self):
        return {"embeddings": self.model.embeddings}

    def embed(self, input_ids, token_type_ids, position_ids, mask):
        return self.model.embeddings(input_ids, None, position_ids)

    @classmethod
    def head_activation(cls, config):
        return "relu"

    @staticmethod
    def classifier_parts(model):
        return {"dense": model.pre_classifier, "norm": None, "out": model.classifier}

"""BERT, RoBERTa/XLM-R/CamemBERT and ELECTRA: post-norm layers ``attention.self.{query,key,value}``,
``attention.output``, ``intermediate``, ``output`` under ``encoder.layer``; absolute position and
token-type embeddings."""

from __future__ import annotations

from torch import nn

from lateint.errors import ConfigError
from lateint.modeling.backbones.base import Backbone, LayerOps


class BertLayerOps(LayerOps):
    @staticmethod
    def heads(layer: nn.Module) -> tuple[int, int]:
        attn = layer.attention.self
        n = getattr(attn, "num_attention_heads", None) or attn.config.num_attention_heads
        return n, attn.attention_head_size

    @classmethod
    def query(cls, layer, rows, ctx):
        n, d = cls.heads(layer)
        B, R, _ = rows.shape
        return layer.attention.self.query(rows).view(B, R, n, d).transpose(1, 2)

    @classmethod
    def keys_values(cls, layer, hidden, ctx):
        attn = layer.attention.self
        n, d = cls.heads(layer)
        B, S, _ = hidden.shape
        k = attn.key(hidden).view(B, S, n, d).transpose(1, 2)
        v = attn.value(hidden).view(B, S, n, d).transpose(1, 2)
        return k, v

    @staticmethod
    def attention_dropout(layer):
        return layer.attention.self.dropout.p

    @staticmethod
    def finish(layer, context, rows):
        attended = layer.attention.output(context, rows)
        return layer.output(layer.intermediate(attended), attended)

    @staticmethod
    def feed_forward_output(layer):
        return layer.output.dense

    @staticmethod
    def key_value_modules(layer):
        attn = layer.attention.self
        return {"key": attn.key, "value": attn.value}


class BertBackbone(Backbone):
    family = "BERT (also RoBERTa, XLM-R, CamemBERT, ELECTRA)"
    ops = BertLayerOps

    @property
    def layers(self):
        return self.model.encoder.layer

    def set_layers(self, layers):
        self.model.encoder.layer = nn.ModuleList(layers)

    def embedding_modules(self):
        modules = {"embeddings": self.model.embeddings}
        project = getattr(self.model, "embeddings_project", None)  # ELECTRA's embedding-to-hidden projection
        if project is not None:
            modules["embeddings_project"] = project
        return modules

    def embed(self, input_ids, token_type_ids, position_ids, mask):
        emb = self.model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=position_ids)
        project = getattr(self.model, "embeddings_project", None)
        return project(emb) if project is not None else emb

    @classmethod
    def head_activation(cls, config):
        return "gelu" if config.model_type == "electra" else "tanh"

    @staticmethod
    def classifier_parts(model):
        clf = getattr(model, "classifier", None)
        if clf is not None and hasattr(clf, "out_proj") and hasattr(clf, "dense"):
            return {"dense": clf.dense, "norm": None, "out": clf.out_proj}  # RoBERTa, ELECTRA
        if isinstance(clf, nn.Linear):
            pooler = getattr(model.base_model, "pooler", None)
            return {"dense": None if pooler is None else pooler.dense, "norm": None, "out": clf}
        raise ConfigError(
            f"{type(model).__name__} has a classification head lateint does not know how to read; "
            "supported: BERT-style (pooler + linear) and RoBERTa/ELECTRA-style (dense + out_proj)."
        )

    def pretrained_pooler(self):
        pooler = getattr(self.model, "pooler", None)
        return None if pooler is None else pooler.dense

    def drop_pooler(self):
        if getattr(self.model, "pooler", None) is not None:
            self.model.pooler = None

LAYER_OPS = BertLayerOps

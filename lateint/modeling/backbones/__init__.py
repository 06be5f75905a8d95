"""One adapter per encoder family, chosen through a table keyed on the ``transformers`` model type
(as ``transformers`` chooses its own per-family classes).

The split encoder, the heads, the representations and the caches use only the protocol of
:mod:`lateint.modeling.backbones.base`; each family's module names live in its adapter module.
"""

from __future__ import annotations

import importlib

from torch import nn

from lateint.errors import ConfigError
from lateint.modeling.backbones.base import Backbone, LayerContext, LayerOps

__all__ = ["Backbone", "LayerContext", "LayerOps", "SUPPORTED_FAMILIES", "backbone_for", "backbone_class",
           "check_model_type", "ops_for"]

#: ``transformers`` model type -> (adapter module, backbone class).
ADAPTERS: dict[str, tuple[str, str]] = {
    "bert": ("bert", "BertBackbone"),
    "roberta": ("bert", "BertBackbone"),
    "xlm-roberta": ("bert", "BertBackbone"),
    "camembert": ("bert", "BertBackbone"),
    "data2vec-text": ("bert", "BertBackbone"),
    "electra": ("bert", "BertBackbone"),
    "distilbert": ("distilbert", "DistilBertBackbone"),
    "deberta-v2": ("deberta_v2", "DebertaV2Backbone"),
    "modernbert": ("modernbert", "ModernBertBackbone"),
}
#: ``transformers`` layer class name -> adapter module (for the per-layer operations).
LAYER_CLASSES: dict[str, str] = {
    "BertLayer": "bert", "RobertaLayer": "bert", "XLMRobertaLayer": "bert", "CamembertLayer": "bert",
    "Data2VecTextLayer": "bert", "ElectraLayer": "bert",
    "TransformerBlock": "distilbert",
    "DebertaV2Layer": "deberta_v2",
    "ModernBertEncoderLayer": "modernbert",
}
#: The families as a user names them.
SUPPORTED_FAMILIES = "BERT, RoBERTa, XLM-R, ELECTRA, DistilBERT, DeBERTa-v2/v3 and ModernBERT"


def check_model_type(model_type: str | None) -> str:
    """``model_type`` if an adapter exists for it, else a one-line :class:`ConfigError`."""
    if model_type not in ADAPTERS:
        raise ConfigError(
            f"model type {model_type!r} is not supported: lateint splits encoder models of the families "
            f"{SUPPORTED_FAMILIES} (model types {', '.join(sorted(ADAPTERS))})."
        )
    return model_type


def backbone_class(model_type: str | None) -> type[Backbone]:
    module, name = ADAPTERS[check_model_type(model_type)]
    return getattr(importlib.import_module(f"lateint.modeling.backbones.{module}"), name)


def backbone_for(model: nn.Module) -> Backbone:
    """The adapter of a ``transformers`` base model."""
    return backbone_class(getattr(model.config, "model_type", None))(model)


def ops_for(layer: nn.Module) -> type[LayerOps]:
    """The per-layer operations of a ``transformers`` encoder layer module."""
    module = LAYER_CLASSES.get(type(layer).__name__)
    if module is None:
        raise ConfigError(f"{type(layer).__name__} is not a layer of a supported family ({SUPPORTED_FAMILIES}).")
    adapter = importlib.import_module(f"lateint.modeling.backbones.{module}")
    return adapter.LAYER_OPS

"""Ranking and distillation losses over score tensors and hidden states.

* :mod:`.ranking`: hard-label losses (pointwise BCE, RankNet, margin hinge, listwise CE);
* :mod:`.distillation`: teacher-score losses (score MSE, Margin-MSE, listwise KL with τ);
* :mod:`.intermediate`: TinyBERT embedding, hidden-state and attention-score losses, the layer map
  and :class:`IntermediateDistillation`;
* :mod:`.deformer`: DeFormer's upper-layer mimicry;
* :mod:`.registry`: score losses by name with one signature (the loss names are defined there);
* :mod:`.objective`: the training objective, the weighted sum of the enabled terms (Simplified
  TinyBERT's one-step objective and DeFormer's are instances of it).

Score tensors are ``[B, n]`` (a row of candidates per query, the positive in column 0 where a loss
needs one); masks have the same shape and mark real candidates with nonzero entries. Teachers are
always detached.
"""

from lateint.training.losses.deformer import upper_layer_mimicry
from lateint.training.losses.distillation import listwise_kl, margin_mse, score_mse
from lateint.training.losses.intermediate import (
    IntermediateDistillation,
    attention_score_mse,
    embedding_mse,
    hidden_mse,
    uniform_layer_map,
)
from lateint.training.losses.ranking import (
    first_column_labels,
    hinge_loss,
    listwise_ce,
    pointwise_bce,
    ranknet_loss,
)
from lateint.training.losses.objective import StudentObjective, combine_terms
from lateint.training.losses.registry import (
    HARD_LABEL_LOSSES,
    LOSSES,
    SOFT_LABEL_LOSSES,
    LossFn,
    get_loss,
    loss_names,
)

__all__ = [
    "HARD_LABEL_LOSSES",
    "LOSSES",
    "IntermediateDistillation",
    "LossFn",
    "SOFT_LABEL_LOSSES",
    "StudentObjective",
    "attention_score_mse",
    "combine_terms",
    "embedding_mse",
    "first_column_labels",
    "get_loss",
    "hidden_mse",
    "hinge_loss",
    "listwise_ce",
    "listwise_kl",
    "loss_names",
    "margin_mse",
    "pointwise_bce",
    "ranknet_loss",
    "score_mse",
    "uniform_layer_map",
    "upper_layer_mimicry",
]

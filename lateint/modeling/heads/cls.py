"""monoBERT's head: a score from the final [CLS] state (or, as ModernBERT's head may, the mean
state of the pair)."""

from __future__ import annotations

import torch
from torch import nn

from lateint.modeling.heads.base import Head

_ACTIVATIONS = {"tanh": nn.Tanh, "gelu": nn.GELU, "relu": nn.ReLU, "none": nn.Identity}


class ClsHead(Head):
    """``out(dropout(norm(act(dense(pool(h))))))``, one logit per pair.

    The optional dense layer with its activation is the pooler of BERT (tanh), the first layer of
    the RoBERTa (tanh) and ELECTRA (gelu) classification heads, DistilBERT's ``pre_classifier``
    (relu), DeBERTa's ContextPooler (gelu) or ModernBERT's prediction head (with its LayerNorm), so a
    ``transformers`` sequence classification checkpoint maps onto this head weight for weight.

    Args:
        pooling: ``cls`` (the final [CLS] state) or ``mean`` (the mean final state over the real
            tokens of the whole pair, ModernBERT's ``classifier_pooling='mean'``).
        norm: a LayerNorm after the activation (ModernBERT), or None.
        dense_bias: whether the dense layer has a bias.
    """

    def __init__(self, hidden_size: int, activation: str = "tanh", dropout: float = 0.1, *, pooling: str = "cls",
                 norm: nn.Module | None = None, dense_bias: bool = True):
        super().__init__()
        self.activation_name = activation
        self.pooling = pooling
        # Only the [CLS] row is read, so the last layer need not compute the others.
        self.reads_first_row_only = pooling == "cls"
        self.dense = None if activation == "none" else nn.Linear(hidden_size, hidden_size, bias=dense_bias)
        self.activation = _ACTIVATIONS[activation]()
        self.norm = norm
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, encoded) -> torch.Tensor:
        """Scores ``[B]`` from the final [CLS] state (row 0 of the query side) or the pair's mean state."""
        if self.pooling == "mean":
            states = torch.cat([encoded.query, encoded.doc], dim=1)
            m = encoded.mask[:, : states.shape[1]].unsqueeze(-1).to(states.dtype)
            x = (states * m).sum(dim=1) / m.sum(dim=1)
        else:
            x = encoded.query[:, 0]
        if self.dense is not None:
            x = self.activation(self.dense(self.dropout(x)))
        if self.norm is not None:
            x = self.norm(x)
        return self.out(self.dropout(x)).squeeze(-1)

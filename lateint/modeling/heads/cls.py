"""monoBERT's head: a score from the final [CLS] state."""

from __future__ import annotations

import torch
from torch import nn

from lateint.modeling.heads.base import Head

_ACTIVATIONS = {"tanh": nn.Tanh, "gelu": nn.GELU, "none": nn.Identity}


class ClsHead(Head):
    """``out(dropout(act(dense(h_cls))))``, one logit per pair.

    The optional dense layer with its activation is the pooler of BERT (tanh) or the first layer of
    the RoBERTa (tanh) and ELECTRA (gelu) classification heads, so a ``transformers`` sequence
    classification checkpoint maps onto this head weight for weight.
    """

    reads_first_row_only = True

    def __init__(self, hidden_size: int, activation: str = "tanh", dropout: float = 0.1):
        super().__init__()
        self.activation_name = activation
        self.dense = None if activation == "none" else nn.Linear(hidden_size, hidden_size)
        self.activation = _ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, 1)

    def forward(self, encoded) -> torch.Tensor:
        """Scores ``[B]`` from the final [CLS] state, row 0 of the query side."""
        x = encoded.query[:, 0]
        if self.dense is not None:
            x = self.activation(self.dense(self.dropout(x)))
        return self.out(self.dropout(x)).squeeze(-1)

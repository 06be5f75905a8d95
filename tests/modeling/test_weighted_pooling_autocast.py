"""TwinBERT's weighted pooling under bf16 autocast (as training with ``amp = "bf16"`` runs it)."""

import torch

from lateint.modeling.heads.pooling import Pooler


def test_weighted_pooling_runs_under_bf16_autocast_and_matches_fp32():
    torch.manual_seed(0)
    pooler = Pooler("weighted", 16)
    torch.nn.init.normal_(pooler.scorer.weight)  # a trained scorer, not the mean-pooling start
    states = torch.randn(2, 7, 16)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = pooler(states, mask)
    # the weighted average written out in fp32: padding gets no weight
    logits = states @ pooler.scorer.weight.detach()[0] + pooler.scorer.bias.detach()
    expected = torch.stack([
        (torch.softmax(logits[b][mask[b]], dim=0)[:, None] * states[b][mask[b]]).sum(dim=0) for b in range(2)
    ])
    assert torch.allclose(pooled.float(), expected, atol=0.05)

"""Save/load round trips keep the config and the weights, for every head."""

from __future__ import annotations

import json

import pytest
import torch

from lateint import SplitRanker


@pytest.mark.parametrize("split,head,options", [
    (3, "cls", {}),
    (6, "twin", {"pooling": "weighted", "crossing": "residual"}),
    (6, "maxsim", {"maxsim_dim": 24}),
    (6, "dipair", {"dipair_tokens": 5, "dipair_dim": 32, "dipair_layers": 2}),
    (4, "twin", {"pooling": "cls", "crossing": "dot", "layout": "restart"}),
])
def test_round_trip(tmp_path, minilm_path, pairs, split, head, options):
    ranker = SplitRanker.from_pretrained(minilm_path, split=split, head=head, max_doc_length=64, seed=3, **options)
    with torch.no_grad():  # move every head weight away from its initial value
        for p in ranker.head.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    expected = ranker.score(*pairs)
    ranker.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "lateint.json").read_text())
    assert saved["config"]["split"] == split
    restored = SplitRanker.from_pretrained(tmp_path)
    assert restored.config == ranker.config
    assert torch.equal(restored.score(*pairs), expected)


def test_restored_ranker_can_move_the_dial(tmp_path, minilm_path, pairs):
    ranker = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", max_doc_length=64)
    ranker.save_pretrained(tmp_path)
    at4 = SplitRanker.from_pretrained(tmp_path, split=4)
    assert at4.split == 4 and at4.config.sides.layout == "offset"
    direct = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", max_doc_length=64).at(4)
    assert torch.allclose(at4.score(*pairs), direct.score(*pairs), atol=1e-6)


def test_num_layers_keeps_the_first_layers(tmp_path, minilm_path, pairs):
    student = SplitRanker.from_pretrained(minilm_path, split=3, head="twin", num_layers=3)
    assert student.num_layers == 3 and len(student.encoder.layers) == 3
    full = SplitRanker.from_pretrained(minilm_path)
    assert torch.equal(student.encoder.layers[2].output.dense.weight, full.encoder.layers[2].output.dense.weight)
    student.save_pretrained(tmp_path)
    again = SplitRanker.from_pretrained(tmp_path)
    assert again.num_layers == 3
    assert torch.equal(again.score(*pairs), student.score(*pairs))

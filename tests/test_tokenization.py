"""Hand-checked sides, positions and token types for every layout."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from lateint.config import SideSettings
from lateint.tokenization import PairTokenizer

CLS, SEP = 101, 102
# bert-base-uncased vocabulary: "hello" = 7592, "world" = 2088, "good" = 2204, "day" = 2154
Q, D = "Hello world", "good day"


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(str(minilm_path))


def sides(tokenizer, layout, **kw):
    tok = PairTokenizer(tokenizer, SideSettings(layout=layout, max_query_length=8, max_doc_length=6, **kw), "bert")
    q = tok.query_batch(tok.query_sides([Q]))
    d = tok.doc_batch(tok.doc_sides([D]), [len(tok.query_sides([Q])[0])] if layout == "packed" else None)
    return q, d


@pytest.mark.parametrize("layout,doc_positions", [
    ("packed", [4, 5, 6]),   # right after the 4 query tokens
    ("offset", [8, 9, 10]),  # after max_query_length = 8
    ("restart", [0, 1, 2]),
])
def test_pair_layouts(tokenizer, layout, doc_positions):
    q, d = sides(tokenizer, layout)
    assert q.input_ids.tolist() == [[CLS, 7592, 2088, SEP]]
    assert q.token_type_ids.tolist() == [[0, 0, 0, 0]]
    assert q.position_ids.tolist() == [[0, 1, 2, 3]]
    assert d.input_ids.tolist() == [[2204, 2154, SEP]]
    assert d.token_type_ids.tolist() == [[1, 1, 1]]
    assert d.position_ids.tolist() == [doc_positions]


def test_separate_layout(tokenizer):
    q, d = sides(tokenizer, "separate")
    assert d.input_ids.tolist() == [[CLS, 2204, 2154, SEP]]
    assert d.token_type_ids.tolist() == [[0, 0, 0, 0]]
    assert d.position_ids.tolist() == [[0, 1, 2, 3]]


def test_packed_equals_the_tokenizers_own_pair(tokenizer):
    q, d = sides(tokenizer, "packed")
    enc = tokenizer(Q, D)
    assert q.input_ids[0].tolist() + d.input_ids[0].tolist() == enc["input_ids"]
    assert q.token_type_ids[0].tolist() + d.token_type_ids[0].tolist() == enc["token_type_ids"]


def test_truncation_counts_special_tokens(tokenizer):
    tok = PairTokenizer(tokenizer, SideSettings(max_query_length=4, max_doc_length=3), "bert")
    q = tok.query_sides(["one two three four five"])[0]
    d = tok.doc_sides(["one two three four five"])[0]
    assert len(q) == 4 and q.ids[0] == CLS and q.ids[-1] == SEP
    assert len(d) == 3 and d.ids[-1] == SEP


def test_padding_and_mask(tokenizer):
    tok = PairTokenizer(tokenizer, SideSettings(layout="offset", max_query_length=8, max_doc_length=8), "bert")
    d = tok.doc_batch(tok.doc_sides(["good day", "good"]))
    assert d.mask.tolist() == [[True, True, True], [True, True, False]]
    assert d.input_ids[1, 2].item() == 0  # [PAD]
    assert torch.equal(d.lengths, torch.tensor([3, 2]))

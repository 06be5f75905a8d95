"""Bad input gets a clear error that names the problem, not a stack trace from inside torch."""

from __future__ import annotations

import pytest

from lateint import ConfigError, DocCache, InputError, MissingResourceError, SplitRanker


@pytest.fixture(scope="module")
def ranker(minilm_path):
    return SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)


def test_lists_of_different_lengths(ranker):
    with pytest.raises(InputError, match="equal length, got 2 queries and 1 docs"):
        ranker.score(["a query", "another"], ["one doc"])


@pytest.mark.parametrize("queries,docs,where", [
    (["", "q"], ["d", "d"], r"queries\[0\] is empty"),
    (["q", "q"], ["d", "   "], r"docs\[1\] is empty or blank"),
    (["q"], [None], r"docs\[0\] is a NoneType"),
])
def test_empty_or_non_string_items(ranker, queries, docs, where):
    with pytest.raises(InputError, match=where):
        ranker.score(queries, docs)


def test_single_string_instead_of_list(ranker):
    with pytest.raises(InputError, match="list of strings, not a single string"):
        ranker.score("a query", "a doc")


@pytest.mark.parametrize("split", [-1, 7, 2.5])
def test_split_out_of_range(minilm_path, split):
    with pytest.raises(ConfigError, match="out of range.*T=6"):
        SplitRanker.from_pretrained(minilm_path, split=split, head="twin")


def test_cls_head_at_twin_end(minilm_path):
    with pytest.raises(ConfigError, match="head='cls'.*split=6=T"):
        SplitRanker.from_pretrained(minilm_path, split=6, head="cls")


@pytest.mark.parametrize("kwargs,message", [
    ({"head": "bogus"}, "head='bogus' is unknown"),
    ({"head": "twin", "pooling": "max"}, "pooling='max' is unknown"),
    ({"head": "twin", "crossing": "l2"}, "crossing='l2' is unknown"),
    ({"layout": "zigzag"}, "layout='zigzag' is unknown"),
    ({"max_query_length": 400, "max_doc_length": 400, "layout": "offset"}, "needs 800 positions"),
    ({"colour": "red"}, "unknown option"),
    ({"num_layers": 9}, "num_layers=9"),
])
def test_bad_options(minilm_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SplitRanker.from_pretrained(minilm_path, **{"split": 2, **kwargs})


def test_missing_model_folder(tmp_path):
    with pytest.raises(MissingResourceError, match="does not exist"):
        SplitRanker.from_pretrained(tmp_path / "no-such-model")


def test_folder_without_config(tmp_path):
    with pytest.raises(MissingResourceError, match="no config.json"):
        SplitRanker.from_pretrained(tmp_path)


def test_packed_layout_cannot_cache_documents(minilm_path, tmp_path):
    ranker = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", layout="packed", max_doc_length=64)
    with pytest.raises(ConfigError, match="cannot be cached"):
        DocCache.build(ranker, [("d1", "a document")], tmp_path / "cache", progress=False)


def test_default_document_length_fits_a_small_position_table(tiny_model):
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls")  # 160 positions
    assert (ranker.config.sides.max_query_length, ranker.config.sides.max_doc_length) == (32, 128)
    with pytest.raises(ConfigError, match="needs 256 positions"):
        SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=224)

"""The inference kernels of the Linear layers: packed fp32 and dynamic int8, against plain
``F.linear`` and the fp32 model as oracles."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from torch import nn

from lateint import SplitRanker
from lateint.errors import ConfigError
from lateint.modeling.linear_kernels import FastLinear, int8_available, packed_fp32_available, use_fast_linears

needs_packed = pytest.mark.skipif(not packed_fp32_available(), reason="this torch build has no oneDNN packed fp32 linear")
needs_int8 = pytest.mark.skipif(not int8_available(), reason="this torch build has no fbgemm int8 kernels")


def _linear(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    lin = nn.Linear(48, 96)
    use_fast_linears(lin)
    return lin


@needs_packed
@pytest.mark.parametrize("shape", [(1, 48), (7, 48), (3, 5, 48)])
def test_packed_fp32_matches_f_linear(shape):
    lin = _linear()
    x = torch.randn(*shape)
    with torch.no_grad():
        out = lin(x)
    assert isinstance(lin, FastLinear) and "_packed_copy" in lin.__dict__
    torch.testing.assert_close(out, F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


@needs_packed
def test_packed_copy_follows_in_place_weight_changes():
    lin = _linear()
    x = torch.randn(4, 48)
    with torch.no_grad():
        before = lin(x)
        lin.weight.mul_(2.0)  # an optimizer step or load_state_dict edits in place
        after = lin(x)
        expected_after = F.linear(x, lin.weight, lin.bias)
        lin.load_state_dict(_linear(seed=1).state_dict())
        loaded = lin(x)
        expected_loaded = F.linear(x, lin.weight, lin.bias)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected_after, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded, expected_loaded, rtol=1e-5, atol=1e-5)


def test_gradients_take_the_plain_path():
    lin = _linear()
    x = torch.randn(4, 48, requires_grad=True)
    lin(x).sum().backward()
    assert x.grad is not None and lin.weight.grad is not None
    expected = torch.autograd.grad(F.linear(x, lin.weight, lin.bias).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)


def test_fast_linears_pickle_and_copy_without_their_packed_weights():
    lin = _linear()
    with torch.no_grad():
        lin(torch.randn(2, 48))
    for clone in (copy.deepcopy(lin), pickle.loads(pickle.dumps(lin))):
        assert "_packed_copy" not in clone.__dict__
        x = torch.randn(3, 48)
        with torch.no_grad():
            torch.testing.assert_close(clone(x), lin(x))
    assert set(lin.state_dict()) == {"weight", "bias"}


def test_unknown_quantization_is_a_config_error(minilm_path):
    with pytest.raises(ConfigError, match="quantization"):
        use_fast_linears(nn.Linear(2, 2), "int4")
    with pytest.raises(ConfigError, match="quantization='int4' is unknown"):
        SplitRanker.from_pretrained(minilm_path, split=6, quantization="int4")


@needs_int8
@pytest.mark.parametrize("quantization", ["int8", "int8-except-ffn-output"])
def test_int8_ranker_stays_close_to_fp32_at_every_split(minilm_path, pairs, quantization):
    """The fp32 ranker is the oracle: per split, the int8 scores keep the ranking of a query's
    candidates (Kendall tau) and stay close in value."""
    queries, docs = pairs
    query = "how do plants use sunlight to make food"
    candidates = docs + [
        "Chlorophyll absorbs light, mostly in the blue and red wavelengths.",
        "The Calvin cycle fixes carbon dioxide into sugars inside the chloroplast stroma.",
        "Lobster fishing is regulated by season and trap limits.",
    ]
    fp32 = SplitRanker.from_pretrained(minilm_path, head="twin", pooling="mean", crossing="cosine", split=6)
    int8 = SplitRanker.from_pretrained(minilm_path, head="twin", pooling="mean", crossing="cosine", split=6,
                                       quantization=quantization)
    assert int8.config.quantization == quantization and fp32.config.quantization == "none"
    for split in (0, 3, 6):
        a = fp32.at(split).score([query] * len(candidates), candidates)
        b = int8.at(split).score([query] * len(candidates), candidates)
        assert not torch.equal(a, b), "int8 computed exactly the fp32 scores: the kernel did not run"
        assert (a - b).abs().max() < 0.05
        assert kendalltau(a.numpy(), b.numpy()).statistic >= 0.8


@needs_int8
def test_int8_setting_is_saved_and_separates_caches(minilm_path, tmp_path):
    from lateint.cache.doc_cache import DocCache
    from lateint.errors import CacheMismatchError
    from lateint.reranking import rerank

    int8 = SplitRanker.from_pretrained(minilm_path, split=3, head="twin", quantization="int8")
    folder = int8.save_pretrained(tmp_path / "model")
    assert SplitRanker.from_pretrained(folder).config.quantization == "int8"
    docs = [("a", "Lobsters are marine crustaceans."), ("b", "Photosynthesis makes glucose.")]
    cache = DocCache.build(int8, docs, tmp_path / "cache", storage="fp32", progress=False)
    assert rerank(int8, "lobster", ["a", "b"], cache)
    fp32 = SplitRanker.from_pretrained(minilm_path, split=3, head="twin")
    with pytest.raises(CacheMismatchError):
        rerank(fp32, "lobster", ["a", "b"], cache)
    mixed = SplitRanker.from_pretrained(minilm_path, split=3, head="twin", quantization="int8-except-ffn-output")
    with pytest.raises(CacheMismatchError, match="quantization: cache 'int8' vs ranker 'int8-except-ffn-output'"):
        rerank(mixed, "lobster", ["a", "b"], cache)


@needs_int8
def test_command_line_quantization_flag(minilm_path):
    import argparse

    from lateint.cli.common import add_model_arguments, load_ranker

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    args = parser.parse_args(["--model", str(minilm_path), "--split", "6", "--quantization", "int8"])
    assert load_ranker(args).config.quantization == "int8"
    args = parser.parse_args(["--model", str(minilm_path), "--split", "6", "--quantization", "int8-except-ffn-output"])
    assert load_ranker(args).config.quantization == "int8-except-ffn-output"
    with pytest.raises(SystemExit):
        parser.parse_args(["--quantization", "int4"])


@needs_int8
def test_int8_except_ffn_output_keeps_exactly_the_feed_forward_outputs_in_fp32(minilm_path):
    ranker = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", quantization="int8-except-ffn-output")
    kernels = {name: m.quantization for name, m in ranker.named_modules() if isinstance(m, FastLinear)}
    fp32 = sorted(name for name, kernel in kernels.items() if kernel == "none")
    assert fp32 == sorted(f"encoder.backbone.encoder.layer.{i}.output.dense" for i in range(6))
    assert {kernels[n] for n in kernels if n not in fp32} == {"int8"}
    # A view shares the modules and must not switch them back to all-int8 (or all-fp32).
    ranker.at(5)
    assert {n: m.quantization for n, m in ranker.named_modules() if isinstance(m, FastLinear)} == kernels


@needs_int8
def test_int8_except_ffn_output_is_between_fp32_and_int8(minilm_path):
    """Keeping the feed-forward outputs in fp32 must change the scores against plain int8 (the
    fp32 kernels ran) and must not be exactly fp32 (the int8 kernels ran too)."""
    texts = ["Chlorophyll absorbs light.", "The Calvin cycle fixes carbon dioxide.", "Lobster fishing is regulated."]
    query = "how do plants use sunlight"
    scores = {}
    for q in ("none", "int8", "int8-except-ffn-output"):
        r = SplitRanker.from_pretrained(minilm_path, split=0, head="twin", pooling="mean", crossing="cosine",
                                        quantization=q)
        scores[q] = r.score([query] * 3, texts)
    mixed = scores["int8-except-ffn-output"]
    assert not torch.equal(mixed, scores["int8"]) and not torch.equal(mixed, scores["none"])
    assert (mixed - scores["none"]).abs().max() < 0.05

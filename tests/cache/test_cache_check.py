"""The cache check is keyed on what determines the stored values, never on which object asks.

Each case first re-ranks successfully (so a check keyed on the object would remember it as
verified), then changes the ranker, and must be refused.
"""

from __future__ import annotations

import pytest
import torch

from lateint import CacheMismatchError, DocCache, SplitRanker, rerank

QUERY = "what is a lobster roll"
DOCS = [("d0", "A lobster roll is a sandwich of lobster meat on a hot dog bun."),
        ("d1", "Lobsters are marine crustaceans with long bodies."),
        ("d2", "The weather in Maine is cool in summer.")]


@pytest.fixture()
def built(tmp_path, minilm_path):
    ranker = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)
    cache = DocCache.build(ranker, DOCS, tmp_path / "c", storage="fp32", progress=False)
    rerank(ranker, QUERY, ["d0", "d1"], cache)
    return ranker, cache


def test_set_split_after_a_rerank_is_refused(built):
    ranker, cache = built
    ranker.set_split(4)
    with pytest.raises(CacheMismatchError, match="split: cache 3 vs ranker 4"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_a_view_at_another_split_is_refused_and_the_original_still_fits(built):
    ranker, cache = built
    with pytest.raises(CacheMismatchError, match="split"):
        rerank(ranker.at(4), QUERY, ["d0"], cache)
    assert ranker.split == 3
    rerank(ranker, QUERY, ["d0"], cache)


def test_in_place_change_of_a_lower_layer_after_a_rerank_is_refused(built):
    ranker, cache = built
    with torch.no_grad():
        ranker.encoder.layers[1].output.dense.bias.add_(1e-3)
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_an_optimizer_step_on_a_lower_layer_is_refused(built):
    ranker, cache = built
    ranker.train()
    opt = torch.optim.SGD(ranker.encoder.layers[0].parameters(), lr=1e-3)
    qb, db = ranker.pair_batches(ranker.query_sides([QUERY]), ranker.doc_sides([DOCS[0][1]]))
    ranker(qb, db).sum().backward()
    opt.step()
    ranker.eval()
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_weights_loaded_from_another_model_are_refused(built, minilm_path):
    ranker, cache = built
    other = SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=64)
    with torch.no_grad():
        other.encoder.layers[0].attention.self.query.weight.mul_(1.01)
    ranker.load_state_dict(other.state_dict())
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_changing_upper_layers_keeps_the_cache_valid_and_scores_follow(built):
    ranker, cache = built
    before = rerank(ranker, QUERY, ["d0", "d1", "d2"], cache)
    with torch.no_grad():
        ranker.encoder.layers[5].output.dense.bias.add_(0.05)
    after = rerank(ranker, QUERY, ["d0", "d1", "d2"], cache)
    exact = ranker.score([QUERY] * 3, [t for _, t in DOCS])
    assert torch.allclose(torch.tensor(list(after.values())), exact, atol=1e-5)
    assert before != after


def test_at_shares_weights_and_leaves_the_original_alone(minilm_path):
    ranker = SplitRanker.from_pretrained(minilm_path, split=2, head="cls", max_doc_length=64)
    view = ranker.at(5)
    assert (ranker.split, view.split) == (2, 5)
    assert view.encoder is ranker.encoder and view.head is ranker.head
    with torch.no_grad():
        ranker.head.out.bias.add_(1.0)
    a = ranker.at(5).score([QUERY], [DOCS[0][1]])
    b = view.score([QUERY], [DOCS[0][1]])
    assert torch.equal(a, b)


def test_a_replaced_parameter_is_refused(built):
    ranker, cache = built
    dense = ranker.encoder.layers[2].attention.self.value
    dense.weight = torch.nn.Parameter(dense.weight.detach() * 1.01)
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_a_replaced_submodule_is_refused(built):
    ranker, cache = built
    old = ranker.encoder.layers[0].intermediate.dense
    new = torch.nn.Linear(old.in_features, old.out_features)
    with torch.no_grad():
        new.weight.copy_(old.weight * 0.99)
        new.bias.copy_(old.bias)
    ranker.encoder.layers[0].intermediate.dense = new
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_data_re_pointed_without_a_version_bump_is_refused(built):
    ranker, cache = built
    bias = ranker.encoder.embedding_modules()["embeddings"].LayerNorm.bias
    bias.data = bias.data + 1e-3
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_restored_weights_are_accepted_again(built):
    ranker, cache = built
    layer = ranker.encoder.layers[1].output.dense
    saved = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.mul_(1.01)
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)
    with torch.no_grad():
        layer.weight.copy_(saved)
    assert set(rerank(ranker, QUERY, ["d0", "d1"], cache)) == {"d0", "d1"}


def test_a_parameter_put_in_its_dict_directly_is_refused(built):
    """Bypasses Module.__setattr__ (and torch's registration hooks), as Module._apply can."""
    ranker, cache = built
    key = ranker.encoder.layers[1].attention.self.key
    key._parameters["weight"] = torch.nn.Parameter(key.weight.detach() * 1.01)
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)


def test_a_layer_swapped_in_its_list_is_refused(built):
    ranker, cache = built
    layers = ranker.encoder.layers
    layers[0], layers[1] = layers[1], layers[0]
    with pytest.raises(CacheMismatchError, match="different model weights"):
        rerank(ranker, QUERY, ["d0"], cache)

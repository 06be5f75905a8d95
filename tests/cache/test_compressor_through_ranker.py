"""A compressor trained through the ranker keeps the uncompressed model's rankings better than an
untrained one; the compressed cache re-ranks with the fine-tuned ranker exactly as its in-memory
compressed scoring does; the pair (ranker, compressor) saves and loads; bad settings are refused."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lateint import ConfigError, DocCache, InputError, SplitRanker, rerank
from lateint.cache.codecs import get_codec
from lateint.cache.compression import StateCompressor
from lateint.training.compressor import pairwise_margin_mse, simulate_storage, train_compressor_through_ranker

WORDS = ("lobster roll sandwich bun meat plants sunlight glucose energy diabetes insulin metformin doctor "
         "species darwin evolution mountain everest height rain cloud water vapour river ocean fish ship "
         "engine car road city music piano song film actor history war king queen castle bread cheese wine "
         "coffee tea sugar salt heart blood brain cell gene protein virus vaccine school student teacher").split()


# Narrow enough that an untrained compressor loses most of the ranking, wide enough to learn it back.
DIM = 16


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tensors here are small: on a busy machine, threads cost more in synchronisation than they gain.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _groups(seed: int, n: int, docs: int = 6) -> list[tuple[str, list[str]]]:
    """``n`` queries with ``docs`` candidates each that share some of the query's words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic = rng.sample(WORDS, 4)
        query = " ".join(rng.sample(topic, 3))
        cands = []
        for _ in range(docs):
            words = rng.sample(topic, rng.randint(0, 3)) + rng.sample(WORDS, rng.randint(4, 12))
            rng.shuffle(words)
            cands.append(" ".join(words))
        out.append((query, cands))
    return out


def _kendall_tau(a, b) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


@pytest.fixture(scope="module")
def teacher(minilm_path):
    return SplitRanker.from_pretrained(minilm_path, split=1, head="twin", num_layers=2,
                                       max_query_length=16, max_doc_length=24)


@pytest.fixture(scope="module")
def trained(teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    comp, student, info = train_compressor_through_ranker(
        teacher, _groups(0, 80), dim=DIM, steps=60, queries_per_step=4, docs_per_query=6,
        lr=1e-4, compressor_lr=3e-3, reconstruction_steps=0, storage="fp32", held_out=6, seed=0)
    after = teacher.state_dict()
    unchanged = all(torch.equal(before[k], after[k]) for k in before)
    return comp, student, info, unchanged


def _compressed_scores(ranker, comp, query: str, docs: list[str], storage: str = "fp32") -> np.ndarray:
    """In-memory scores of ``docs`` through ``decompress(stored(compress(states)))``."""
    with torch.no_grad():
        qb = ranker.query_batch(ranker.query_sides([query] * len(docs)))
        db = ranker.doc_batch(ranker.doc_sides(docs))
        codes = simulate_storage(comp.compress(ranker.lower_states(db)), storage)
        return ranker.score_states(ranker.lower_states(qb), qb.mask, comp.decompress(codes), db.mask).numpy()


def test_training_lowers_the_loss_and_keeps_rankings(teacher, trained):
    comp, student, info, unchanged = trained
    assert unchanged, "the teacher must not change"
    assert info.steps == 60 and info.held_out_queries == 6 and info.training_queries == 74
    assert info.final_loss < 0.7 * info.initial_loss
    assert info.held_out_initial_loss is not None and info.held_out_final_loss is not None
    # Groups never trained on (another seed): rankings of the trained pair against the uncompressed
    # teacher, and of the teacher with an untrained compressor of the same width (where training
    # started: no auto-encoder steps).
    torch.manual_seed(0)  # the training's seed: the same initial weights
    untrained = StateCompressor(teacher.encoder.hidden_size, DIM).eval()
    taus_trained, taus_untrained, mse_trained, mse_untrained = [], [], [], []
    for query, docs in _groups(1, 12):
        exact = teacher.score([query] * len(docs), docs).numpy()
        ours = _compressed_scores(student, comp, query, docs)
        base = _compressed_scores(teacher, untrained, query, docs)
        taus_trained.append(_kendall_tau(exact, ours))
        taus_untrained.append(_kendall_tau(exact, base))
        t = torch.tensor(exact)[None]
        mse_trained.append(pairwise_margin_mse(torch.tensor(ours)[None], t).item())
        mse_untrained.append(pairwise_margin_mse(torch.tensor(base)[None], t).item())
    assert np.mean(taus_trained) > np.mean(taus_untrained) + 0.1
    assert np.mean(mse_trained) < 0.8 * np.mean(mse_untrained)


@pytest.mark.parametrize("storage", ["fp32", "int8"])
def test_cache_scores_equal_in_memory_compressed_scores(tmp_path, trained, storage):
    comp, student, _, _ = trained
    query, texts = _groups(2, 1, docs=8)[0]
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    cache = DocCache.build(student, docs, tmp_path / "c", storage=storage, compressor=comp, progress=False)
    assert cache.info()["fields"]["states"]["shape"] == [DIM]
    got = np.array(list(rerank(student, query, [d for d, _ in docs], cache).values()))
    want = _compressed_scores(student, comp, query, texts, storage)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_pairwise_margin_mse_by_hand():
    student = torch.tensor([[1.0, 0.0, 2.0]])
    teacher = torch.tensor([[0.5, 0.5, 0.5]])
    # margins (0,1), (0,2), (1,2): student 1, -1, -2; teacher 0, 0, 0.
    assert pairwise_margin_mse(student, teacher).item() == pytest.approx((1 + 1 + 4) / 3)
    # Only differences within a query count: a per-query offset costs nothing.
    assert pairwise_margin_mse(student + torch.tensor([[3.0]]), student).item() == 0.0


def test_simulated_int8_equals_the_codec():
    x = torch.randn(50, 7) * torch.rand(50, 1) * 3
    x[3] = 0
    codec = get_codec("int8")
    stored = codec.decode(codec.encode(x.numpy()), 7)
    np.testing.assert_array_equal(simulate_storage(x, "int8").numpy(), stored)
    # The rounding passes the gradient through unchanged.
    y = x.clone().requires_grad_(True)
    simulate_storage(y, "int8").sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))


def test_save_load_round_trip(tmp_path, trained):
    comp, student, _, _ = trained
    folder = tmp_path / "model"
    student.save_pretrained(folder)
    comp.save(folder)
    loaded = SplitRanker.from_pretrained(folder)
    loaded_comp = StateCompressor.load(folder)
    assert loaded.split == student.split and loaded_comp.dim == comp.dim
    query, texts = _groups(3, 1)[0]
    np.testing.assert_allclose(_compressed_scores(loaded, loaded_comp, query, texts),
                               _compressed_scores(student, comp, query, texts), atol=1e-6)
    # A cache built with the saved pair serves the loaded pair (same lower layers and compressor).
    docs = [(f"d{i}", t) for i, t in enumerate(texts)]
    cache = DocCache.build(student, docs, tmp_path / "c", storage="fp16", compressor=comp, progress=False)
    got = np.array(list(rerank(loaded, query, [d for d, _ in docs], DocCache.open(tmp_path / "c")).values()))
    np.testing.assert_allclose(got, _compressed_scores(student, comp, query, texts, "fp16"), atol=1e-5)
    assert cache.info()["fields"]["states"]["bytes_per_token"] == 2 * DIM


def test_same_seed_same_result(teacher):
    groups = _groups(4, 6, docs=4)
    runs = [train_compressor_through_ranker(teacher, groups, dim=3, steps=3, queries_per_step=2, docs_per_query=3,
                                            reconstruction_steps=2, storage="int8", seed=7) for _ in range(2)]
    (c1, s1, i1), (c2, s2, i2) = runs
    assert i1.losses == i2.losses
    for a, b in zip(c1.state_dict().values(), c2.state_dict().values()):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(s1.state_dict().values(), s2.state_dict().values()))


@pytest.mark.parametrize("options,error,match", [
    ({"dim": 0}, ConfigError, "dim=0"),
    ({"dim": 10_000}, ConfigError, "hidden size"),
    ({"storage": "bf16"}, ConfigError, "storage"),
    ({"steps": 0}, ConfigError, "steps"),
    ({"docs_per_query": 1}, ConfigError, "docs_per_query"),
    ({"groups": []}, InputError, "at least 2 candidate"),
    ({"groups": [("a query", ["only one doc"])]}, InputError, "at least 2 candidate"),
    ({"groups": [("a query", ["one doc", ""])]}, InputError, "non-empty"),
    ({"groups": ["just a string"]}, InputError, "pairs"),
    ({"held_out": 2}, InputError, "held_out"),
])
def test_bad_settings(teacher, options, error, match):
    kwargs = {"groups": _groups(5, 2, docs=3), "dim": 4, "steps": 1, **options}
    with pytest.raises(error, match=match):
        train_compressor_through_ranker(teacher, **kwargs)


@pytest.mark.parametrize("split", [0, 2])
def test_split_must_leave_joint_layers(teacher, split):
    with pytest.raises(ConfigError, match="0 < split < T"):
        train_compressor_through_ranker(teacher.at(split), _groups(5, 2), dim=4, steps=1)


def test_the_teachers_modes_are_given_back_module_by_module(minilm_path):
    """A teacher in training mode with one submodule set to evaluation by the caller comes back
    exactly so: the training ran the teacher without dropout and touched no other mode."""
    teacher = SplitRanker.from_pretrained(minilm_path, split=1, head="twin", num_layers=2,
                                          max_query_length=16, max_doc_length=24)
    teacher.train()
    teacher.encoder.layers[1].eval()
    modes = {name: m.training for name, m in teacher.named_modules()}
    train_compressor_through_ranker(teacher, _groups(1, 12), dim=DIM, steps=2, queries_per_step=2,
                                    docs_per_query=3, reconstruction_steps=0, storage="fp32", held_out=2, seed=0)
    assert {name: m.training for name, m in teacher.named_modules()} == modes

"""A re-ranked run records the ranker that wrote it; resuming it with another ranker, split, tag or
storage is refused instead of mixing two rankers in one run. A blank query is refused by its id."""

from __future__ import annotations

import pytest
import torch

from lateint import CacheMismatchError, InputError, SplitRanker
from lateint.data import read_run
from lateint.pipeline.rerank_run import PRODUCER_SUFFIX, rerank_dataset

DOCS = {f"d{i}": f"passage {i} about the lobster roll and its history number {i}" for i in range(12)}
QUERIES = {"q1": "what is a lobster roll", "q2": "history of lobster", "q3": "roll number", "q4": "passage"}


class TinyDataset:
    irds_id = "tiny/test"

    def __init__(self, queries=QUERIES):
        self._queries = dict(queries)

    def queries(self):
        return self._queries

    def doc_text(self, ids):
        return {d: DOCS[d] for d in ids if d in DOCS}


CANDIDATES = {q: [(f"d{(i + j) % 12}", 10.0 - j) for j in range(5)] for i, q in enumerate(QUERIES)}


@pytest.fixture(scope="module")
def ranker(tiny_model):
    return SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=32)


def first_half(ranker, out, **kwargs):
    half = {q: CANDIDATES[q] for q in list(CANDIDATES)[:2]}
    rerank_dataset(ranker, TinyDataset(), half, out, tag=kwargs.pop("tag", "t"), progress=False, **kwargs)
    return out.read_bytes()


def test_same_ranker_resumes(ranker, tmp_path):
    out = tmp_path / "run.trec"
    first_half(ranker, out)
    report = rerank_dataset(ranker, TinyDataset(), CANDIDATES, out, tag="t", progress=False)
    assert report.scored_now == 2 and sorted(read_run(out)) == sorted(QUERIES)
    assert (tmp_path / f"run.trec{PRODUCER_SUFFIX}").is_file()


def other_weights(ranker, tiny_model):
    other = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=32)
    with torch.no_grad():
        other.head.out.weight.mul_(-1)
    return other


@pytest.mark.parametrize("change", ["weights", "split", "tag", "storage", "lengths"])
def test_another_producer_is_refused(ranker, tiny_model, tmp_path, change):
    out = tmp_path / "run.trec"
    before = first_half(ranker, out)
    kwargs = {"tag": "t"}
    resumer = ranker
    if change == "weights":
        resumer = other_weights(ranker, tiny_model)
    elif change == "split":
        resumer = ranker.at(0)
    elif change == "tag":
        kwargs["tag"] = "other"
    elif change == "storage":
        kwargs["storage"] = "int8"
    elif change == "lengths":
        resumer = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=24)
    with pytest.raises(CacheMismatchError, match="another ranker or setup"):
        rerank_dataset(resumer, TinyDataset(), CANDIDATES, out, progress=False, **kwargs)
    assert out.read_bytes() == before


def test_a_run_without_its_record_is_not_resumed(ranker, tmp_path):
    out = tmp_path / "run.trec"
    before = first_half(ranker, out)
    (tmp_path / f"run.trec{PRODUCER_SUFFIX}").unlink()
    with pytest.raises(CacheMismatchError, match="no readable record"):
        rerank_dataset(ranker, TinyDataset(), CANDIDATES, out, tag="t", progress=False)
    assert out.read_bytes() == before


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_a_blank_query_is_named(ranker, tmp_path, text):
    dataset = TinyDataset({**QUERIES, "q3": text})
    with pytest.raises(InputError, match="q3"):
        rerank_dataset(ranker, dataset, CANDIDATES, tmp_path / "run.trec", tag="t", progress=False)

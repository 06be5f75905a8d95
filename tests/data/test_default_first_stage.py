"""The default first stage exists with and without the local files: ``bm25`` names the dataset's
own scoreddocs where they are BM25, and an unknown name says which runs exist."""

from __future__ import annotations

import logging

import pytest

from lateint.data import load_dataset
from lateint.errors import InputError
from lateint.sweep.config import load_sweep_config
from lateint.sweep.runner import _candidates

DL19 = "msmarco-passage/trec-dl-2019/judged"


def _write_local_dl19(folder, scored: bool):
    """A tiny stand-in for the public DL19 files: 2 queries, 150 documents each in scoreddocs
    (MS MARCO style ``qid<TAB>pid`` lines without scores, or TREC lines with scores)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.tsv").write_text("".join(f"p{i}\tpassage number {i}\n" for i in range(300)))
    (folder / "queries.tsv").write_text("q1\tfirst query\nq2\tsecond query\n")
    (folder / "qrels.txt").write_text("q1 0 p3 2\nq2 0 p160 3\n")
    lines = []
    for n, qid in enumerate(("q1", "q2")):
        for rank in range(150):
            doc = f"p{n * 150 + (rank * 7) % 150}"
            lines.append(f"{qid} Q0 {doc} {rank + 1} {1000.0 - rank} bm25\n" if scored else f"{qid}\t{doc}\n")
    (folder / "scoreddocs.run").write_text("".join(lines))
    return lines


@pytest.fixture
def public_dl19_offline(irdata, tmp_path, monkeypatch):
    """``msmarco-passage/trec-dl-2019/judged`` served by local files registered under its own id
    (nothing downloads), with ``LATEINT_DATA`` unset."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import GenericDoc, GenericQuery, TrecQrels, TrecScoredDocs, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    monkeypatch.delenv("LATEINT_DATA")

    def register(scored: bool):
        folder = tmp_path / ("scored" if scored else "unscored")
        lines = _write_local_dl19(folder, scored)
        dataset = Dataset(TsvDocs(LocalDownload(folder / "docs.tsv"), doc_cls=GenericDoc, namespace="t"),
                          TsvQueries(LocalDownload(folder / "queries.tsv"), query_cls=GenericQuery, namespace="t"),
                          TrecQrels(LocalDownload(folder / "qrels.txt"), {}),
                          TrecScoredDocs(LocalDownload(folder / "scoreddocs.run")))
        monkeypatch.setitem(ir_datasets.registry._registered, DL19, dataset)
        return lines

    return register


def test_default_sweep_resolves_bm25_to_scoreddocs_without_the_share(public_dl19_offline):
    lines = public_dl19_offline(scored=True)
    config = load_sweep_config()
    assert (config.data.dataset, config.data.first_stage, config.data.depth) == (DL19, "bm25", 100)
    dataset = load_dataset(config.data.dataset)
    assert dataset.irds_id == DL19  # the public id, not the local subset
    candidates = _candidates(config, dataset)
    # oracle: the top 100 of each query by the score column of the file
    for qid in ("q1", "q2"):
        rows = [line.split() for line in lines if line.startswith(qid + " ")]
        expected = [(row[2], float(row[4])) for row in sorted(rows, key=lambda row: -float(row[4]))[:100]]
        assert candidates[qid] == expected


def test_unscored_scoreddocs_keep_every_candidate(public_dl19_offline, caplog):
    lines = public_dl19_offline(scored=False)
    config = load_sweep_config()
    with caplog.at_level(logging.WARNING, logger="lateint.data.datasets"):
        candidates = _candidates(config, load_dataset(config.data.dataset))
    assert "carry no scores" in caplog.text
    for qid in ("q1", "q2"):
        assert {doc for doc, _ in candidates[qid]} == {line.split()[1] for line in lines if line.startswith(qid + "\t")}
        assert len(candidates[qid]) == 150


def test_unknown_run_names_the_runs_and_the_scoreddocs_default(public_dl19_offline):
    public_dl19_offline(scored=True)
    with pytest.raises(InputError, match=r"'tasb' is neither a run known for .*\(known: none.*"
                                         r"default first stage is the dataset's own scoreddocs \(also called 'bm25'\)"):
        load_dataset(DL19).candidates("tasb", 100)


def test_unknown_run_on_a_dataset_without_scoreddocs(irdata):
    with pytest.raises(InputError, match=r"'bm25' is neither a run known for 'beir/scifact/test'.*"
                                         r"has no scoreddocs of its own.*lateint retrieve"):
        load_dataset("beir/scifact/test").candidates("bm25", 100)


def test_with_the_share_the_default_sweep_reranks_the_local_bm25_run(irdata):
    """The table with the local files is unchanged: its candidates are the BM25 top-100 file."""
    config = load_sweep_config()
    candidates = _candidates(config, load_dataset(config.data.dataset))
    rows: dict[str, list[tuple[str, float]]] = {}
    with open(irdata / "msmarco-passage-trec-dl-2019" / "runs" / "bm25.top100.trec", encoding="utf-8") as run:
        for line in run:
            qid, _, doc, _, score, _ = line.split()
            rows.setdefault(qid, []).append((doc, float(score)))
    expected = {qid: sorted(docs, key=lambda item: (-item[1], item[0]))[:100] for qid, docs in rows.items()}
    assert candidates == expected
    # and they are the local dataset's own scoreddocs
    assert load_dataset(config.data.dataset).candidates(None, 100) == expected


def test_streamed_training_resolves_names_as_every_first_stage(public_dl19_offline, tmp_path):
    from lateint.data.first_stage import run_file
    from lateint.training.config import TrainConfig
    from lateint.training.streams import group_stream

    public_dl19_offline(scored=True)
    handle = load_dataset(DL19)
    assert run_file(handle, "bm25") is None and run_file(handle, None) is None
    config = TrainConfig.from_dict({"model": "unused", "output": str(tmp_path / "out"), "steps": 1,
                                    "data": {"dataset": DL19, "run": "bm25", "negatives": 2, "depth": 100,
                                             "shuffle_buffer": 4}})
    groups = list(group_stream(config, handle))  # from the scoreddocs, as the sweep's first stage
    assert groups and {g.qid for g in groups} <= {"q1", "q2"} and all(g.doc_ids[0] in {"p3", "p160"} for g in groups)
    config.data.run = "tasb"
    with pytest.raises(InputError, match="'tasb' is neither a run known.*dataset's own scoreddocs"):
        list(group_stream(config, handle))

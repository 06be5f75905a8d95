"""``[data] hf_dataset``: sentence-transformers' column conventions, streamed, texts inline or ids."""

from __future__ import annotations

import json

import pytest

from lateint.errors import InputError
from lateint.training.batches import ShuffledGroups, StreamedGroups
from lateint.training.config import DEFAULT_SHUFFLE_BUFFER
from lateint.training.hf_source import layout_of
from lateint.training.trainer import Trainer

DL19 = "msmarco-passage/trec-dl-2019/judged"
ROWS = [
    {"query": "what is a lobster roll", "positive": "A lobster roll is a sandwich of lobster meat.",
     "negative": "Photosynthesis turns sunlight into sugar."},
    {"query": "who wrote the origin of species", "positive": "Charles Darwin wrote On the Origin of Species.",
     "negative": "Lobsters are marine crustaceans."},
    {"query": "how do plants make energy", "positive": "Plants make energy from sunlight by photosynthesis.",
     "negative": "Metformin treats type 2 diabetes."},
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _config(make_config, model, hf, **overrides):
    data = {"hf_dataset": str(hf), **overrides.pop("data", {})}
    return make_config(model, steps=overrides.pop("steps", 3), batch_size=2, data=data, **overrides)


def test_a_jsonl_triplet_file_trains(make_config, student_model, tmp_path):
    hf = _jsonl(tmp_path / "triplets.jsonl", ROWS)
    trainer = Trainer(_config(make_config, student_model, hf))
    assert isinstance(trainer.source, StreamedGroups) and trainer.source.buffer == DEFAULT_SHUFFLE_BUFFER
    groups = trainer.source.take(0, 3)
    assert sorted((g.query, g.docs, g.labels) for g in groups) == sorted(
        (r["query"], (r["positive"], r["negative"]), (1.0, 0.0)) for r in ROWS)
    result = trainer.train()
    log = [json.loads(line) for line in result.loss_log.read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r["loss"] > 0 for r in log)


def test_shuffle_buffer_zero_holds_every_group(make_config, student_model, tmp_path):
    hf = _jsonl(tmp_path / "triplets.jsonl", ROWS)
    trainer = Trainer(_config(make_config, student_model, hf, data={"shuffle_buffer": 0}))
    assert isinstance(trainer.source, ShuffledGroups) and len(trainer.groups) == 3


def test_hard_negative_lists_with_teacher_scores_feed_margin_mse(make_config, student_model, tmp_path):
    rows = [{"anchor": r["query"], "positive": r["positive"], "negative_1": r["negative"], "negative_2": "x" * (i + 1),
             "scores": [5.0 + i, 1.0, -1.0]} for i, r in enumerate(ROWS)]
    hf = _jsonl(tmp_path / "hard.jsonl", rows)
    config = _config(make_config, student_model, hf, loss={"hard": "none", "soft": "kl"})
    trainer = Trainer(config)
    trainer.setup()
    groups = trainer.source.take(0, 2)
    batch = trainer.collate(groups)
    by_query = {r["anchor"]: r["scores"] for r in rows}
    assert [list(map(float, row)) for row in batch.teacher_scores.tolist()] == [by_query[g.query] for g in groups]
    assert trainer.train().steps == 3


def test_a_margin_beside_one_negative_is_the_teacher_margin(tmp_path):
    from lateint.training.hf_source import hf_groups

    hf = _jsonl(tmp_path / "margin.jsonl", [{**ROWS[0], "label": 2.5}])
    layout, epoch = hf_groups(str(hf), "train", negatives=1)
    [group] = list(epoch())
    assert layout.scores == "label" and group.teacher_scores == (2.5, 0.0)


def test_labelled_pairs_and_a_negatives_list(tmp_path):
    from lateint.training.hf_source import hf_groups

    pairs = _jsonl(tmp_path / "pairs.jsonl", [{"query": "q one", "passage": "a passage", "label": 1},
                                              {"query": "q two", "passage": "another", "label": 0}])
    _, epoch = hf_groups(str(pairs), "train", negatives=1)
    assert [(g.query, g.docs, g.labels) for g in epoch()] == [("q one", ("a passage",), (1.0,)),
                                                               ("q two", ("another",), (0.0,))]
    listed = _jsonl(tmp_path / "listed.jsonl", [{"query": "q", "positive": "p", "negatives": ["n1", "n2", "n3"]}])
    _, epoch = hf_groups(str(listed), "train", negatives=2)
    assert [g.docs for g in epoch()] == [("p", "n1", "n2")]


def test_ids_are_looked_up_in_the_dataset(make_config, student_model, tmp_path, irdata):
    from lateint.data import load_dataset

    ds = load_dataset(DL19)
    qrels = ds.qrels()
    candidates = ds.candidates("bm25", 20)
    rows = []
    for qid in sorted(candidates):  # judged documents the subset's passages hold: those of the run
        pos = [d for d, _ in candidates[qid] if qrels[qid].get(d, 0) >= 2]
        neg = [d for d, _ in candidates[qid] if qrels[qid].get(d, 0) == 0]
        if pos and neg and len(rows) < 4:
            rows.append({"query_id": qid, "positive_id": pos[0], "negative_id": neg[0]})
    hf = _jsonl(tmp_path / "ids.jsonl", rows)
    trainer = Trainer(_config(make_config, student_model, hf, data={"dataset": DL19}))
    groups = trainer.source.take(0, 4)
    for g in groups:
        assert g.query == ds.query_text([g.qid])[g.qid]
        assert g.docs == tuple(ds.doc_text(g.doc_ids)[d] for d in g.doc_ids)
    assert trainer.train().steps == 3
    with pytest.raises(InputError, match="holds ids .*set data.dataset"):
        _ = Trainer(_config(make_config, student_model, hf)).source


def test_parquet_and_csv_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lateint.training.hf_source import hf_groups

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "t.parquet")
    (tmp_path / "t.csv").write_text("query,positive,negative\n" + "".join(
        f'"{r["query"]}","{r["positive"]}","{r["negative"]}"\n' for r in ROWS))
    for name in ("t.parquet", "t.csv"):
        _, epoch = hf_groups(str(tmp_path / name), "train", negatives=1)
        assert [g.query for g in epoch()] == [r["query"] for r in ROWS]


def test_columns_matching_no_convention_are_refused(make_config, student_model, tmp_path):
    hf = _jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(InputError, match=r"columns \['question', 'answer'\] match no accepted convention; "
                                         r"accepted: triplets / hard negatives: query\|anchor, positive"):
        _ = Trainer(_config(make_config, student_model, hf)).source
    with pytest.raises(InputError, match="match no accepted convention"):
        layout_of(["query", "positive"], "x")  # a positive without negatives is no group

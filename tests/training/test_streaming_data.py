"""Training data read as streams: pair files, teacher score files, docpairs and runs read query by
query, shuffled in a bounded buffer, with texts looked up through the dataset."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from lateint.errors import ConfigError, InputError
from lateint.training.batches import ShuffledGroups, StreamedGroups
from lateint.training.groups import TrainingGroup, build_groups
from lateint.training.streams import pairs_tsv_groups, run_groups, trec_run_blocks
from lateint.training.trainer import Trainer

from .conftest import CANDIDATES, QRELS, QUERY_TEXTS, doc_text

DL19 = "msmarco-passage/trec-dl-2019/judged"


def _ids(n: int):
    return [TrainingGroup(qid=f"q{i}", query="", doc_ids=(f"d{i}", f"n{i}"), docs=(), labels=(1.0, 0.0))
            for i in range(n)]


# -- readers -------------------------------------------------------------------------------------
def test_pairs_tsv_lines_become_groups_with_teacher_scores(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("10.5\t-2.25\tq1\tp1\tn1\n\n3\t4\tq2\tp2\tn2\n")
    groups = list(pairs_tsv_groups(path))
    assert [(g.qid, g.doc_ids, g.teacher_scores, g.labels) for g in groups] == [
        ("q1", ("p1", "n1"), (10.5, -2.25), (1.0, 0.0)),
        ("q2", ("p2", "n2"), (3.0, 4.0), (1.0, 0.0)),
    ]


@pytest.mark.parametrize("bad, message", [
    ("1.0\t2.0\tq1\tp1\n", "5 tab-separated fields"),
    ("1.0\tx\tq1\tp1\tn1\n", "score_neg 'x' is not a number"),
    ("nan\t1\tq1\tp1\tn1\n", "not a finite number"),
])
def test_a_bad_score_line_names_the_file_and_line(tmp_path, bad, message):
    path = tmp_path / "scores.tsv"
    path.write_text("1\t2\tq0\tp0\tn0\n" * 2 + bad)
    stream = pairs_tsv_groups(path)
    assert len(list(itertools.islice(stream, 2))) == 2  # the good lines come first, read lazily
    with pytest.raises(InputError, match=rf"scores.tsv:3: .*{message}"):
        next(stream)


def test_trec_run_blocks_query_by_query_and_bad_lines(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 a 1 3.0 t\nq1 Q0 b 2 2.0 t\nq2 Q0 c 1 1.5 t\n")
    assert list(trec_run_blocks(path)) == [("q1", [("a", 3.0), ("b", 2.0)]), ("q2", [("c", 1.5)])]
    path.write_text("q1 Q0 a 1 3.0 t\nq1 Q0 b 2\n")
    with pytest.raises(InputError, match=r"run.trec:2: expected 6 whitespace-separated fields"):
        list(trec_run_blocks(path))
    path.write_text("q1 Q0 a 1 inf t\n")
    with pytest.raises(InputError, match=r"run.trec:1: score \(5th field\) must be finite"):
        list(trec_run_blocks(path))
    with pytest.raises(InputError, match="does not exist"):
        list(trec_run_blocks(tmp_path / "missing.trec"))


def test_groups_from_a_run_read_query_by_query_equal_the_in_memory_ones():
    # The oracle: build_groups over the whole run in memory.
    expected = build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=3, depth=8, seed=5)
    blocks = ((qid, list(CANDIDATES[qid])) for qid in sorted(CANDIDATES))
    streamed = list(run_groups(blocks, QRELS, negatives=3, depth=8, seed=5))
    assert [(g.qid, g.doc_ids, g.labels) for g in streamed] == [(g.qid, g.doc_ids, g.labels) for g in expected]


# -- the shuffle buffer -----------------------------------------------------------------------------
def test_the_buffer_reads_only_a_buffer_ahead_of_what_is_taken():
    pulled = []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield TrainingGroup(qid=f"q{i}", query="", doc_ids=(str(i),), docs=(), labels=(1.0,))

    stream = StreamedGroups(endless, buffer=16, seed=0)
    taken = stream.take(0, 5) + stream.take(5, 5)
    assert len({g.qid for g in taken}) == 10
    assert len(pulled) <= 16 + 10  # an endless stream: holding it whole would never return


def test_each_streamed_epoch_is_a_seeded_permutation_and_positions_resume():
    groups = _ids(23)
    stream = StreamedGroups(lambda: iter(groups), buffer=5, seed=3)
    first = stream.take(0, 23)
    second = stream.take(23, 23)
    assert sorted(g.qid for g in first) == sorted(g.qid for g in groups)
    assert sorted(g.qid for g in second) == sorted(g.qid for g in groups)
    assert [g.qid for g in first] != [g.qid for g in groups]  # shuffled
    assert [g.qid for g in first] != [g.qid for g in second]  # reshuffled per epoch
    again = StreamedGroups(lambda: iter(groups), buffer=5, seed=3)
    assert again.take(30, 7) == second[7:14]  # a resumed stream finds its place
    assert again.take(2, 3) == first[2:5]  # and an earlier position reads again from the start
    with pytest.raises(InputError, match="holds no groups"):
        StreamedGroups(lambda: iter(()), buffer=2, seed=0).take(0, 1)


def test_fill_completes_only_the_groups_taken():
    filled = []

    def fill(groups):
        filled.extend(g.qid for g in groups)
        return groups

    stream = StreamedGroups(lambda: iter(_ids(10)), buffer=3, seed=0, fill=fill)
    taken = stream.take(6, 2)
    assert filled == [g.qid for g in taken]


def test_in_memory_groups_keep_their_epoch_order(tiny_groups):
    source = ShuffledGroups(tiny_groups, 0)
    epoch = source.take(0, len(tiny_groups))
    assert sorted(map(id, epoch)) == sorted(map(id, tiny_groups))


# -- local files registered over the DL19 passages ------------------------------------------------
@pytest.fixture(scope="module")
def dl19_files(irdata, tmp_path_factory):
    """A docpairs dataset id, a Margin-MSE score file and a TREC teacher run over DL19 passages."""
    from lateint.data import load_dataset
    from lateint.data.local_ids import register_local

    folder = tmp_path_factory.mktemp("pairs")
    ds = load_dataset(DL19)
    qrels, ranked = ds.qrels(), ds.candidates("bm25", 20)
    present = ds.doc_text({d for q in ranked for d, _ in ranked[q]}, missing_ok=True)
    pairs, scores, run = [], [], []
    for qid in sorted(ranked)[:12]:
        judged = qrels.get(qid, {})
        pos = [d for d, _ in ranked[qid] if judged.get(d, 0) >= 2 and d in present][:2]
        neg = [d for d, _ in ranked[qid] if judged.get(d, 0) < 2 and d in present][:4]
        for i, p in enumerate(pos):
            for j, n in enumerate(neg[:2]):
                pairs.append(f"{qid}\t{p}\t{n}")
                scores.append(f"{5.0 + i}\t{-1.0 - j}\t{qid}\t{p}\t{n}")
        for rank, (d, s) in enumerate(ranked[qid], start=1):
            run.append(f"{qid} Q0 {d} {rank} {s * 0.5} teacher")
    (folder / "pairs.tsv").write_text("\n".join(pairs) + "\n")
    (folder / "scores.tsv").write_text("\n".join(scores) + "\n")
    (folder / "teacher.trec").write_text("\n".join(run) + "\n")
    dataset_id = register_local("lateint-test/dl19-docpairs", DL19, docpairs=folder / "pairs.tsv")
    return {"dataset": dataset_id, "folder": folder, "pairs": len(pairs)}


def _stream_config(make_config, model, dl19_files, **overrides):
    data = {"dataset": dl19_files["dataset"], "negative_source": "docpairs", "negatives": 1, "shuffle_buffer": 4,
            **overrides.pop("data", {})}
    return make_config(model, steps=4, batch_size=2, data=data, **overrides)


def test_training_on_streamed_docpairs(make_config, student_model, dl19_files):
    trainer = Trainer(_stream_config(make_config, student_model, dl19_files))
    assert trainer.groups is None and isinstance(trainer.source, StreamedGroups)
    batch = trainer.source.take(0, 3)
    assert all(g.query.strip() and len(g.docs) == 2 and all(d.strip() for d in g.docs) for g in batch)
    result = trainer.train()
    log = [json.loads(x) for x in result.loss_log.read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in log)
    from lateint.ranker import SplitRanker

    assert result.model_path.name == "final" and SplitRanker.from_pretrained(result.model_path).split == 0
    assert result.groups is None


def test_margin_mse_from_a_pairs_tsv_score_file(make_config, student_model, dl19_files):
    scores = dl19_files["folder"] / "scores.tsv"
    config = _stream_config(make_config, student_model, dl19_files,
                            loss={"hard": "none", "soft": "margin_mse"},
                            distill={"scores_file": str(scores), "scores_format": "pairs_tsv"})
    trainer = Trainer(config)
    trainer.setup()
    groups = trainer.source.take(0, 2)
    batch = trainer.collate(groups)
    expected = {(f[2], f[3], f[4]): (float(f[0]), float(f[1]))
                for f in (line.split("\t") for line in scores.read_text().splitlines())}
    for g, row in zip(groups, batch.teacher_scores.tolist()):
        assert tuple(row) == expected[(g.qid, *g.doc_ids)]
    result = trainer.train()
    assert result.steps == 4 and result.final_loss > 0


def test_teacher_scores_from_a_trec_run(make_config, student_model, dl19_files):
    run = dl19_files["folder"] / "teacher.trec"
    config = make_config(student_model, steps=2, batch_size=2,
                         data={"dataset": DL19, "negatives": 2, "depth": 20, "min_relevance": 2,
                               "shuffle_buffer": 3},
                         loss={"hard": "none", "soft": "kl"},
                         distill={"scores_file": str(run), "scores_format": "trec"})
    trainer = Trainer(config)
    trainer.setup()
    teacher = {}
    for qid, block in trec_run_blocks(run):
        teacher.update({(qid, d): s for d, s in block})
    for g in trainer.source.take(0, 4):
        assert g.teacher_scores == tuple(teacher[(g.qid, d)] for d in g.doc_ids)
    assert trainer.train().steps == 2


def test_streamed_training_resumes_exactly(make_config, student_model, dl19_files, tmp_path):
    common = dict(checkpoint={"every": 2}, optim={"lr": 2e-3, "warmup_ratio": 0.0})
    straight = Trainer(_stream_config(make_config, student_model, dl19_files, output=str(tmp_path / "a"),
                                      **common)).train()
    config = _stream_config(make_config, student_model, dl19_files, output=str(tmp_path / "b"), **common)
    Trainer(config).train(stop_at=3)
    resumed = Trainer(config).train()
    assert resumed.resumed_from == 2 and resumed.steps == 4
    from lateint.ranker import SplitRanker

    a = SplitRanker.from_pretrained(straight.model_path).state_dict()
    b = SplitRanker.from_pretrained(resumed.model_path).state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=0), name


def test_streaming_config_errors(make_config, student_model):
    with pytest.raises(ConfigError, match="negatives must be 1 with docpairs"):
        make_config(student_model, data={"negative_source": "docpairs", "negatives": 3})
    with pytest.raises(ConfigError, match="pairs_tsv' defines the training pairs"):
        make_config(student_model, loss={"soft": "margin_mse"}, distill={"scores_file": "s.tsv"})
    with pytest.raises(ConfigError, match="scores_format"):
        make_config(student_model, loss={"soft": "margin_mse"},
                    distill={"scores_file": "s.tsv", "scores_format": "json"})
    with pytest.raises(ConfigError, match="shuffle_buffer"):
        make_config(student_model, data={"shuffle_buffer": -1})
    with pytest.raises(ConfigError, match="leave data.run unset"):
        make_config(student_model, data={"run": "bm25"}, loss={"soft": "kl"},
                    distill={"scores_file": "t.trec", "scores_format": "trec"})


def test_pair_and_score_files_stream_by_default_and_runs_keep_the_full_shuffle(make_config, student_model, dl19_files):
    from lateint.training.config import DEFAULT_SHUFFLE_BUFFER
    from lateint.training.streams import group_source

    data = {"dataset": dl19_files["dataset"], "negative_source": "docpairs", "negatives": 1}
    assert DEFAULT_SHUFFLE_BUFFER == 100_000
    docpairs = group_source(make_config(student_model, data=data))
    assert isinstance(docpairs, StreamedGroups) and docpairs.buffer == DEFAULT_SHUFFLE_BUFFER
    scores = group_source(make_config(student_model, data=data, loss={"hard": "none", "soft": "margin_mse"},
                                      distill={"scores_file": str(dl19_files["folder"] / "scores.tsv"),
                                               "scores_format": "pairs_tsv"}))
    assert isinstance(scores, StreamedGroups) and scores.buffer == DEFAULT_SHUFFLE_BUFFER
    # shuffle_buffer = 0 set explicitly: every group in memory, as before
    assert isinstance(group_source(make_config(student_model, data={**data, "shuffle_buffer": 0})), ShuffledGroups)
    # small run-based training keeps its full shuffle
    run_based = group_source(make_config(student_model, data={"dataset": DL19, "negatives": 2, "depth": 20}))
    assert isinstance(run_based, ShuffledGroups)

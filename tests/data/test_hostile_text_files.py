"""Damaged and hostile text files: every reader of documents, queries, qrels, runs and training
files handles a byte-order mark and CRLF, and refuses duplicate ids, huge ids, odd digits,
non-integer grades, truncated gzip files and scrambled teacher runs with the file and line."""

from __future__ import annotations

import gzip

import pytest

from lateint.cache.ids import MAX_ID_BYTES, encode_ids
from lateint.data import load_dataset, read_run
from lateint.errors import InputError
from lateint.training.streams import pairs_tsv_groups, trec_run_blocks

BOM = "\ufeff"
DOCS = "d1\tlobster roll\nd2\tphotosynthesis in plants\nd3\tcharles darwin\n"
QUERIES = "q1\twhat is a lobster roll\nq2\twho wrote the origin of species\n"
QRELS = "q1 0 d1 1\nq2 0 d3 2\n"
RUN = "q1 Q0 d1 1 12.5 r\nq1 Q0 d2 2 3.0 r\nq2 Q0 d3 1 7.25 r\n"


def _folder(root, docs=DOCS, queries=QUERIES, qrels=QRELS, newline="\n", bom=False):
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("docs.tsv", docs), ("queries.tsv", queries), ("qrels.txt", qrels)):
        text = text.replace("\n", newline)
        (root / name).write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return root


def _contents(folder):
    ds = load_dataset(str(folder))
    return list(ds.iter_docs()), ds.queries(), ds.qrels(), ds.doc_text(["d1", "d3"])


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", [False, True])
def test_bom_and_line_endings_change_nothing(irdata, tmp_path, newline, bom):
    plain = _contents(_folder(tmp_path / "plain"))
    assert _contents(_folder(tmp_path / "odd", newline=newline, bom=bom)) == plain
    assert plain[2] == {"q1": {"d1": 1}, "q2": {"d3": 2}}
    run = tmp_path / "run.trec"
    run.write_bytes(((BOM if bom else "") + RUN.replace("\n", newline)).encode())
    assert read_run(run) == {"q1": {"d1": 12.5, "d2": 3.0}, "q2": {"d3": 7.25}}
    # a run read against queries with a byte-order mark: nothing is blamed on the run
    folder = _folder(tmp_path / "bom-queries", bom=bom, newline=newline)
    assert load_dataset(str(folder)).candidates(str(run), 10)["q1"][0] == ("d1", 12.5)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes(((BOM if bom else "") + "1.5\t0.5\tq1\td1\td2\n".replace("\n", newline)).encode())
    [group] = list(pairs_tsv_groups(pairs))
    assert (group.qid, group.doc_ids, group.teacher_scores) == ("q1", ("d1", "d2"), (1.5, 0.5))


def test_a_bom_in_the_qrels_keeps_the_first_judgement(irdata, tmp_path):
    folder = _folder(tmp_path / "c", qrels=BOM + QRELS)
    assert load_dataset(str(folder)).qrels()["q1"] == {"d1": 1}


def test_duplicate_document_ids(irdata, tmp_path):
    clash = _folder(tmp_path / "clash", docs=DOCS + "d2\tsomething else entirely\n")
    with pytest.raises(InputError, match=r"docs.tsv:4: document id 'd2' was given before with a different text"):
        list(load_dataset(str(clash)).iter_docs())
    with pytest.raises(InputError, match="'d2' was given before"):  # the refusal is not cached as a good store
        load_dataset(str(clash)).doc_text(["d1"])
    same = _folder(tmp_path / "same", docs=DOCS + "d2\tphotosynthesis in plants\n")
    ds = load_dataset(str(same))
    assert [doc_id for doc_id, _ in ds.iter_docs()] == ["d1", "d2", "d3"]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    with pytest.raises(InputError, match=r"docs.jsonl:2: document id 'a' was given before"):
        list(load_dataset(str(jsonl)).iter_docs())


def test_huge_ids_are_refused(irdata, tmp_path):
    huge = "x" * 10_000
    folder = _folder(tmp_path / "huge", docs=DOCS + f"{huge}\tlong id\n")
    with pytest.raises(InputError, match=rf"docs.tsv:4: doc id 'x+'... is 10,000 bytes long; ids of at most {MAX_ID_BYTES}"):
        list(load_dataset(str(folder)).iter_docs())
    with pytest.raises(InputError, match="10,000 bytes long"):
        encode_ids(["d1", huge])
    assert encode_ids(["d1", "y" * MAX_ID_BYTES]).dtype.itemsize == MAX_ID_BYTES


@pytest.mark.parametrize("score", ["１２.５", "٢", "1_000", "12,5"])
def test_scores_in_other_digits_are_refused(tmp_path, score):
    run = tmp_path / "run.trec"
    run.write_text(f"q1 Q0 d1 1 {score} r\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"run.trec:1: score \(5th field\) must be a number"):
        read_run(run)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"1.0\t{score}\tq1\td1\td2\n", encoding="utf-8")
    with pytest.raises(InputError, match="pairs.tsv:1: score_neg"):
        list(pairs_tsv_groups(pairs))
    rank = tmp_path / "rank.trec"
    rank.write_text("q1 Q0 d1 ١ 2.0 r\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"rank.trec:1: rank \(4th field\) must be an integer"):
        read_run(rank)


@pytest.mark.parametrize("grade", ["1.5", "high", "٢"])
def test_non_integer_relevance_names_file_and_line(irdata, tmp_path, grade):
    folder = _folder(tmp_path / "q", qrels=f"q1 0 d1 1\nq2 0 d3 {grade}\n")
    with pytest.raises(InputError, match=rf"qrels.txt:2: relevance grade must be an integer, got '{grade}'"):
        load_dataset(str(folder)).qrels()


def test_truncated_gzip_names_the_file(tmp_path):
    run = "".join(f"q{i} Q0 d{j} {j + 1} {100 - j}.0 r\n" for i in range(200) for j in range(50))
    pairs = "".join(f"{i}.5\t{i}.0\tq{i}\td{i}\te{i}\n" for i in range(10_000))
    for name, content, reader in (("run.trec.gz", run, read_run), ("pairs.tsv.gz", pairs, lambda p: list(pairs_tsv_groups(p))),
                                  ("teacher.trec.gz", run, lambda p: list(trec_run_blocks(p)))):
        path = tmp_path / name
        path.write_bytes(gzip.compress(content.encode())[:-200])
        with pytest.raises(InputError, match=rf"{name} is a damaged or truncated gzip file"):
            reader(path)


def test_teacher_run_with_scattered_query_lines_is_refused(tmp_path):
    run = tmp_path / "teacher.trec"
    run.write_text("q1 Q0 d1 1 3.0 t\nq2 Q0 d2 1 2.0 t\nq1 Q0 d3 2 1.0 t\n")
    with pytest.raises(InputError, match=r"teacher.trec:3: the lines of query 'q1' are not consecutive"):
        list(trec_run_blocks(run))


def test_teacher_run_with_a_repeated_document_is_refused(tmp_path):
    run = tmp_path / "teacher.trec"
    run.write_text("q1 Q0 d1 1 3.0 t\nq1 Q0 d2 2 2.0 t\nq1 Q0 d1 3 9.0 t\n")
    with pytest.raises(InputError, match=r"teacher.trec:3: document 'd1' appears twice for query 'q1' \(first at line 1\)"):
        list(trec_run_blocks(run))
    good = tmp_path / "good.trec"
    good.write_text("q1 Q0 d1 1 3.0 t\nq1 Q0 d2 2 2.0 t\nq2 Q0 d1 1 1.0 t\n")
    assert list(trec_run_blocks(good)) == [("q1", [("d1", 3.0), ("d2", 2.0)]), ("q2", [("d1", 1.0)])]


def test_blank_query_is_refused_with_its_id(irdata, tmp_path):
    folder = _folder(tmp_path / "b", queries="q1\twhat is a lobster roll\nq2\t   \n")
    with pytest.raises(InputError, match=r"queries.tsv:2: query 'q2' has an empty text"):
        load_dataset(str(folder)).queries()

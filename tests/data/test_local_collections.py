"""BEIR folders (``DIR`` and ``DIR/SPLIT``) and plain JSONL collections as datasets."""

from __future__ import annotations

import json
import zipfile

import pytest

from lateint.cli.main import main
from lateint.data import load_dataset, read_run
from lateint.errors import InputError


@pytest.fixture(scope="module")
def scifact_folder(irdata, tmp_path_factory):
    """BEIR's SciFact folder, unzipped from the local copy of the download."""
    root = tmp_path_factory.mktemp("beir")
    with zipfile.ZipFile(irdata / "beir-scifact" / "scifact.zip") as archive:
        archive.extractall(root)
    return root / "scifact"


def _ndcg10(capsys, argv):
    assert main(argv) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("| bm25 "))
    return float(row.split("|")[2])


def test_beir_split_is_what_ir_datasets_serves(scifact_folder):
    folder = load_dataset(f"{scifact_folder}/test")
    irds = load_dataset("beir/scifact/test").dataset  # the oracle: ir_datasets' own BEIR reader
    assert folder.queries() == {q.query_id: q.text for q in irds.queries_iter()}
    assert folder.qrels() == {q.query_id: {d.doc_id: d.relevance for d in irds.qrels_iter() if d.query_id == q.query_id}
                              for q in irds.qrels_iter()}
    docs = list(folder.iter_docs())
    assert docs == [(d.doc_id, d.default_text()) for d in irds.docs_iter()]
    sample = [doc_id for doc_id, _ in docs[::500]]
    assert folder.doc_text(sample) == {doc_id: text for doc_id, text in docs[::500]}


def test_beir_folder_gives_the_same_ndcg_as_the_ir_datasets_id(scifact_folder, tmp_path, capsys):
    run = tmp_path / "bm25.trec"
    assert main(["retrieve", "--dataset", f"{scifact_folder}/test", "--method", "bm25", "--out", str(run),
                 "--no-progress"]) == 0
    assert len(read_run(run)) == 300
    by_folder = _ndcg10(capsys, ["evaluate", "--dataset", f"{scifact_folder}/test", str(run), "--metrics", "nDCG@10"])
    by_id = _ndcg10(capsys, ["evaluate", "--dataset", "beir/scifact/test", str(run), "--metrics", "nDCG@10"])
    assert by_folder == by_id == pytest.approx(0.6863, abs=0.00005)


def test_whole_beir_folder_has_every_query_and_no_qrels(scifact_folder):
    whole = load_dataset(str(scifact_folder))
    assert len(whole.queries()) == 1109 and not whole.dataset.has_qrels()


@pytest.fixture()
def jsonl_collection(tmp_path, irdata):
    folder = tmp_path / "mine"
    folder.mkdir()
    docs = [{"id": "a", "text": "A lobster roll is a sandwich."}, {"_id": 7, "title": "Darwin", "text": "On the Origin of Species."},
            {"id": "c", "title": "", "text": "Plants make energy from sunlight."}]
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "who wrote the origin of species"}) + "\n")
    return folder


def test_jsonl_collection_texts_join_title_and_text(jsonl_collection):
    ds = load_dataset(str(jsonl_collection))
    assert list(ds.iter_docs()) == [("a", "A lobster roll is a sandwich."), ("7", "Darwin On the Origin of Species."),
                                    ("c", "Plants make energy from sunlight.")]
    assert ds.doc_text(["7"]) == {"7": "Darwin On the Origin of Species."}
    assert ds.queries() == {"q1": "who wrote the origin of species"}


def test_jsonl_collection_works_for_retrieve_and_cache_build(jsonl_collection, tmp_path, tiny_model, capsys):
    run = tmp_path / "run.trec"
    assert main(["retrieve", "--dataset", str(jsonl_collection), "--method", "bm25", "--depth", "2",
                 "--out", str(run), "--no-progress"]) == 0
    assert max(read_run(run)["q1"], key=read_run(run)["q1"].get) == "7"
    model = tiny_model("bert", 2)
    for name, dataset in (("folder", str(jsonl_collection)), ("file", str(jsonl_collection / "docs.jsonl"))):
        out = tmp_path / f"cache-{name}"
        assert main(["cache", "build", "--model", str(model), "--split", "1", "--dataset", dataset,
                     "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
        from lateint import DocCache

        cache = DocCache.open(out)
        assert len(cache) == 3 and len(cache.lengths(["a", "7", "c"])) == 3


def test_bad_jsonl_lines_are_named(tmp_path, irdata):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    for content, message in (('{"_id": "a", "text": "x"}\nnot json\n', r"docs.jsonl:2: not a JSON object"),
                             ('{"text": "x"}\n', r"docs.jsonl:1: a document record needs an \"_id\""),
                             ('{"_id": "a b", "text": "x"}\n', r"docs.jsonl:1: document id must be .* without whitespace"),
                             ('{"_id": "a", "body": "x"}\n', r"docs.jsonl:1: the record has no \"text\" field")):
        (folder / "docs.jsonl").write_text(content)
        with pytest.raises(InputError, match=message):
            list(load_dataset(str(folder)).iter_docs())

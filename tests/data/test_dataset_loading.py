"""Loading the offline collections through ir_datasets, with the counts their publishers give."""

from __future__ import annotations

import pytest

from lateint.data import SUBSET_JUDGED_ID, load_dataset, official_relevance_level
from lateint.errors import InputError

DL19 = "msmarco-passage/trec-dl-2019/judged"


def _count_lines(path, skip_header: bool = False) -> int:
    with open(path, encoding="utf-8") as lines:
        count = sum(1 for line in lines if line.strip())
    return count - 1 if skip_header else count


def test_dl19_resolves_to_the_local_subset_with_official_counts(irdata):
    handle = load_dataset(DL19)
    assert handle.irds_id == SUBSET_JUDGED_ID
    assert "subset" in handle.note and "10,852" in handle.note and handle.description == handle.note
    assert handle.official_relevance_level == 2
    queries, qrels = handle.queries(), handle.qrels()
    assert len(queries) == 43
    assert sum(len(judged) for judged in qrels.values()) == 9260
    assert handle.doc_count() == 10852
    # The same figures straight from the files.
    folder = irdata / "msmarco-passage-trec-dl-2019"
    assert sum(len(judged) for judged in qrels.values()) == _count_lines(folder / "qrels.txt")
    assert handle.doc_count() == _count_lines(folder / "collection.tsv")
    assert queries["1037798"] == "who is robert gray"
    assert qrels["19335"]["1017759"] == 0


def test_dl19_custom_id_loads_through_ir_datasets_itself(irdata):
    load_dataset(DL19)  # registers the subset ids
    import ir_datasets

    dataset = ir_datasets.load(SUBSET_JUDGED_ID)
    assert sum(1 for _ in dataset.queries_iter()) == 43
    assert sum(1 for _ in dataset.scoreddocs_iter()) == 4300
    doc = dataset.docs_store().get("1722")
    assert doc.text.startswith("Fields of Anthropology.")


def test_dl19_passage_text_and_missing_ids(irdata):
    handle = load_dataset(DL19)
    texts = handle.doc_text(["1726", "1722"])
    assert list(texts) == ["1726", "1722"]
    assert texts["1722"].startswith("Fields of Anthropology. There are now four major fields")
    with pytest.raises(InputError, match="not-a-passage"):
        handle.doc_text(["1722", "not-a-passage"])


@pytest.mark.parametrize(
    ("name", "queries", "qrels_file"),
    [("beir/scifact/train", 809, "train"), ("beir/scifact/test", 300, "test")],
)
def test_scifact_splits(irdata, tmp_path, name, queries, qrels_file):
    import zipfile

    handle = load_dataset(name)
    assert handle.irds_id == name and handle.official_relevance_level == 1
    assert len(handle.queries()) == queries
    judged = sum(len(docs) for docs in handle.qrels().values())
    with zipfile.ZipFile(irdata / "beir-scifact" / "scifact.zip") as archive:
        lines = archive.read(f"scifact/qrels/{qrels_file}.tsv").decode().strip().splitlines()
    assert judged == len(lines) - 1  # the BEIR qrels file has a header line
    assert judged == {"train": 919, "test": 339}[qrels_file]
    assert handle.doc_count() == 5183


def test_scifact_whole_has_all_queries_but_no_qrels(irdata):
    handle = load_dataset("beir/scifact")
    assert len(handle.queries()) == 1109
    assert handle.doc_count() == 5183
    with pytest.raises(InputError, match="has no qrels"):
        handle.qrels()
    # BEIR documents are read as title + text.
    text = handle.doc_text(["4983"])["4983"]
    assert text.startswith("Microstructural development of human newborn cerebral white matter")


def test_cranfield(irdata):
    handle = load_dataset("cranfield")
    assert len(handle.queries()) == 225
    assert sum(len(judged) for judged in handle.qrels().values()) == 1837
    assert handle.doc_count() == 1400
    assert handle.official_relevance_level == 1
    assert set().union(*(judged.values() for judged in handle.qrels().values())) == {-1, 1, 2, 3, 4}


def test_unknown_dataset_is_an_input_error_with_suggestions(irdata):
    with pytest.raises(InputError, match="unknown dataset 'beir/scifact/tset'.*beir/scifact/test"):
        load_dataset("beir/scifact/tset")
    with pytest.raises(InputError):
        load_dataset("")


def test_official_relevance_levels():
    assert official_relevance_level("msmarco-passage/trec-dl-2019/judged") == 2
    assert official_relevance_level("msmarco-passage-v2/trec-dl-2022/judged") == 2
    assert official_relevance_level(SUBSET_JUDGED_ID) == 2
    assert official_relevance_level("msmarco-document/trec-dl-2019/judged") == 1
    assert official_relevance_level("beir/scifact/test") == 1


def test_doc_text_names_missing_ids_or_leaves_them_out(irdata):
    handle = load_dataset(DL19)
    present = handle.candidates("bm25", 1)["19335"][0][0]  # a passage the subset holds
    with pytest.raises(InputError, match="1 document id.*not-a-passage"):
        handle.doc_text([present, "not-a-passage"])
    texts = handle.doc_text([present, "not-a-passage"], missing_ok=True)
    assert list(texts) == [present] and texts[present].strip()

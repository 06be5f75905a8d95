"""``lateint retrieve`` over a local TREC-style folder, by both methods."""

from __future__ import annotations

import json

import pytest

from lateint.cli.main import main
from lateint.data import load_dataset, read_run

from tests.conftest import DOCS


@pytest.fixture()
def folder(tmp_path, irdata):
    root = tmp_path / "collection"
    root.mkdir()
    (root / "docs.tsv").write_text("".join(f"d{i}\t{text}\n" for i, text in enumerate(DOCS)))
    (root / "queries.tsv").write_text("q1\twhat is a lobster roll\nq2\twho wrote the origin of species\n")
    (root / "qrels.txt").write_text("q1 0 d0 1\nq2 0 d4 1\n")
    return root


def test_local_folder_is_a_dataset(folder):
    ds = load_dataset(str(folder))
    assert ds.queries() == {"q1": "what is a lobster roll", "q2": "who wrote the origin of species"}
    assert ds.qrels() == {"q1": {"d0": 1}, "q2": {"d4": 1}}
    assert ds.doc_text(["d2"]) == {"d2": DOCS[2]}


@pytest.mark.parametrize("method", ["bm25", "dense"])
def test_retrieve_writes_a_run_the_first_stage_can_use(folder, tmp_path, method, minilm_path):
    out = tmp_path / f"{method}.trec"
    args = ["retrieve", "--dataset", str(folder), "--method", method, "--depth", "2", "--out", str(out),
            "--no-progress"]
    if method == "dense":
        args += ["--model", str(minilm_path), "--cache", str(tmp_path / "twin-cache"), "--device", "cpu",
                 "--batch-size", "4"]
    assert main(args) == 0
    run = read_run(out)
    assert set(run) == {"q1", "q2"} and all(1 <= len(docs) <= 2 for docs in run.values())
    assert max(run["q1"], key=run["q1"].get) == "d0" and max(run["q2"], key=run["q2"].get) == "d4"
    # The run serves as a first stage for the same dataset.
    assert load_dataset(str(folder)).candidates(str(out), depth=1)["q1"][0][0] == "d0"


def test_retrieve_rejects_bad_input(folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser, before anything is read
        main(["retrieve", "--dataset", str(folder), "--method", "bm25", "--depth", "0", "--out", str(tmp_path / "x.trec")])
    assert exit_info.value.code == 2
    assert "argument --depth: must be a positive integer, got 0" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "queries.tsv").write_text("q1\tx\n")
    assert main(["retrieve", "--dataset", str(empty), "--method", "bm25", "--out", str(tmp_path / "y.trec")]) == 2
    assert "docs.tsv" in capsys.readouterr().err


def test_skip_empty_leaves_out_documents_without_text_and_names_them(folder, tmp_path, minilm_path, capsys):
    # Cranfield holds two such documents: without --skip-empty they stop a whole-collection encode
    with open(folder / "docs.tsv", "a") as f:
        f.write("blank\t \nnone\t\n")
    base = ["retrieve", "--dataset", str(folder), "--method", "dense", "--depth", "3", "--model", str(minilm_path),
            "--device", "cpu", "--batch-size", "4", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "refused.trec"), "--cache", str(tmp_path / "c1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (ir_datasets logs its docstore build above it)
    assert err.startswith("lateint retrieve: error: document 'blank' has an empty text") and "--skip-empty" in err

    out = tmp_path / "dense.trec"
    args = [*base, "--out", str(out), "--cache", str(tmp_path / "c2"), "--skip-empty"]
    assert main(args) == 0
    assert "left out 2 document(s) with an empty text (--skip-empty): blank, none" in capsys.readouterr().out
    run = read_run(out)
    assert set(run) == {"q1", "q2"} and all(len(docs) == 3 for docs in run.values())
    assert not {"blank", "none"} & {d for docs in run.values() for d in docs}
    assert json.loads((tmp_path / "dense.trec.json").read_text())["skipped_empty"] == ["blank", "none"]
    from lateint import DocCache

    assert len(DocCache.open(tmp_path / "c2")) == len(DOCS)


def test_cache_build_skip_empty(folder, tmp_path, tiny_model, capsys):
    with open(folder / "docs.tsv", "a") as f:
        f.write("none\t\n")
    base = ["cache", "build", "--dataset", str(folder), "--model", str(tiny_model("bert", 2)), "--split", "1",
            "--device", "cpu", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "refused")]) == 2
    assert "document 'none' has an empty text" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "cache"), "--skip-empty"]) == 0
    assert "left out 1 document(s) with an empty text (--skip-empty): none" in capsys.readouterr().out
    from lateint import DocCache

    assert len(DocCache.open(tmp_path / "cache")) == len(DOCS)


def test_sharded_cache_build_names_only_its_own_empty_documents(folder, tmp_path, tiny_model, capsys):
    from lateint import DocCache
    from lateint.cache.shards import share_of

    with open(folder / "docs.tsv", "a") as f:
        f.write("none\t\nempty\t \n")
    assert [share_of("none", 2), share_of("empty", 2)] == [1, 0]
    base = ["cache", "build", "--dataset", str(folder), "--model", str(tiny_model("bert", 2)), "--split", "1",
            "--device", "cpu", "--no-progress", "--skip-empty", "--num-shards", "2"]
    sizes = []
    for index, own in enumerate(["empty", "none"]):
        assert main([*base, "--shard-index", str(index), "--out", str(tmp_path / f"part{index}")]) == 0
        assert f"left out 1 document(s) with an empty text (--skip-empty): {own}\n" in capsys.readouterr().out
        sizes.append(len(DocCache.open(tmp_path / f"part{index}")))
    assert sum(sizes) == len(DOCS)

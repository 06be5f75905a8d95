"""The ``lateint`` command line end to end on a tiny model and the real DL19 data."""

from __future__ import annotations

import json


from lateint.cli.main import main

DL19 = "msmarco-passage/trec-dl-2019/judged"


def test_cache_build_info_verify_and_rerank(tmp_path, irdata, tiny_model, capsys):
    model = str(tiny_model("bert", 2))
    common = ["--model", model, "--split", "1", "--head", "cls", "--max-doc-length", "64"]
    assert main(["cache", "build", *common, "--dataset", DL19, "--first-stage", "bm25", "--depth", "2",
                 "--out", str(tmp_path / "cache"), "--storage", "int8"]) == 0
    out = capsys.readouterr().out
    assert "86 documents (86 added" in out and "int8" in out
    assert main(["cache", "info", str(tmp_path / "cache"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["docs"] == 86 and info["settings"]["split"] == 1
    assert main(["cache", "verify", str(tmp_path / "cache")]) == 0
    assert "every checksum matches" in capsys.readouterr().out

    run = tmp_path / "run.trec"
    assert main(["rerank", *common, "--dataset", DL19, "--first-stage", "bm25", "--depth", "3", "--out", str(run)]) == 0
    assert "43 queries (43 scored now)" in capsys.readouterr().out
    lines = run.read_text().splitlines()
    assert len(lines) == 43 * 3 and lines[0].split()[-1].endswith("L1of2-cls-offset-fp16")
    assert main(["evaluate", "--dataset", DL19, "bm25", f"tiny={run}", "--baseline", "bm25", "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert "tiny" in json.dumps(table)


def test_cache_build_with_a_side_information_compressor(tmp_path, irdata, tiny_model, capsys):
    common = ["--model", str(tiny_model("bert", 2)), "--split", "1", "--head", "cls", "--max-doc-length", "64"]
    data = ["--dataset", DL19, "--first-stage", "bm25", "--depth", "2"]
    assert main(["cache", "build", *common, *data, "--out", str(tmp_path / "c"), "--compress-dim", "8",
                 "--compress-side-info", "--compress-steps", "3", "--compress-docs", "20", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["cache", "info", str(tmp_path / "c"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["settings"]["compression_side_info"] is True and info["settings"]["compression_dim"] == 8
    assert set(info["fields"]) == {"states", "input_ids", "token_type_ids"}
    assert main(["cache", "build", *common, *data, "--out", str(tmp_path / "d"), "--compress-side-info"]) == 2
    assert "give --compress-dim" in capsys.readouterr().err


def test_errors_are_one_line_messages(tmp_path, irdata, tiny_model, capsys):
    assert main(["rerank", "--model", str(tmp_path / "nope"), "--dataset", DL19, "--out", str(tmp_path / "r.trec")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lateint rerank: error:") and "does not exist" in err and "Traceback" not in err
    assert main(["cache", "info", str(tmp_path / "nothing")]) == 2
    assert "no document cache" in capsys.readouterr().err
    assert main(["rerank", "--model", str(tiny_model("bert", 2)), "--split", "5", "--dataset", DL19,
                 "--out", str(tmp_path / "r.trec")]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["rerank", "--model", str(tiny_model("bert", 2)), "--dataset", "no/such/dataset",
                 "--out", str(tmp_path / "r.trec")]) == 2
    assert "no/such/dataset" in capsys.readouterr().err


def test_demo_scores_every_split(tmp_path, capsys):
    assert main(["demo", "--json", str(tmp_path / "demo.json")]) == 0
    rows = json.loads((tmp_path / "demo.json").read_text())["rows"]
    assert [r["split"] for r in rows] == list(range(7))
    assert all(len(r["scores"]) == 9 for r in rows)


def test_compressed_build_reads_the_collection_once_and_fits_its_first_documents(tmp_path, irdata, tiny_model,
                                                                                 capsys, monkeypatch):
    import torch

    from lateint import SplitRanker
    from lateint.cache.compression import StateCompressor, train_compressor
    from lateint.data.datasets import DatasetHandle

    from tests.conftest import DOCS

    folder = tmp_path / "collection"
    folder.mkdir()
    (folder / "docs.tsv").write_text("".join(f"d{i}\t{text}\n" for i, text in enumerate(DOCS)))
    (folder / "queries.tsv").write_text("q1\twhat is a lobster roll\n")
    reads = []
    original = DatasetHandle.iter_docs
    monkeypatch.setattr(DatasetHandle, "iter_docs", lambda self: reads.append(1) or original(self))
    model = str(tiny_model("bert", 2))
    assert main(["cache", "build", "--model", model, "--split", "1", "--dataset", str(folder), "--device", "cpu",
                 "--compress-dim", "8", "--compress-steps", "3", "--compress-docs", "3", "--no-progress",
                 "--out", str(tmp_path / "cache")]) == 0
    assert f"{len(DOCS)} documents ({len(DOCS)} added" in capsys.readouterr().out
    assert len(reads) == 1
    ranker = SplitRanker.from_pretrained(model, split=1, device="cpu")
    expected, _ = train_compressor(ranker, DOCS[:3], 8, steps=3, seed=0)
    stored = StateCompressor.load(tmp_path / "cache" / "compressor")
    for name, tensor in expected.state_dict().items():
        assert torch.equal(tensor, stored.state_dict()[name]), name

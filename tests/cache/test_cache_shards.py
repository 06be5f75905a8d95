"""Sharded builds: two concurrent ``--num-shards 2`` builds merged, and a two-rank ``torchrun``
build, each equal a single-process build (same documents, none lost or repeated, ``verify``
passes, re-rank scores within float rounding); merges refuse parts that do not fit together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lateint import CacheMismatchError, DocCache, InputError, SplitRanker
from lateint.cache import CacheWriter, FieldSpec, IncompleteCacheError
from lateint.cache.merge import merge_parts
from lateint.cache.shards import part_description, share_of
from lateint.cli.main import main
from lateint.data import load_dataset
from lateint.data.runs import read_run as read_trec_run

DL19 = "msmarco-passage/trec-dl-2019/judged"
DEPTH = "4"
QUERY = "what is a lobster roll"


def model_args(tiny_model) -> list[str]:
    return ["--model", str(tiny_model("bert", 2)), "--split", "1", "--head", "cls", "--max-doc-length", "48",
            "--device", "cpu"]


def build_args(tiny_model, out: Path) -> list[str]:
    return ["cache", "build", *model_args(tiny_model), "--dataset", DL19, "--first-stage", "bm25", "--depth", DEPTH,
            "--storage", "fp32", "--out", str(out)]


def launch(args: list[str], launcher: list[str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *(launcher or []), "-m", "lateint", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    return out


@pytest.fixture(scope="module")
def single(irdata, tiny_model, tmp_path_factory):
    """A single-process build of the candidates, and re-rank scores from it."""
    out = tmp_path_factory.mktemp("single") / "cache"
    assert main(build_args(tiny_model, out)) == 0
    return out


def rerank_from(tiny_model, cache: Path, run: Path) -> dict[str, dict[str, float]]:
    assert main(["rerank", *model_args(tiny_model), "--dataset", DL19, "--first-stage", "bm25", "--depth", DEPTH,
                 "--out", str(run), "--cache", str(cache), "--storage", "fp32"]) == 0
    return read_trec_run(run)


def assert_same_cache(a: Path, b: Path) -> None:
    one, two = DocCache.open(a), DocCache.open(b)
    ids = sorted(one.reader.iter_ids())
    assert ids == sorted(two.reader.iter_ids()) and len(ids) == len(set(ids)) > 100
    two.verify()
    x, y = one.reader.get(ids, "states"), two.reader.get(ids, "states")
    assert max(float(np.abs(p - q).max()) for p, q in zip(x, y)) <= 1e-5


def assert_same_scores(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    diff = max(abs(first[q][d] - second[q][d]) for q in first for d in first[q])
    assert diff <= 1e-5, diff


def test_two_concurrent_shard_builds_merge_into_the_single_build(single, tiny_model, tmp_path, capsys):
    parts = [tmp_path / f"part{i}" for i in range(2)]
    running = [launch([*build_args(tiny_model, part), "--num-shards", "2", "--shard-index", str(i)])
               for i, part in enumerate(parts)]
    for process in running:
        assert "(share" in finish(process)
    sizes = [len(DocCache.open(p)) for p in parts]
    assert min(sizes) > 0
    assert main(["cache", "merge", "--out", str(tmp_path / "merged"), *map(str, parts)]) == 0
    assert "merged 2 parts" in capsys.readouterr().out
    assert sum(sizes) == len(DocCache.open(tmp_path / "merged"))
    assert_same_cache(single, tmp_path / "merged")
    assert main(["cache", "verify", str(tmp_path / "merged")]) == 0
    # merged without copying: the shard files are the parts' files
    data = next((tmp_path / "merged" / "shards").glob("*/states.bin"))
    assert data.stat().st_nlink == 2

    merged_scores = rerank_from(tiny_model, tmp_path / "merged", tmp_path / "merged.trec")
    single_scores = rerank_from(tiny_model, single, tmp_path / "single.trec")
    assert_same_scores(merged_scores, single_scores)
    # ... and both equal re-ranking with a cache built for the candidates, as rerank does by default
    assert main(["rerank", *model_args(tiny_model), "--dataset", DL19, "--first-stage", "bm25", "--depth", DEPTH,
                 "--out", str(tmp_path / "own.trec"), "--storage", "fp32"]) == 0
    assert_same_scores(read_trec_run(tmp_path / "own.trec"), single_scores)


def test_torchrun_ranks_build_one_cache(single, tiny_model, tmp_path, capsys):
    out = tmp_path / "cache"
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = finish(launch(build_args(tiny_model, out), launcher))
    assert "merged 2 parts" in log and "(share 0 of 2)" in log and "(share 1 of 2)" in log
    assert_same_cache(single, out)
    assert_same_scores(rerank_from(tiny_model, out, tmp_path / "ranks.trec"),
                       rerank_from(tiny_model, single, tmp_path / "single.trec"))
    # a rerun resumes both parts (nothing to add) and keeps the merged cache
    log = finish(launch(build_args(tiny_model, out), launcher))
    assert "already merged from these parts" in log and "0 added" in log


def test_rerank_cache_refuses_missing_documents_and_other_texts(single, tiny_model, tmp_path, capsys):
    assert main(["rerank", *model_args(tiny_model), "--dataset", DL19, "--first-stage", "bm25", "--depth", "6",
                 "--out", str(tmp_path / "r.trec"), "--cache", str(single)]) == 2
    assert "candidate documents are not in the cache" in capsys.readouterr().err
    ranker = SplitRanker.from_pretrained(tiny_model("bert", 2), split=1, head="cls", max_doc_length=48)
    DocCache.build(ranker, [("d1", "a text")], tmp_path / "untagged", storage="fp32", progress=False)
    assert main(["rerank", *model_args(tiny_model), "--dataset", DL19, "--first-stage", "bm25", "--depth", "1",
                 "--out", str(tmp_path / "u.trec"), "--cache", str(tmp_path / "untagged")]) == 2
    assert "built from document text" in capsys.readouterr().err


COMPRESS = ["--compress-dim", "8", "--compress-steps", "3", "--compress-docs", "20", "--no-progress"]


def test_compressed_shares_share_one_compressor_and_merge(irdata, tiny_model, tmp_path, capsys):
    """Parts built with one saved compressor (``--compressor``) merge into the single compressed build."""
    whole = tmp_path / "whole"
    assert main([*build_args(tiny_model, whole), *COMPRESS]) == 0
    assert capsys.readouterr().out.count("reconstruction MSE") == 1
    parts = [tmp_path / f"part{i}" for i in range(2)]
    # share 0 trains the compressor (as the whole build did: same documents, same seed), share 1 takes it
    assert main([*build_args(tiny_model, parts[0]), *COMPRESS, "--num-shards", "2", "--shard-index", "0"]) == 0
    assert f"build the other shares with --compressor {parts[0] / 'compressor'}" in capsys.readouterr().out
    assert main([*build_args(tiny_model, parts[1]), "--no-progress", "--compressor", str(parts[0] / "compressor"),
                 "--num-shards", "2", "--shard-index", "1"]) == 0
    assert "reconstruction MSE" not in capsys.readouterr().out  # not trained again
    assert main(["cache", "merge", "--out", str(tmp_path / "merged"), *map(str, parts)]) == 0
    assert_same_cache(whole, tmp_path / "merged")
    assert DocCache.open(tmp_path / "merged").info()["settings"]["compression_dim"] == 8


def test_an_interrupted_compressed_build_resumes_with_its_own_compressor(irdata, tiny_model, tmp_path, capsys):
    out = tmp_path / "c"
    assert main([*build_args(tiny_model, out), *COMPRESS]) == 0
    capsys.readouterr()
    before = (out / "compressor" / "compressor.safetensors").read_bytes()
    assert main([*build_args(tiny_model, out), *COMPRESS]) == 0
    log = capsys.readouterr().out
    assert "the one this build was started with" in log and "reconstruction MSE" not in log and "0 added" in log
    assert (out / "compressor" / "compressor.safetensors").read_bytes() == before
    assert main([*build_args(tiny_model, out), *COMPRESS[:1], "4", *COMPRESS[2:]]) == 2
    assert "started with a compressor of 8 dims" in capsys.readouterr().err


@pytest.mark.parametrize("extra,message", [
    (["--compressor", "{c}", "--compress-dim", "8"], "give one or the other"),
    (["--compressor", "{empty}"], "holds no saved compressor"),
])
def test_compressor_option_errors(irdata, tiny_model, tmp_path, capsys, extra, message):
    (tmp_path / "empty").mkdir()
    extra = [e.format(c=tmp_path, empty=tmp_path / "empty") for e in extra]
    assert main([*build_args(tiny_model, tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_torchrun_ranks_train_one_compressor(irdata, tiny_model, tmp_path):
    out = tmp_path / "cache"
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    log = finish(launch([*build_args(tiny_model, out), *COMPRESS], launcher))
    assert "merged 2 parts" in log and log.count("reconstruction MSE") == 1
    shared = out.parent / f"{out.name}.parts" / "compressor"
    assert main([*build_args(tiny_model, tmp_path / "single"), "--no-progress", "--compressor", str(shared)]) == 0
    assert_same_cache(tmp_path / "single", out)


# -- merge refusals, on small stores written directly ------------------------------------------
FIELDS = [FieldSpec("states", "fp32", 4)]
IDS = [f"doc{i}" for i in range(40)]


def write_part(path: Path, share: int, ids=None, count: int = len(IDS), meta=None, close=True, shares=2,
               collection: str = "c0") -> None:
    ids = [d for d in IDS if share_of(d, shares) == share] if ids is None else ids
    writer = CacheWriter.open(path, FIELDS, meta or {"fingerprint": "f"}, shard_size=5,
                              part=part_description(shares, share))
    writer.add_batch(ids, {"states": [np.full((2, 4), i, np.float32) for i in range(len(ids))]})
    if close:
        writer.close(collection_docs=count, collection_sha256=collection)
    else:
        writer.flush()
        writer.abort()


def test_merge_refuses_parts_that_do_not_cover_the_collection_once(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_part(a, 0)
    write_part(b, 1)
    with pytest.raises(CacheMismatchError, match=r"shares 0\.\.1 of a 2-way build, each once; missing \[1\]"):
        merge_parts(tmp_path / "m1", [a])
    report = merge_parts(tmp_path / "m2", [b, a])
    assert report.documents == len(IDS) and report.copied == 0 and report.linked > 0
    assert sorted(DocCache.open(tmp_path / "m2").reader.iter_ids()) == sorted(IDS)
    with pytest.raises(InputError, match="not empty"):
        merge_parts(tmp_path / "m2", [a, b])

    other = tmp_path / "other"
    write_part(other, 1, meta={"fingerprint": "g"})
    with pytest.raises(CacheMismatchError, match="different rankers or settings.*fingerprint"):
        merge_parts(tmp_path / "m3", [a, other])
    short = tmp_path / "short"
    write_part(short, 1, ids=[d for d in IDS if share_of(d, 2) == 1][1:])  # one document lost
    with pytest.raises(CacheMismatchError, match="hold 39 documents but the collection has 40"):
        merge_parts(tmp_path / "m4", [a, short])
    stray = tmp_path / "stray"
    write_part(stray, 1, ids=[d for d in IDS if share_of(d, 2) == 1][1:] + [IDS[0] if share_of(IDS[0], 2) == 0
                                                                            else IDS[1]])
    with pytest.raises(CacheMismatchError, match="holds document .* of share 0"):
        merge_parts(tmp_path / "m5", [a, stray])
    unfinished = tmp_path / "unfinished"
    write_part(unfinished, 1, close=False)
    with pytest.raises(IncompleteCacheError, match="incomplete: rerun its build"):
        merge_parts(tmp_path / "m6", [a, unfinished])
    with pytest.raises(CacheMismatchError, match="different splits"):
        three = tmp_path / "three"
        write_part(three, 1, shares=3)
        merge_parts(tmp_path / "m7", [a, three])
    with pytest.raises(CacheMismatchError, match="holds the share"):
        write_part(a, 1)  # reopening a part as another share


def test_build_text_is_the_rerank_text_and_counts_come_from_metadata(irdata, monkeypatch):
    scifact = load_dataset("beir/scifact/test")
    first = dict(zip(range(3), scifact.iter_docs()))
    ids = [doc_id for doc_id, _ in first.values()]
    texts = scifact.doc_text(ids)
    assert all(texts[doc_id] == text for doc_id, text in first.values())
    title = next(scifact.dataset.docs_iter()).title
    assert title and first[0][1].startswith(title)  # BEIR titles are kept
    monkeypatch.setattr(type(scifact), "docs_store", lambda self: pytest.fail("counted by building the docstore"))
    assert load_dataset("beir/scifact/test").doc_count() == 5183

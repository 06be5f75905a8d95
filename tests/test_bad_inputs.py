"""Every bad value is refused where it enters, with one line that names it: none is silently
taken for something else (a default, an empty result, a rounded value)."""

from __future__ import annotations

import json

import pytest

from lateint import ConfigError, DocCache, InputError, MissingResourceError, SplitRanker, rerank
from lateint.cli.main import main
from lateint.data.runs import read_run
from lateint.sweep import run_sweep
from lateint.sweep.config import parse_sweep_config

DOCS = [("d0", "A lobster roll is a sandwich."), ("d1", "Lobsters are crustaceans.")]


@pytest.fixture(scope="module")
def ranker(minilm_path):
    return SplitRanker.from_pretrained(minilm_path, split=3, head="cls", max_doc_length=32)


@pytest.fixture(scope="module")
def cache(ranker, tmp_path_factory):
    return DocCache.build(ranker, DOCS, tmp_path_factory.mktemp("c") / "cache", progress=False)


@pytest.mark.parametrize("option,value", [("batch_size", -1), ("batch_size", 0), ("chunk_docs", 0),
                                          ("shard_size", 0), ("batch_size", 2.5), ("chunk_docs", True)])
def test_build_refuses_non_positive_sizes_and_writes_nothing(ranker, tmp_path, option, value):
    with pytest.raises(InputError, match=f"{option} must be a positive integer"):
        DocCache.build(ranker, DOCS, tmp_path / "c", progress=False, **{option: value})
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("options,message", [
    ({"num_layers": 0}, "num_layers=0 is out of range"),
    ({"num_layers": -2}, "num_layers=-2 is out of range"),
    ({"num_layers": 9}, "num_layers=9 is out of range"),
    ({"head": "maxsim", "maxsim_dim": 0}, "maxsim_dim=0 must be a positive integer"),
    ({"head": "dipair", "dipair_tokens": -1}, "dipair_tokens=-1 must be a positive integer"),
    ({"head": "dipair", "dipair_dim": 0}, "dipair_dim=0 must be a positive integer"),
])
def test_model_options_out_of_range(minilm_path, options, message):
    with pytest.raises(ConfigError, match=message):
        SplitRanker.from_pretrained(minilm_path, **options)


@pytest.mark.parametrize("queries,docs,message", [
    (None, ["d"], "queries must be a list of strings, got NoneType"),
    (["q"], None, "docs must be a list of strings, got NoneType"),
    (["q"], ["\x00\x00"], r"docs\[0\] is empty or blank"),
    (["\x00"], ["d"], r"queries\[0\] is empty or blank"),
])
def test_score_refuses_missing_and_nul_only_texts(ranker, queries, docs, message):
    with pytest.raises(InputError, match=message):
        ranker.score(queries, docs)


def test_nul_only_document_is_refused_by_a_build_too(ranker, tmp_path):
    with pytest.raises(InputError, match="'d9' has an empty text"):
        DocCache.build(ranker, [*DOCS, ("d9", "\x00\x00\x00")], tmp_path / "c", progress=False)


@pytest.mark.parametrize("batch_size", [0, -3, 1.5])
def test_batch_size_in_score_and_rerank(ranker, cache, batch_size):
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        ranker.score(["q"], ["d"], batch_size=batch_size)
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        rerank(ranker, "q", ["d0"], cache, batch_size=batch_size)


def test_rerank_without_an_opened_cache(ranker, cache):
    with pytest.raises(InputError, match="cache must be a DocCache, got NoneType"):
        rerank(ranker, "q", ["d0"], None)
    with pytest.raises(InputError, match="Open it first: DocCache.open"):
        rerank(ranker, "q", ["d0"], str(cache.path))


def test_broken_config_json(minilm_path, tmp_path):
    folder = tmp_path / "model"
    SplitRanker.from_pretrained(minilm_path, split=6).save_pretrained(folder)
    (folder / "config.json").write_text('{"model_type": "bert", ')
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        SplitRanker.from_pretrained(folder)
    (folder / "lateint.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="lateint.json holds a JSON list"):
        SplitRanker.from_pretrained(folder)


def test_model_path_that_is_a_file(tmp_path):
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"\0" * 8)
    with pytest.raises(MissingResourceError, match="is a file; give the folder"):
        SplitRanker.from_pretrained(file)


def test_run_file_that_is_not_utf8(tmp_path):
    run = tmp_path / "run.trec"
    run.write_bytes(b"q1 Q0 d1 1 3.0 t\nq1 Q0 \xff\xfe 2 2.0 t\n")
    with pytest.raises(InputError, match="is not UTF-8 text"):
        read_run(run)


def _sweep(minilm_path, **changes):
    raw = {
        "models": [{"path": str(minilm_path), "name": "m", "max_doc_length": 64}],
        "points": {"splits": [6], "storage": ["fp16"], "heads": [{"head": "twin"}]},
        "data": {"dataset": "msmarco-passage/trec-dl-2019/judged", "first_stage": "bm25", "depth": 5, "max_queries": 2},
        "evaluation": {"metrics": ["nDCG@10"], "primary": "nDCG@10"},
    }
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    return raw


@pytest.mark.parametrize("changes,message", [
    ({"points": {"splits": [1.5]}}, r"\[points\]: splits=\[1.5\] has the wrong type; expected list\[int\]"),
    ({"points": {"splits": [-1]}}, r"points.splits must be an integer >= 0, got -1"),
    ({"points": {"splits": []}}, "non-empty list"),
    ({"points": {"storage": "fp16"}}, r"\[points\]: storage='fp16' has the wrong type; expected list\[str\]"),
    ({"sweep": {"batch_size": 0}}, r"\[sweep\] batch_size must be an integer >= 1, got 0"),
    ({"data": {"depth": 0}}, r"\[data\] depth must be an integer >= 1"),
    ({"evaluation": {"primary": "MAP"}}, r"primary='MAP' is not among metrics \['nDCG@10'\]"),
    ({"evaluation": {"metrics": ["nDCG@ten"]}}, r"\[evaluation\] metrics"),
    ({"evaluation": {"alpha": 5}}, "alpha must be a number between 0 and 1"),
])
def test_sweep_config_is_checked_before_anything_runs(minilm_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        parse_sweep_config(_sweep(minilm_path, **changes))


def test_sweep_saves_results_before_drawing(minilm_path, irdata, tmp_path, monkeypatch):
    import lateint.sweep.report as report

    def broken_plot(*_):
        raise RuntimeError("no display")

    monkeypatch.setattr(report, "pareto_plot", broken_plot)
    out = tmp_path / "sweep"
    with pytest.raises(RuntimeError, match="no display"):
        run_sweep(parse_sweep_config(_sweep(minilm_path)), out, progress=False, log=lambda *_: None)
    results = json.loads((out / "results.json").read_text())
    assert [p["split"] for p in results["points"]] == [6] and results["points"][0]["metrics"]["nDCG@10"] > 0


def test_cli_unwritable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["sweep", "--out", str(blocker / "sweep")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "a-file" in err, err


def test_cli_sweep_out_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("x")
    assert main(["sweep", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err

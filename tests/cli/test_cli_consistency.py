"""The command line means the same thing everywhere: model-running flags, storage, --out, --version."""

from __future__ import annotations

import argparse

import pytest

from lateint import __version__
from lateint.cli.common import DEFAULT_STORAGE, positive_int
from lateint.cli.main import build_parser, main

#: Every command that runs a model, as the words that reach its parser.
MODEL_COMMANDS = [("retrieve",), ("rerank",), ("cascade",), ("cache", "build"), ("demo",), ("sweep",), ("train",), ("crossval",)]


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_every_model_command_takes_device_batch_size_and_no_progress(path):
    options = _options(_subparser(path))
    assert {"--device", "--batch-size", "--no-progress"} <= set(options)
    assert options["--batch-size"].type is positive_int


@pytest.mark.parametrize("path", MODEL_COMMANDS, ids=" ".join)
def test_every_model_command_takes_dtype(path):
    from lateint.precision import DTYPES

    option = _options(_subparser(path))["--dtype"]
    assert tuple(option.choices) == DTYPES and option.default is None


def test_one_default_storage_and_outputs_named_for_what_they_are():
    storages, outs = {}, {}
    for path in [*MODEL_COMMANDS, ("evaluate",)]:
        options = _options(_subparser(path))
        if "--storage" in options:
            storages[path] = options["--storage"].default
        if "--out" in options:
            outs[path] = options["--out"].metavar
    assert set(storages.values()) == {DEFAULT_STORAGE} and len(storages) >= 4
    assert all(metavar in ("RUN.trec", "DIR", "TABLE") for metavar in outs.values()), outs
    assert outs[("retrieve",)] == outs[("rerank",)] == "RUN.trec" and outs[("cache", "build")] == "DIR"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"lateint {__version__}"


def test_train_flags_override_the_config(tiny_model, tmp_path):
    from lateint.training.cli import _apply_running_arguments
    from lateint.training.config import TrainConfig

    config = TrainConfig.from_dict({"model": str(tiny_model("bert", 2)), "steps": 2, "batch_size": 4,
                                    "output": str(tmp_path / "run"), "data": {"dataset": "x"}})
    path = config.save(tmp_path)
    args = build_parser().parse_args(["train", str(path), "--device", "cpu", "--batch-size", "3", "--no-progress"])
    config = _apply_running_arguments(TrainConfig.load(args.config), args)
    assert (config.device, config.batch_size, config.progress) == ("cpu", 3, False)
    with pytest.raises(SystemExit):  # a count below 1 is refused by the parser (see below)
        build_parser().parse_args(["crossval", str(path), "--batch-size", "0"])


def test_demo_runs_with_the_model_flags(tiny_model, capsys):
    assert main(["demo", "--model", str(tiny_model("bert", 2)), "--device", "cpu", "--batch-size", "2",
                 "--no-progress"]) == 0
    assert "relevant first" in capsys.readouterr().out


@pytest.mark.parametrize("argv,option", [
    (["cache", "build", "--dataset", "d", "--out", "o", "--compress-dim", "0"], "--compress-dim"),
    (["cache", "build", "--dataset", "d", "--out", "o", "--compress-docs", "0"], "--compress-docs"),
    (["cache", "build", "--dataset", "d", "--out", "o", "--compress-steps", "-1"], "--compress-steps"),
    (["cache", "build", "--dataset", "d", "--out", "o", "--depth", "0"], "--depth"),
    (["rerank", "--dataset", "d", "--out", "o", "--depth", "-3"], "--depth"),
    (["rerank", "--dataset", "d", "--out", "o", "--batch-size", "0"], "--batch-size"),
    (["retrieve", "--dataset", "d", "--method", "bm25", "--out", "o", "--depth", "0"], "--depth"),
    (["sweep", "--out", "o", "--batch-size", "0"], "--batch-size"),
    (["sweep", "--out", "o", "--max-queries", "0"], "--max-queries"),
    (["crossval", "c.toml", "--depth", "zero"], "--depth"),
])
def test_counts_below_one_are_refused_before_anything_runs(argv, option, capsys):
    # 0 would otherwise mean "no compression" silently, or fail deep inside (an empty compressor sample)
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}: must be a positive integer, got" in err


@pytest.mark.parametrize("argv,command", [
    (["rerank", "--dataset", "d", "--out", "o", "--run", "r.trec"], "lateint rerank"),
    (["cache", "build", "--dataset", "d", "--out", "o", "--shards", "2"], "lateint cache build"),
    (["sweep", "c.toml", "--queries", "3"], "lateint sweep"),
])
def test_an_unknown_option_is_reported_by_its_command(argv, command, capsys):
    # the top-level parser's usage lists no options, so the user is pointed at the command's own help
    from lateint.cli.main import parse_arguments

    with pytest.raises(SystemExit) as exit_info:
        parse_arguments(build_parser(), argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {command} ")
    assert err.strip().splitlines()[-1] == (f"{command}: error: unrecognized arguments: {' '.join(argv[-2:])} "
                                            f"(see {command} --help)")


def test_digits_below_zero_are_refused(capsys):
    # a negative precision ended in a ValueError traceback from the table formatting
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["evaluate", "--dataset", "d", "run.trec", "--digits", "-1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "argument --digits: must be a non-negative integer, got -1")
    assert build_parser().parse_args(["evaluate", "--dataset", "d", "run.trec", "--digits", "0"]).digits == 0

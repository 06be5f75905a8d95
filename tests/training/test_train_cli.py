"""The ``train`` subcommand's arguments."""

from __future__ import annotations

import argparse

from lateint.training.cli import add_train_command, run_train


def test_train_command_arguments(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "c.toml"])
    assert args.resume is True and args.out is None and args.func is run_train
    args = parser.parse_args(["train", "c.toml", "--fresh", "--out", str(tmp_path)])
    assert args.resume is False and args.out == tmp_path


def test_crossval_command_arguments_and_a_config_without_folds(tmp_path, make_config, student_model, capsys):
    from lateint.cli.main import main
    from lateint.training.cli import add_crossval_command, run_crossval

    parser = argparse.ArgumentParser()
    add_crossval_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["crossval", "c.toml", "--depth", "20", "--storage", "int8"])
    assert (args.depth, args.storage, args.keep_caches, args.func) == (20, "int8", False, run_crossval)
    config = make_config(student_model, data={"dataset": "msmarco-passage/trec-dl-2019/judged"})
    path = config.save(tmp_path)
    assert main(["crossval", str(path)]) == 2
    err = capsys.readouterr().err
    assert "data.folds" in err and "Traceback" not in err

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

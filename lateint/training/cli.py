"""The ``lateint train`` command: train a split ranker from a TOML config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_train_command(subparsers) -> argparse.ArgumentParser:
    """Add ``train CONFIG [--resume | --fresh] [--out DIR]`` to a subparsers object.

    The parser's ``func(args) -> int`` runs the training.
    """
    parser = subparsers.add_parser(
        "train",
        help="train or distil a split ranker from a TOML config",
        description=(
            "Train a split ranker as CONFIG (a TOML file, see lateint.training.config) says. Training groups "
            "come from the dataset named in [data]. A rerun resumes from the last checkpoint unless --fresh."
        ),
    )
    parser.add_argument("config", type=Path, help="the training config (TOML)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", dest="resume", action="store_true", default=True,
                      help="continue from the latest checkpoint in the output folder (default)")
    mode.add_argument("--fresh", dest="resume", action="store_false",
                      help="start over, deleting earlier checkpoints and the loss log")
    parser.add_argument("--out", type=Path, default=None, help="output folder (overrides the config's output)")
    parser.set_defaults(func=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    """Run ``lateint train``; prints the result as JSON and returns the exit status."""
    from lateint.training.config import TrainConfig
    from lateint.training.trainer import Trainer

    config = TrainConfig.load(args.config)
    if args.out is not None:
        config.output = str(args.out)
    result = Trainer(config).train(resume=args.resume)
    print(json.dumps(result.to_dict(), indent=2))
    return 0

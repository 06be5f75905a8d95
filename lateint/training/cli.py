"""The ``lateint train`` command: train a split ranker from a TOML config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lateint.cli.common import DEFAULT_STORAGE, STORAGES, add_dtype_argument, add_set_argument, positive_int


def _add_running_arguments(parser: argparse.ArgumentParser) -> None:
    add_set_argument(parser)
    parser.add_argument("--device", default=None, help="cpu or cuda (overrides the config's device)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="training groups per step (overrides the config's batch_size)")
    add_dtype_argument(parser, what="the config's dtype, else fp32 (validation and test scoring; training "
                                    "arithmetic is the config's amp)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _apply_running_arguments(config, args: argparse.Namespace):
    """The config with the command line's --device, --batch-size, --dtype and --no-progress applied, re-validated."""
    if args.device is not None:
        config.device = args.device
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    if args.dtype is not None:
        config.dtype = args.dtype
    if args.no_progress:
        config.progress = False
    config.validate()
    return config


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
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (overrides the config's output)")
    _add_running_arguments(parser)
    parser.set_defaults(func=run_train)
    return parser


def add_crossval_command(subparsers) -> argparse.ArgumentParser:
    """Add ``crossval CONFIG [--out DIR] [--depth N] [--storage S] [--keep-caches]``."""
    parser = subparsers.add_parser(
        "crossval",
        help="k-fold cross-validation over queries: train on k-1 folds, re-rank the held-out one, merge",
        description=(
            "Cross-validate the training config CONFIG (a TOML file with data.folds = k >= 2): for each fold, "
            "train on the other folds' queries and re-rank the fold's first-stage candidates (data.run); the "
            "fold runs are merged into one test run per split and evaluated against the first stage. "
            "A rerun resumes where it stopped."
        ),
    )
    parser.add_argument("config", type=Path, help="the training config (TOML) with data.folds set")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (default: the config's output)")
    parser.add_argument("--depth", type=positive_int, default=None, help="candidates re-ranked per query (default data.depth)")
    parser.add_argument("--storage", choices=STORAGES, default=DEFAULT_STORAGE,
                        help="document cache precision while re-ranking (default %(default)s)")
    parser.add_argument("--keep-caches", action="store_true", help="keep the folds' document caches")
    _add_running_arguments(parser)
    parser.set_defaults(func=run_crossval)
    return parser


def run_crossval(args: argparse.Namespace) -> int:
    """Run ``lateint crossval``; prints the evaluation table and where the merged runs are."""
    from lateint.training.config import TrainConfig
    from lateint.training.crossval import cross_validate

    config = _apply_running_arguments(TrainConfig.load(args.config, args.overrides), args)
    result = cross_validate(config, args.out, depth=args.depth, storage=args.storage, keep_caches=args.keep_caches,
                            progress=config.progress)
    if result.evaluation is not None:
        print(result.evaluation.to_markdown())
    for split, path in result.runs.items():
        print(f"merged test run at L={split}: {path}")
    print(f"record: {result.folder / 'crossval.json'}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Run ``lateint train``; prints the result as JSON and returns the exit status."""
    from lateint.training.config import TrainConfig
    from lateint.training.trainer import Trainer

    config = _apply_running_arguments(TrainConfig.load(args.config, args.overrides), args)
    if args.out is not None:
        config.output = str(args.out)
    result = Trainer(config).train(resume=args.resume)
    print(json.dumps(result.to_dict(), indent=2))
    return 0

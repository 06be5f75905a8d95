"""Entry point of the ``lateint`` command."""

from __future__ import annotations

import argparse
import logging
import sys

from lateint.errors import LateintError


def build_parser() -> argparse.ArgumentParser:
    from lateint.cli.cache import add_cache_command
    from lateint.cli.config import add_config_command
    from lateint.cli.cascade import add_cascade_command
    from lateint.cli.demo import add_demo_command
    from lateint.cli.rerank import add_rerank_command
    from lateint.cli.retrieve import add_retrieve_command
    from lateint.cli.sweep import add_sweep_command
    from lateint.evaluation.cli import add_evaluate_command
    from lateint.training.cli import add_crossval_command, add_train_command

    parser = argparse.ArgumentParser(
        prog="lateint",
        description="One BERT encoder from cross-encoder to twin: split, cache, re-rank, evaluate, train.",
    )
    from lateint import __version__

    parser.add_argument("--version", action="version", version=f"lateint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_demo_command(sub)
    add_cache_command(sub)
    add_retrieve_command(sub)
    add_rerank_command(sub)
    add_cascade_command(sub)
    add_evaluate_command(sub)
    add_sweep_command(sub)
    add_train_command(sub)
    add_crossval_command(sub)
    add_config_command(sub)
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args``, but an option the command does not know is reported by that command's parser
    (``lateint rerank: error: ...``, with its usage) rather than by the top-level one, whose usage lists no
    options at all."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        command = _chosen_parser(parser, args)
        command.error(f"unrecognized arguments: {' '.join(unknown)} (see {command.prog} --help)")
    return args


def _chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost (sub)command parser ``args`` was parsed by."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _chosen_parser(action.choices[getattr(args, action.dest)], args)
    return parser


def _quiet_transformers() -> None:
    # Per-tensor loading bars drown the command's own progress and tables.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _quiet_transformers()
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LateintError as exc:
        print(f"lateint {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # The file-system boundary: unwritable or missing paths, full disks.
        where = f" {exc.filename}" if exc.filename else ""
        print(f"lateint {args.command}: error: cannot use{where}: {exc.strerror or exc}; check the path and its "
              "permissions.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lateint {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

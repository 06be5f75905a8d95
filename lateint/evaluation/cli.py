"""The ``evaluate`` command: score runs on a dataset and print a table.

``add_evaluate_command(subparsers)`` adds it to an ``argparse`` command line::

    lateint evaluate --dataset msmarco-passage/trec-dl-2019/judged bm25 tasb rerank=out/rerank.trec \\
        --baseline bm25 --metrics nDCG@10,MRR@10 --format latex --out table.tex
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lateint.errors import InputError, LateintError

_RUN_SUFFIXES = (".trec", ".run", ".txt", ".tsv")


def add_evaluate_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to ``subparsers``; the parsed arguments' ``func`` runs it."""
    from lateint.cli.common import non_negative_int
    from lateint.evaluation.metrics import DEFAULT_METRICS
    from lateint.evaluation.significance import CORRECTIONS

    parser = subparsers.add_parser(
        "evaluate",
        help="score runs against a dataset's qrels, with significance tests against a baseline",
        description="Score runs with ranx and test each against a baseline. A RUN is the name of one "
                    "of the dataset's first-stage runs (e.g. bm25), a TREC run file, or NAME=FILE to "
                    "label a file. Binary measures use the dataset's official relevance level "
                    "(2 on TREC DL) unless --relevance-level is given.",
    )
    parser.add_argument("--dataset", required=True, help="dataset id, e.g. msmarco-passage/trec-dl-2019/judged")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run name, run file, or NAME=FILE")
    parser.add_argument("--baseline", help="label of the run the others are tested against")
    parser.add_argument("--metrics", action="append", metavar="LIST",
                        help=f"comma-separated metrics (repeatable); default {','.join(DEFAULT_METRICS)}")
    parser.add_argument("--relevance-level", type=int, help="lowest grade binary measures count as relevant")
    parser.add_argument("--stat-test", choices=("student", "fisher"), default="student")
    parser.add_argument("--correction", choices=CORRECTIONS, default="holm",
                        help="multiple-testing correction over all runs x metrics (default holm)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--format", choices=("markdown", "latex", "json"), default="markdown")
    parser.add_argument("--digits", type=non_negative_int, default=4, help="decimals shown (markdown, latex)")
    parser.add_argument("--out", type=Path, metavar="TABLE", help="write the table here instead of standard output")
    parser.set_defaults(func=run_evaluate_command)
    return parser


def run_label(spec: str) -> tuple[str, str]:
    """``(label, run)`` for one RUN argument: ``NAME=FILE``, a file (labelled by its stem), or a name."""
    if "=" in spec and not Path(spec).exists():
        label, _, run = spec.partition("=")
        if label and run:
            return label, run
    path = Path(spec)
    if path.suffix in _RUN_SUFFIXES or path.is_file():
        stem = path.name
        for suffix in _RUN_SUFFIXES:
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        return stem.removesuffix(".top100") or path.name, spec
    return spec, spec


def run_evaluate_command(args: argparse.Namespace) -> int:
    """Run ``evaluate`` for parsed arguments; returns the exit code (2 for bad input)."""
    from lateint.data.datasets import load_dataset
    from lateint.evaluation.evaluate import evaluate

    try:
        runs: dict[str, str] = {}
        for spec in args.runs:
            label, run = run_label(spec)
            if label in runs:
                raise InputError(f"two runs are labelled {label!r}; use NAME=FILE to tell them apart")
            runs[label] = run
        metrics = None
        if args.metrics:
            metrics = [name.strip() for group in args.metrics for name in group.split(",") if name.strip()]
        result = evaluate(
            load_dataset(args.dataset),
            runs,
            metrics,
            baseline=args.baseline,
            relevance_level=args.relevance_level,
            stat_test=args.stat_test,
            correction=args.correction,
            alpha=args.alpha,
        )
        text = result.render(args.format, digits=args.digits)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except LateintError as error:
        print(f"lateint evaluate: error: {error}", file=sys.stderr)
        return 2
    return 0


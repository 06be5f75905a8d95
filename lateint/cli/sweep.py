"""``lateint sweep [CONFIG] --out DIR``: a sweep over interaction depth."""

from __future__ import annotations

import argparse
from pathlib import Path

from lateint.cli.common import add_dtype_argument, add_set_argument, positive_int


def add_sweep_command(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="re-rank, evaluate, time and size every point of a sweep over interaction depth",
        description="Run a sweep from a TOML config (default: the built-in DL19 sweep of the packaged MiniLM at "
                    "every split). Writes results.json, table.md and pareto.png into --out; rerunning resumes.")
    p.add_argument("config", nargs="?", type=Path, default=None, help="sweep TOML file (default: built-in)")
    p.add_argument("--out", type=Path, default=Path("lateint-out/sweep"), metavar="DIR",
                   help="output folder (default: %(default)s)")
    p.add_argument("--max-queries", type=positive_int, default=None, help="only the first N queries (a quick look)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="pairs per forward pass (default: the config's)")
    add_set_argument(p)
    add_dtype_argument(p, what="the config's [sweep] dtype, else fp32; a [[models]] entry's own dtype wins")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from lateint.sweep import load_sweep_config, run_sweep

    config = load_sweep_config(args.config, args.overrides)
    if args.max_queries is not None:
        config.data.max_queries = args.max_queries
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    if args.dtype is not None:
        config.dtype = args.dtype
    print(f"sweep {config.name!r}: {len(config.models)} model(s), heads "
          f"{[h.label() for h in config.points.heads]}, splits {config.points.splits}, storage {config.points.storage}, "
          f"{config.data.dataset} / {config.data.first_stage} top-{config.data.depth}")
    results = run_sweep(config, args.out, progress=not args.no_progress, device=args.device)
    print()
    print((args.out / "table.md").read_text())
    print(f"results: {args.out / 'results.json'}\ntable:   {args.out / 'table.md'}\nplot:    {args.out / 'pareto.png'}")
    print(f"took {results['seconds_this_run']:.0f} s")
    return 0

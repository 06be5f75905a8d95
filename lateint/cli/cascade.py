"""``lateint cascade``: re-rank a dataset's first-stage run in stages along one checkpoint's dial."""

from __future__ import annotations

import argparse
from pathlib import Path

from lateint.cli.common import (DEFAULT_STORAGE, STORAGES, add_model_arguments, add_run_arguments, load_ranker,
                                model_label)


def stages_argument(text: str):
    """An argparse type: ``SPLIT:DEPTH,...`` as cascade stages (argparse's error names the option)."""
    from lateint.cascading import parse_stages
    from lateint.errors import InputError

    try:
        return parse_stages(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_cascade_command(subparsers) -> None:
    p = subparsers.add_parser(
        "cascade", help="re-rank a first-stage run in stages along one checkpoint's dial",
        description="Re-rank the first stage of a dataset in stages: the first stage re-ranks the top DEPTH of the "
                    "first-stage run at its split, each next stage the top DEPTH of the stage before it at its own "
                    "split (e.g. --stages 6:100,4:30,0:10). Each stage reads a document cache of its split; the TREC "
                    "run is written query by query (rerunning resumes) and RUN.trec.json holds each stage's timing.")
    add_model_arguments(p)
    p.add_argument("--dataset", required=True, help="ir_datasets id (queries, documents)")
    p.add_argument("--first-stage", default=None,
                   help="a run name known for the dataset (e.g. bm25) or a TREC run file; default: its scoreddocs")
    p.add_argument("--stages", required=True, type=stages_argument, metavar="SPLIT:DEPTH,...",
                   help="the stages, first first, with decreasing depths, e.g. 6:100,4:30,0:10")
    p.add_argument("--out", required=True, type=Path, metavar="RUN.trec", help="TREC run to write")
    p.add_argument("--storage", default=DEFAULT_STORAGE, choices=STORAGES, help="document cache precision (default %(default)s)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the stages' document caches go (default: beside --out)")
    add_run_arguments(p)
    p.add_argument("--tag", default=None, help="run tag (default names the model and the stages)")
    p.set_defaults(func=run_cascade)


def run_cascade(args: argparse.Namespace) -> int:
    from lateint.cascading import cascade, check_stages
    from lateint.data import load_dataset

    ranker = load_ranker(args)
    stages = check_stages(args.stages, ranker.max_split)  # before the dataset loads: a bad spec fails at once
    dataset = load_dataset(args.dataset)
    candidates = dataset.candidates(args.first_stage, stages[0].depth)
    tag = args.tag or "-".join([model_label(args.model).replace("/", "_"), "cascade",
                                *(f"L{s.split}at{s.depth}" for s in stages), args.storage])
    report = cascade(ranker, dataset, candidates, args.out, stages=stages, tag=tag, cache_root=args.cache_dir,
                     storage=args.storage, batch_size=args.batch_size, progress=not args.no_progress)
    print(f"{args.out}: {report.queries} queries ({report.scored_now} scored now), tag {tag}")
    if report.latencies_ms:
        per_stage = ", ".join(f"L={s['split']}@{s['depth']} {s['median_ms']:.1f}" for s in report.to_dict()["stages"])
        print(f"cascade latency: median {report.median_latency_ms:.1f} ms/query end to end ({per_stage} ms median per stage)")
    print(f"timing: {args.out}.json")
    return 0

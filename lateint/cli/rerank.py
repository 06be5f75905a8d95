"""``lateint rerank``: re-rank a dataset's first-stage run into a TREC run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lateint.cli.common import (DEFAULT_STORAGE, STORAGES, add_model_arguments, add_run_arguments, load_ranker,
                                model_label, positive_int)


def add_rerank_command(subparsers) -> None:
    p = subparsers.add_parser(
        "rerank", help="re-rank a first-stage run with a split ranker",
        description="Re-rank the first stage of a dataset and write a TREC run. Documents are cached once "
                    "at the ranker's split; queries are written as they finish, so rerunning resumes.")
    add_model_arguments(p)
    p.add_argument("--dataset", required=True, help="ir_datasets id (queries, documents)")
    p.add_argument("--first-stage", default=None,
                   help="a run name known for the dataset (e.g. bm25) or a TREC run file; default: its scoreddocs")
    p.add_argument("--depth", type=positive_int, default=100, help="candidates per query (default 100)")
    p.add_argument("--out", required=True, type=Path, metavar="RUN.trec", help="TREC run to write")
    p.add_argument("--storage", default=DEFAULT_STORAGE, choices=STORAGES, help="document cache precision (default %(default)s)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where document caches go (default: beside --out)")
    p.add_argument("--cache", type=Path, default=None,
                   help="re-rank from this cache, built beforehand with `lateint cache build` (e.g. over the whole "
                        "collection), instead of building one for the candidates")
    add_run_arguments(p)
    p.add_argument("--tag", default=None, help="run tag (default names model and configuration)")
    p.set_defaults(func=run_rerank)


def run_rerank(args: argparse.Namespace) -> int:
    from lateint.data import load_dataset
    from lateint.pipeline.rerank_run import rerank_dataset, run_tag

    ranker = load_ranker(args)
    dataset = load_dataset(args.dataset)
    candidates = dataset.candidates(args.first_stage, args.depth)
    tag = args.tag or run_tag(ranker, model_label(args.model), args.storage)
    report = rerank_dataset(ranker, dataset, candidates, args.out, tag=tag, cache_root=args.cache_dir,
                            storage=args.storage, batch_size=args.batch_size, cache=args.cache,
                            progress=not args.no_progress)
    print(f"{args.out}: {report.queries} queries ({report.scored_now} scored now), tag {tag}")
    if report.latencies_ms:
        print(f"re-rank latency: mean {report.mean_latency_ms:.1f} ms/query, median {report.median_latency_ms:.1f} ms "
              f"({report.candidates_per_query:.0f} candidates per query)")
    if report.cache_path:
        print(f"cache: {report.cache_path}, {report.cache_bytes_per_doc:,.0f} bytes/doc")
    Path(str(args.out) + ".json").write_text(json.dumps({"ranker": ranker.config.to_dict(), **report.to_dict()}, indent=2))
    return 0

"""``lateint retrieve``: a first-stage TREC run for any dataset with documents and queries.

``--method bm25`` indexes the collection with ``bm25s`` (English stemmer, stopwords);
``--method dense`` encodes every document once into an L = T twin cache (``--cache``, resumable)
and takes the exact top-k by dot product. Queries are written as they finish, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lateint.cli.common import (DEFAULT_STORAGE, STORAGES, add_model_arguments, add_run_arguments,
                                add_skip_empty_argument, load_ranker, model_label, positive_int, print_skipped)

METHODS = ("bm25", "dense")


def add_retrieve_command(subparsers) -> None:
    p = subparsers.add_parser(
        "retrieve", help="first-stage retrieval (BM25 or exact dense top-k) into a TREC run",
        description="Retrieve the top documents of every query of a dataset and write a TREC run. "
                    "bm25: bm25s with an English stemmer (pip install 'lateint[bm25]'). dense: an L = T twin "
                    "(cosine or dot) over a cache of every document, built at --cache if absent.")
    p.add_argument("--dataset", required=True, help="ir_datasets id or local TREC-style folder (documents, queries)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--depth", type=positive_int, default=100, help="documents per query (default 100)")
    p.add_argument("--out", required=True, type=Path, metavar="RUN.trec", help="TREC run to write")
    p.add_argument("--tag", default=None, help="run tag (default: the method, and the model for dense)")
    bm25 = p.add_argument_group("bm25")
    bm25.add_argument("--k1", type=float, default=1.5, help="BM25 k1 (default 1.5)")
    bm25.add_argument("--b", type=float, default=0.75, help="BM25 b (default 0.75)")
    bm25.add_argument("--stemmer", default="english", help="Snowball language, or 'none' (default english)")
    bm25.add_argument("--stopwords", default="en", help="bm25s stopword list, or 'none' (default en)")
    add_model_arguments(p)
    dense = p.add_argument_group("dense")
    dense.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="twin cache of every document (built there if absent; default: beside --out)")
    dense.add_argument("--storage", default=DEFAULT_STORAGE, choices=STORAGES,
                       help="storage of a cache built now (default %(default)s)")
    add_skip_empty_argument(dense)
    add_run_arguments(p)
    p.set_defaults(func=run_retrieve)


def _none(value: str) -> str | None:
    return None if value.lower() == "none" else value


def run_retrieve(args: argparse.Namespace) -> int:
    from lateint.data import load_dataset
    from lateint.data.runs import ResumableRunWriter, check_run_queries
    from lateint.errors import InputError
    from lateint.retrieval import BM25Index, BM25Settings, dense_retrieve, iter_documents

    progress = not args.no_progress
    dataset = load_dataset(args.dataset)
    queries = dataset.queries()
    if not queries:
        raise InputError(f"dataset {args.dataset!r} has no queries to retrieve for")
    record: dict = {"dataset": args.dataset, "method": args.method, "depth": args.depth}
    with ResumableRunWriter(args.out, args.tag or _default_tag(args)) as writer:
        pending = writer.pending(queries)
        if not pending:
            print(f"{args.out}: all {len(queries)} queries already retrieved")
            return 0
        todo = {q: queries[q] for q in pending}
        if args.method == "bm25":
            settings = BM25Settings(args.k1, args.b, _none(args.stemmer), _none(args.stopwords))
            record["bm25"] = vars(settings)
            index = BM25Index.build(iter_documents(dataset), settings, progress=progress)
            results = index.search(todo, args.depth, progress=progress)
        else:
            ranker = load_ranker(args)
            skipped: list[str] = []
            cache = _twin_cache(args, ranker, dataset, progress, skipped)
            print_skipped(skipped)
            record["ranker"] = ranker.config.to_dict()
            record["cache"] = str(cache.path)
            if args.skip_empty:
                record["skipped_empty"] = skipped
            results = dense_retrieve(ranker, cache, todo, args.depth, batch_size=args.batch_size, progress=progress)
        check_run_queries(results, queries.keys(), source="retrieved run")
        empty = 0
        for qid in pending:
            if results.get(qid):
                writer.write(qid, results[qid])
            else:
                empty += 1
        done = len(writer.done)
    Path(str(args.out) + ".json").write_text(json.dumps(record, indent=2, default=str))
    note = f", {empty} with no matching document" if empty else ""
    print(f"{args.out}: {done} queries, top-{args.depth} by {args.method}{note}")
    return 0


def _default_tag(args: argparse.Namespace) -> str:
    return "bm25" if args.method == "bm25" else f"dense-{model_label(args.model)}"


def _twin_cache(args: argparse.Namespace, ranker, dataset, progress: bool, skipped: list[str]):
    """The twin cache of every document (of every non-empty one with ``--skip-empty``, whose left-out ids
    go to ``skipped``), built or completed now where needed."""
    from lateint.cache.doc_cache import DocCache
    from lateint.errors import MissingResourceError
    from lateint.retrieval import iter_documents, non_empty
    from lateint.retrieval.dense import check_dense_ranker

    check_dense_ranker(ranker)
    folder = args.cache or args.out.with_name(args.out.name + ".cache")
    if folder.exists():
        try:
            cache = DocCache.open(folder)
            if len(cache) == dataset.doc_count():
                return cache
        except MissingResourceError:  # an interrupted build, which DocCache.build resumes
            pass
    # with --skip-empty a complete cache holds fewer documents than the collection: the pass below then
    # reads the collection once more (encoding nothing), so that the left-out ids are known and reported
    docs = non_empty(iter_documents(dataset), skipped) if args.skip_empty else iter_documents(dataset)
    return DocCache.build(ranker, docs, folder, storage=args.storage,
                          batch_size=args.batch_size, progress=progress, total=dataset.doc_count())

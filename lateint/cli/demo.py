"""``lateint demo``: score the built-in examples at every split of one model."""

from __future__ import annotations

import argparse
import json
import time

from lateint.checkpoints import DEFAULT_MODEL
from lateint.cli.common import add_device_argument, add_dtype_argument, add_run_arguments
from lateint.examples import example_pairs


def add_demo_command(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="score built-in example query-passage pairs at every split",
        description="Score the built-in examples at every split L = 0..T of one model and show, per split, "
        "the scores and whether each query's relevant passage is ranked first.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="hub id or folder (default: %(default)s, packaged)")
    p.add_argument("--head", default="twin", help="scoring head at every split (default: %(default)s)")
    p.add_argument("--pooling", default=None)
    p.add_argument("--crossing", default=None)
    p.add_argument("--json", dest="json_out", default=None, metavar="SCORES.json",
                   help="also write the scores to this JSON file")
    add_device_argument(p)
    add_dtype_argument(p)
    add_run_arguments(p, batch_size=32)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from lateint import SplitRanker

    queries, docs, labels = example_pairs()
    base = SplitRanker.from_pretrained(args.model, head=args.head, pooling=args.pooling, crossing=args.crossing,
                                       device=args.device, dtype=args.dtype)
    T = base.num_layers
    print(f"model: {args.model}  (T = {T} layers, head = {args.head}, dtype = {base.config.dtype})")
    print(f"{len(set(queries))} queries x {len(docs) // len(set(queries))} passages; * marks the relevant passage\n")
    rows = []
    for split in range(T + 1):
        if args.head == "cls" and split == T:
            continue
        ranker = base.at(split)
        start = time.perf_counter()
        scores = ranker.score(queries, docs, batch_size=args.batch_size, progress=not args.no_progress).tolist()
        elapsed = time.perf_counter() - start
        correct = 0
        for q in dict.fromkeys(queries):
            idx = [i for i, x in enumerate(queries) if x == q]
            best = max(idx, key=lambda i: scores[i])
            correct += labels[best]
        rows.append({"split": split, "layout": ranker.config.sides.layout, "scores": scores,
                     "relevant_first": correct, "queries": len(set(queries)), "seconds": elapsed})
    width = max(len(d) for d in docs[:3])
    print(f"{'L':>2} {'layout':<9} " + " ".join(f"{'p' + str(i + 1) + ('*' if labels[i] else ''):>6}" for i in range(len(docs))) + "  relevant first")
    for r in rows:
        print(f"{r['split']:>2} {r['layout']:<9} " + " ".join(f"{s:6.3f}" for s in r["scores"]) +
              f"  {r['relevant_first']}/{r['queries']}")
    print()
    for i, (q, d) in enumerate(zip(queries, docs)):
        print(f"p{i + 1}{'*' if labels[i] else ' '} [{q}] {d[:width]}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"model": args.model, "head": args.head, "dtype": base.config.dtype, "rows": rows}, f, indent=2)
    return 0

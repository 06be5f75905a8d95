"""Training on the CPU with ``amp = "bf16"`` against fp32: step time, and whether the losses match.

Trains the packaged all-MiniLM-L6-v2 twice from the same seed at L = 0 (``cls`` head) and at L = T
(twin head: mean pooling, cosine), once with ``amp = "no"`` (fp32) and once with ``amp = "bf16"``
(autocast; the weights stay fp32), for ``--steps`` steps (default 50) of ``--batch-size`` groups
of 1 judged passage + 7 BM25 negatives from TREC DL 2019 (``LATEINT_DATA``; ``--synthetic`` uses
built-in texts instead, e.g. for a quick check). Same data order, same dropout seeds: the two loss
curves differ only by bf16 rounding.

Per run: the median step time (from the loss log's cumulative seconds; the first step, which
warms up, is left out) and the losses; per L: bf16 / fp32 step time, and the largest and mean
absolute loss difference over the steps, relative to the mean fp32 loss. Timings need a quiet
machine. Writes ``benchmarks/results/cpu_training_bf16.json``.

    python benchmarks/cpu_training_bf16.py [--steps 50] [--batch-size 4] [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lateint.checkpoints import DEFAULT_MODEL, inspect, resolve  # noqa: E402
from lateint.precision import read_cpu_flags  # noqa: E402

DATASET = "msmarco-passage/trec-dl-2019/judged"


def train(model: str, split: int, head: str, amp: str, args, dataset: str, run: str, out: Path) -> dict:
    from accelerate.state import AcceleratorState

    from lateint.training.config import TrainConfig
    from lateint.training.trainer import Trainer

    # accelerate keeps one mixed-precision setting per process; the runs here alternate between two
    AcceleratorState._reset_state(reset_partial_state=True)
    config = TrainConfig.from_dict({
        "model": model, "split": split, "head": head, "steps": args.steps, "batch_size": args.batch_size,
        "device": "cpu", "amp": amp, "seed": args.seed, "progress": False, "output": str(out),
        "optim": {"lr": 3e-5, "head_lr": 1e-3},
        "data": {"dataset": dataset, "run": run, "negatives": 7, "depth": 100, "max_doc_length": args.max_doc_length},
    })
    result = Trainer(config).train(resume=False)
    log = [json.loads(line) for line in Path(result.loss_log).read_text().splitlines() if line.strip()]
    seconds = [r["seconds"] for r in log]
    steps = [b - a for a, b in zip(seconds, seconds[1:])]
    return {"amp": amp, "losses": [r["loss"] for r in log],
            "median_step_seconds": statistics.median(steps) if steps else seconds[0], "seconds": result.seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-doc-length", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synthetic", action="store_true", help="built-in texts instead of DL19 (a quick check)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu_training_bf16.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = str(resolve(DEFAULT_MODEL))
    T = int(inspect(model).config["num_hidden_layers"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.synthetic:
            from gpu import write_local_dataset

            sizes = {"group_size": 8, "groups": max(args.batch_size, 4)}
            dataset, run = str(write_local_dataset(work / "data", sizes)), "first"
        else:
            dataset, run = DATASET, "bm25"
        for split, head in ((0, "cls"), (T, "twin")):
            runs = {amp: train(model, split, head, amp, args, dataset, run, work / f"{head}-{amp}") for amp in ("no", "bf16")}
            fp32, bf16 = runs["no"]["losses"], runs["bf16"]["losses"]
            diffs = [abs(a - b) for a, b in zip(fp32, bf16)]
            scale = statistics.fmean(abs(x) for x in fp32) or 1.0
            row = {"split": split, "head": head, "runs": runs,
                   "bf16_over_fp32_step_time": runs["bf16"]["median_step_seconds"] / runs["no"]["median_step_seconds"],
                   "max_abs_loss_difference": max(diffs), "mean_abs_loss_difference": statistics.fmean(diffs),
                   "max_relative_loss_difference": max(diffs) / scale,
                   "final_losses": {"fp32": fp32[-1], "bf16": bf16[-1]}}
            rows.append(row)
            print(f"L={split} ({head}): step {runs['no']['median_step_seconds']:.2f} s fp32, "
                  f"{runs['bf16']['median_step_seconds']:.2f} s bf16 ({row['bf16_over_fp32_step_time']:.2f}x); "
                  f"loss difference max {row['max_abs_loss_difference']:.4f} "
                  f"({row['max_relative_loss_difference']:.1%} of the mean fp32 loss)", flush=True)
    record = {"model": DEFAULT_MODEL, "dataset": "synthetic" if args.synthetic else DATASET, "steps": args.steps,
              "batch_size": args.batch_size, "group_size": 8, "max_doc_length": args.max_doc_length, "seed": args.seed,
              "threads": args.threads, "torch": torch.__version__, "processor": platform.processor(),
              "cpu_bf16_flags": sorted(f for f in read_cpu_flags() if f in ("amx_bf16", "avx512_bf16")), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Projection: hours and bytes to cache MS MARCO passage, per split and storage, on this CPU.

Reads the rates ``benchmarks/cache_throughput.py`` measured (docs/s per split with one process and
one thread, the 2-process speed-up, the mean stored tokens of the DL19 passages) and projects them
to the 8,841,823 MS MARCO passages:

* **bytes** per split and storage, from the codec sizes (per token: fp32 4H, fp16 2H, int8 H + 4;
  5 B of token ids at L = 0; one vector per passage at L = T) plus the per-passage bookkeeping
  (offsets, CRC, ids and index: about 34 B);
* **hours** with N processes of one core each, scaled from the measured 1- and 2-process rates
  (the 2-process efficiency is assumed to hold per pair of cores, i.e. N/2 machines like this one);
* **what a GPU changes**, from FLOPs: the lower layers' FLOPs per passage against a GPU's dense
  fp16 peak at the utilisation this CPU reached of its own peak, and the bytes that must then be
  written per second.

Usage: ``python benchmarks/cache_projection.py [--rates benchmarks/results/cache_throughput.json]``
writes ``cache_projection.md`` and ``.json`` beside the rates (``cache_projection.smoke.*`` from a smoke run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MSMARCO_PASSAGES = 8_841_823
HIDDEN, INTERMEDIATE, LAYERS = 384, 1536, 6  # all-MiniLM-L6-v2
CPU_PEAK_FLOPS = 139e9  # fp32 matmul peak measured on this machine (DESIGN.md)
GPU = {"name": "H100 SXM (dense fp16/bf16)", "peak_flops": 989e12}
PER_DOC_OVERHEAD = 8 + 4 + 7 + 15  # offsets, CRC, id in the shard, index entry (id, shard, row)
STORAGES = {"fp32": 4 * HIDDEN, "fp16": 2 * HIDDEN, "int8": HIDDEN + 4}
PROCESSES = (1, 2, 4, 8, 16, 64)


def layer_flops_per_token(tokens: float) -> float:
    """FLOPs of one layer per token of a ``tokens``-long sequence (see lateint.profiling.flops)."""
    H, I = HIDDEN, INTERMEDIATE
    return 2 * 4 * H * H + 2 * 2 * tokens * H + 2 * 2 * H * I


def bytes_per_doc(split: int, storage: str, tokens: float) -> float:
    if split == 0:
        return tokens * 5 + PER_DOC_OVERHEAD
    if split == LAYERS:
        return STORAGES[storage] + PER_DOC_OVERHEAD
    return tokens * STORAGES[storage] + PER_DOC_OVERHEAD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=Path, default=REPO / "benchmarks" / "results" / "cache_throughput.json")
    args = parser.parse_args()
    rates = json.loads(args.rates.read_text())
    rows = {r["split"]: r for r in rates["one_process"]}
    tokens = max(r["mean_tokens"] for r in rates["one_process"])  # token-level splits store every token
    efficiency = rates["two_process_speedup"] / 2
    table, lines = [], []
    lines.append(f"# MS MARCO passage cache projection ({MSMARCO_PASSAGES:,} passages)\n")
    lines.append(f"From `{args.rates.name}`{' (SMOKE RUN: not a measurement)' if rates.get('smoke') else ''}: "
                 f"{rates['setup']}; mean {tokens:.1f} stored tokens per passage; 2-process efficiency "
                 f"{efficiency:.2f} (assumed per pair of cores beyond 2).\n")
    header = "| L | storage | bytes | " + " | ".join(f"hours, {n} proc" for n in PROCESSES) + " | GPU hours (FLOPs) |"
    lines += [header, "|" + "---|" * (4 + len(PROCESSES))]
    for split in sorted(rows):
        rate = rows[split]["docs_per_s"]
        flops_per_doc = split * layer_flops_per_token(tokens) * tokens
        cpu_utilisation = flops_per_doc * rate / CPU_PEAK_FLOPS if split else None
        gpu_hours = (MSMARCO_PASSAGES * flops_per_doc / (GPU["peak_flops"] * cpu_utilisation) / 3600
                     if cpu_utilisation else None)
        for storage in (["ids"] if split == 0 else STORAGES):
            size = MSMARCO_PASSAGES * bytes_per_doc(split, "fp16" if split == 0 else storage, tokens)
            hours = {n: MSMARCO_PASSAGES / (rate * (1 if n == 1 else n * efficiency)) / 3600 for n in PROCESSES}
            table.append({"split": split, "storage": storage, "bytes": size, "hours": hours,
                          "docs_per_s_one_process": rate, "flops_per_doc": flops_per_doc,
                          "cpu_utilisation_of_peak": cpu_utilisation, "gpu_hours_compute": gpu_hours})
            gpu = f"{gpu_hours:.3f}" if gpu_hours is not None else "n/a (tokenizing only)"
            lines.append(f"| {split} | {storage} | {size / 1e9:,.1f} GB | "
                         + " | ".join(f"{hours[n]:,.1f}" for n in PROCESSES) + f" | {gpu} |")
    lines.append("")
    lines.append("Hours are the same for every storage: the rates were measured with fp16, and encoding a token row "
                 "as fp32, fp16 or int8 costs far less than computing it. Bytes add the per-passage bookkeeping "
                 f"({PER_DOC_OVERHEAD} B: offsets, CRC, ids, index).")
    lines.append("")
    lines.append(f"GPU column: the passages' lower-layer FLOPs on one {GPU['name']} ({GPU['peak_flops'] / 1e12:.0f} "
                 "TFLOP/s) at the same fraction of peak this CPU reached. Compute then takes minutes, so a GPU "
                 "build is bound by what is not compute: tokenizing (CPU, parallel over processes) and writing "
                 "the bytes (e.g. 475 GB of fp16 states in 10 minutes needs ~0.8 GB/s of sustained writes).")
    stem = "cache_projection.smoke" if rates.get("smoke") else "cache_projection"
    (args.rates.parent / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.rates.parent / f"{stem}.json").write_text(json.dumps(
        {"source": args.rates.name, "smoke": rates.get("smoke", False), "passages": MSMARCO_PASSAGES,
         "mean_tokens": tokens, "two_process_efficiency": efficiency, "gpu": GPU, "rows": table}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

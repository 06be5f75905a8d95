"""bf16 against fp32 on the built-in DL19 sweep, at every split: nDCG@10 and per-query Kendall tau.

Runs the built-in sweep (the packaged all-MiniLM-L6-v2 as a zero-shot twin, mean pooling and
cosine, re-ranking the BM25 top-100 of TREC DL 2019, fp16 document caches) twice over, once in
fp32 and once in bf16, as two ``[[models]]`` of one sweep, then compares the two runs at each L:
the difference in nDCG@10 (ranx, through the sweep's evaluation) and Kendall's tau between the two
precisions' scores of each query's candidates (scipy; tau-b, so tied scores are handled).

Accuracy, not timing: contention on the machine changes nothing here. bf16 is worth running only
where the CPU has it (``lateint.precision.auto_dtype``); elsewhere it is emulated and slow, but the
figures hold. Resumable (the sweep is). Writes ``benchmarks/results/bf16_accuracy.json`` and
``bf16_accuracy.md`` (the table the README quotes).

    python benchmarks/bf16_accuracy.py [--work lateint-out/bf16-accuracy] [--max-queries N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

from lateint.precision import auto_dtype, read_cpu_flags
from lateint.sweep.config import load_sweep_config
from lateint.sweep.runner import run_sweep

RESULTS = Path("benchmarks/results")
#: The issue's goals: |nDCG@10 difference| at most this, and per-query tau at least this, at every L.
GOALS = {"ndcg_difference": 0.002, "kendall_tau": 0.98}


def kendall_taus(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per query, Kendall's tau-b between two runs' scores of the same candidates."""
    from scipy.stats import kendalltau

    taus = {}
    for qid in sorted(a.keys() & b.keys()):
        docs = sorted(a[qid].keys() & b[qid].keys())
        if len(docs) > 1:
            taus[qid] = float(kendalltau([a[qid][d] for d in docs], [b[qid][d] for d in docs]).statistic)
    return taus


def compare(points: list[dict], reference: str = "fp32", other: str = "bf16") -> list[dict]:
    """One row per split: both precisions' nDCG@10, their difference and the per-query taus."""
    from lateint.data.runs import read_run

    by = {(p["dtype"], p["split"]): p for p in points}
    rows = []
    for split in sorted({s for d, s in by if d == reference and (other, s) in by}):
        ref, oth = by[(reference, split)], by[(other, split)]
        taus = kendall_taus(read_run(ref["run_path"]), read_run(oth["run_path"]))
        values = list(taus.values())
        rows.append({"split": split, f"ndcg10_{reference}": ref["metrics"]["nDCG@10"],
                     f"ndcg10_{other}": oth["metrics"]["nDCG@10"],
                     "ndcg10_difference": oth["metrics"]["nDCG@10"] - ref["metrics"]["nDCG@10"],
                     "kendall_tau_min": min(values), "kendall_tau_mean": statistics.fmean(values),
                     "kendall_tau_median": statistics.median(values), "queries": len(values), "per_query_tau": taus})
    return rows


def markdown(rows: list[dict], note: str) -> str:
    lines = ["| L | nDCG@10 fp32 | nDCG@10 bf16 | difference | Kendall tau per query: min | mean |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['split']} | {r['ndcg10_fp32']:.4f} | {r['ndcg10_bf16']:.4f} | {r['ndcg10_difference']:+.4f} "
                     f"| {r['kendall_tau_min']:.3f} | {r['kendall_tau_mean']:.3f} |")
    return "\n".join(lines) + "\n\n" + note + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("lateint-out/bf16-accuracy"), help="the sweep's folder")
    parser.add_argument("--out", type=Path, default=RESULTS / "bf16_accuracy.json")
    parser.add_argument("--max-queries", type=int, default=None, help="only the first N queries (a quick check)")
    parser.add_argument("--splits", type=int, nargs="+", default=None, help="these splits only (default: every L)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    overrides = ["models.0.name=MiniLM-L6-fp32", "models.0.dtype=fp32", "models.0.group=fp32"]
    if args.max_queries:
        overrides.append(f"data.max_queries={args.max_queries}")
    if args.splits:
        overrides.append(f"points.splits={args.splits}")
    config = load_sweep_config(None, overrides)
    bf16 = type(config.models[0])(**{**vars(config.models[0]), "name": "MiniLM-L6-bf16", "dtype": "bf16", "group": "bf16"})
    config.models.append(bf16)
    results = run_sweep(config, args.work, progress=not args.no_progress)
    rows = compare(results["points"])
    flags = read_cpu_flags()
    bf16_flags = sorted(f for f in flags if f in ("amx_bf16", "avx512_bf16"))
    record = {
        "sweep": config.name, "dataset": results["dataset"], "queries": results["queries"],
        "first_stage": results["first_stage"], "storage": config.points.storage, "goals": GOALS,
        "cpu_bf16_flags": bf16_flags, "auto_picks": auto_dtype("cpu", flags), "processor": platform.processor(),
        "environment": results["environment"],
        "all_within_goals": all(abs(r["ndcg10_difference"]) <= GOALS["ndcg_difference"]
                                and r["kendall_tau_min"] >= GOALS["kendall_tau"] for r in rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    note = (f"{results['queries']} DL19 queries, BM25 top-100, all-MiniLM-L6-v2 zero-shot twin (mean, cosine), fp16 "
            f"caches; CPU bf16 flags: {', '.join(bf16_flags) or 'none'}. Goals: |difference| <= "
            f"{GOALS['ndcg_difference']}, tau >= {GOALS['kendall_tau']} for every query.")
    table = markdown(rows, note)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

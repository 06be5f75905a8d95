"""Turning a sweep's recorded points into results: effectiveness with significance against
L = 0, latency and speed-up, storage; a markdown table and a Pareto plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lateint.sweep.config import SweepConfig


def evaluate_sweep(config: SweepConfig, out: Path, dataset, candidates) -> dict[str, Any]:
    """Evaluate every recorded point of the sweep in ``out`` (writing ``evaluation-<group>.md``).

    The results are returned for the caller to save before :func:`write_report` draws them, so
    that a failure in drawing loses nothing.
    """
    from lateint.data.runs import read_run
    from lateint.evaluation import evaluate
    from lateint.pipeline.rerank_run import as_run

    from lateint.records import RecordStore

    store = RecordStore(out / "points")
    records = [store.get(key) for key in store.keys()]
    records.sort(key=lambda r: (r["group"], r["split"]))
    first_stage = config.data.first_stage or "first-stage"
    ev = config.evaluation
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r["group"], []).append(r)
    first_stage_means = None
    # A candidate list without scores (MS MARCO's official top-1000) has no ranking to evaluate.
    unscored = all(len({score for _, score in ranked}) == 1 for ranked in candidates.values())
    if unscored:
        first_stage += " (unscored candidates)"
    for group, members in groups.items():
        runs = {} if unscored else {first_stage: as_run(candidates)}
        for r in members:
            runs[r["point"]] = read_run(r["run_path"])
        baseline = next((r["point"] for r in members if r["split"] == 0), members[0]["point"] if unscored else first_stage)
        # Only the swept queries are judged, so that a partial sweep is not scored as zeros elsewhere.
        qrels = {q: rel for q, rel in dataset.qrels().items() if q in candidates}
        result = evaluate(qrels, runs, ev.metrics, baseline=baseline, stat_test=ev.stat_test,
                          correction=ev.correction, alpha=ev.alpha,
                          relevance_level=dataset.official_relevance_level)
        first_stage_means = None if unscored else result.means[first_stage]
        l0 = next((r for r in members if r["split"] == 0), None)
        for r in members:
            r["metrics"] = result.means[r["point"]]
            r["baseline"] = baseline
            comps = result.comparisons.get(r["point"], {})
            r["significance"] = {m: {"p_value": c.p_value, "p_adjusted": c.p_adjusted, "significant": c.significant,
                                     "difference": c.difference, "mark": c.mark} for m, c in comps.items()}
            r["speedup_vs_L0"] = (l0["mean_latency_ms"] / r["mean_latency_ms"]) if l0 and r["mean_latency_ms"] else None
        (out / f"evaluation-{group}.md").write_text(result.to_markdown())
    results = {"name": config.name, "dataset": dataset.irds_id, "dataset_note": dataset.note,
               "first_stage": first_stage, "first_stage_metrics": first_stage_means,
               "queries": len(candidates), "metrics": list(ev.metrics), "primary": ev.primary,
               "correction": ev.correction, "stat_test": ev.stat_test, "alpha": ev.alpha, "points": records}
    return results


def write_report(results: dict[str, Any], out: Path) -> None:
    """Write ``table.md`` and ``pareto.png`` from evaluated sweep results."""
    (out / "table.md").write_text(markdown_table(results))
    if results["points"]:
        pareto_plot(results, out / "pareto.png")


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown_table(results: dict[str, Any]) -> str:
    """One row per point: metrics with significance marks against L = 0, latency, speed-up, bytes/doc."""
    metrics = results["metrics"]
    head = ["point", "L"] + metrics + ["ms/query", "speed-up vs L=0", "bytes/doc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    fs = results.get("first_stage_metrics") or {}
    lines.append("| " + " | ".join([f"{results['first_stage']} (first stage)", "–"] +
                                   [_fmt(fs.get(m)) for m in metrics] + ["–", "–", "–"]) + " |")
    for r in results["points"]:
        cells = [r["point"], str(r["split"])]
        for m in metrics:
            mark = r.get("significance", {}).get(m, {}).get("mark", "")
            cells.append(_fmt(r.get("metrics", {}).get(m)) + mark)
        speed = r.get("speedup_vs_L0")
        cells += [_fmt(r["mean_latency_ms"], 1), "–" if speed is None else f"{speed:.1f}x", f"{r['cache_bytes_per_doc']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"\n{results['queries']} queries of {results['dataset']}; first stage {results['first_stage']}. "
            f"↑/↓: significantly better/worse than the same group's L = 0 point ({results['stat_test']} paired test, "
            f"{results['correction']} correction, alpha {results['alpha']}). ms/query: re-ranking from the document "
            "cache (query encoding, cache reads, joint layers, head), mean over queries; bytes/doc: cache storage.\n")
    if results.get("dataset_note"):
        note += f"\nNote on the data: {results['dataset_note']}\n"
    return "\n".join(lines) + "\n" + note


def pareto_plot(results: dict[str, Any], path: Path) -> None:
    """Effectiveness against latency and against storage, one line per group, points labelled by L."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = results["primary"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    groups: dict[str, list[dict]] = {}
    for r in results["points"]:
        groups.setdefault(r["group"], []).append(r)
    for ax, key, label in ((axes[0], "mean_latency_ms", "re-rank latency (ms/query)"),
                           (axes[1], "cache_bytes_per_doc", "cache storage (bytes/document)")):
        for group, members in groups.items():
            members = sorted(members, key=lambda r: r["split"])
            xs = [max(r[key], 1e-3) for r in members]
            ys = [r["metrics"][primary] for r in members]
            ax.plot(xs, ys, marker="o", label=group, linestyle="-" if key == "mean_latency_ms" else "none")
            for x, y, r in zip(xs, ys, members):
                ax.annotate(f"L={r['split']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        fs = (results.get("first_stage_metrics") or {}).get(primary)
        if fs is not None:
            ax.axhline(fs, color="grey", linestyle="--", linewidth=1, label=f"{results['first_stage']} (first stage)")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel(primary)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{results['name']}: {primary} vs cost ({results['queries']} queries)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

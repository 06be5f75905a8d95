"""Ranking fidelity of PreTTR-compressed caches: the auto-encoder alone vs tuned through the joint layers.

On TREC DL 2019 (``LATEINT_DATA``, default ``<repo>/../shared/irdata``), for the zero-shot
all-MiniLM-L6-v2 twin read after the joint layers (mean pooling, cosine; the ranker of the default
sweep) at each split L of ``--splits``:

1. the 43 judged queries are split, seeded, into tuning queries and held-out queries;
2. a compressor of ``--dim`` numbers per token is trained as an auto-encoder of the layer-L states
   of ``--ae-docs`` passages from the tuning queries' BM25 top-100
   (:func:`lateint.cache.compression.train_compressor`);
3. a copy is tuned through the frozen joint layers on the tuning queries' BM25 top-100 lists
   (:func:`lateint.cache.compression.tune_compressor`);
4. the held-out queries' BM25 top-100 are re-ranked from fp16 caches with uncompressed, auto-encoded
   and tuned states; reported: Kendall tau-b (``scipy``) of each query's ranking against the
   uncompressed one (mean and minimum), the largest score error, nDCG@10 (``ranx``) of each run,
   and bytes per token.

Writes ``compressor_fidelity.json`` and ``compressor_fidelity.md`` into ``--out``.

Usage: ``python benchmarks/compressor_fidelity.py [--splits 3,5] [--dim 128] [--tune-steps 300] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATASET = "msmarco-passage/trec-dl-2019/judged"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MAX_Q, MAX_D = 32, 224  # the default sweep's lengths

os.environ.setdefault("LATEINT_DATA", str(REPO.parent / "shared" / "irdata"))
_TMP_ROOT = REPO / "benchmarks" / "results" / "tmp"
os.environ.setdefault("LATEINT_CACHE", str(_TMP_ROOT / "lateint-cache"))
os.environ.setdefault("IR_DATASETS_HOME", str(_TMP_ROOT / "lateint-cache" / "ir_datasets"))

from scipy.stats import kendalltau  # noqa: E402

from lateint import SplitRanker  # noqa: E402
from lateint.cache.compression import StateCompressor, train_compressor, tune_compressor  # noqa: E402
from lateint.cache.doc_cache import DocCache  # noqa: E402
from lateint.data import load_dataset  # noqa: E402
from lateint.evaluation import evaluate  # noqa: E402

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


def copy_of(comp: StateCompressor) -> StateCompressor:
    other = StateCompressor(comp.hidden_size, comp.dim)
    other.load_state_dict(comp.state_dict())
    return other


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splits", default="3,5", help="comma-separated splits L, each 0 < L < 6 (default 3,5)")
    p.add_argument("--dim", type=int, default=128, help="numbers stored per token (default 128)")
    p.add_argument("--heldout", type=int, default=15, help="held-out DL19 queries (default 15)")
    p.add_argument("--ae-docs", type=int, default=1000, help="passages the auto-encoder learns from (default 1000)")
    p.add_argument("--ae-steps", type=int, default=400)
    p.add_argument("--tune-steps", type=int, default=300)
    p.add_argument("--group", type=int, default=16, help="candidates per tuning step (default 16)")
    p.add_argument("--tune-lr", type=float, default=1e-3)
    p.add_argument("--quick", action="store_true", help="a few queries and steps (about a minute)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.heldout, args.ae_docs, args.ae_steps, args.tune_steps = 3, 100, 50, 10
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    splits = [int(x) for x in args.splits.split(",")]

    ds = load_dataset(DATASET)
    queries, qrels = ds.queries(), ds.qrels()
    bm25 = ds.candidates("bm25", 100)
    qids = sorted(q for q in qrels if q in queries and q in bm25)
    rng = random.Random(args.seed)
    heldout = sorted(rng.sample(qids, args.heldout))
    tuning = [q for q in qids if q not in heldout]
    held_docs = {d for q in heldout for d, _ in bm25[q]}
    # Tuning never sees a held-out query or any of its candidates.
    tune_ids = {q: [d for d, _ in bm25[q] if d not in held_docs] for q in tuning}
    texts = ds.doc_text(sorted({d for ids in tune_ids.values() for d in ids} | held_docs))
    tune_lists = [(queries[q], [texts[d] for d in tune_ids[q]]) for q in tuning]
    pool = sorted({d for ids in tune_ids.values() for d in ids})
    ae_texts = [texts[d] for d in rng.sample(pool, min(args.ae_docs, len(pool)))]
    held_pairs = sorted(held_docs)
    log(f"{len(heldout)} held-out queries ({len(held_pairs)} passages), {len(tuning)} tuning queries, "
        f"{len(ae_texts)} auto-encoder passages, splits {splits}, e={args.dim}")

    tmp = Path(tempfile.mkdtemp(prefix="compressor-", dir=_TMP_ROOT if _TMP_ROOT.parent.is_dir() else None))
    rows, runs_by_split = [], {}
    try:
        for L in splits:
            ranker = SplitRanker.from_pretrained(MINILM, split=L, max_query_length=MAX_Q, max_doc_length=MAX_D)
            auto, ae = train_compressor(ranker, ae_texts, args.dim, steps=args.ae_steps, seed=args.seed)
            log(f"L={L}: auto-encoder mse {ae.initial_mse:.4f} -> {ae.final_mse:.4f} in {ae.seconds:.0f} s")
            tuned, tu = tune_compressor(ranker, copy_of(auto), tune_lists, steps=args.tune_steps, group=args.group,
                                        lr=args.tune_lr, seed=args.seed, progress=True)
            log(f"L={L}: tuned, margin-MSE {tu.initial_loss:.3e} -> {tu.final_loss:.3e} in {tu.seconds:.0f} s")
            variants = {"uncompressed": None, f"auto-encoder e={args.dim}": auto, f"tuned e={args.dim}": tuned}
            runs, sizes = {}, {}
            for name, comp in variants.items():
                folder = tmp / f"L{L}-{name.split()[0]}"
                cache = DocCache.build(ranker, [(d, texts[d]) for d in held_pairs], folder, storage="fp16",
                                       compressor=comp, progress=False)
                sizes[name] = cache.info()["fields"]["states"]["bytes_per_token"]
                runs[name] = {q: ranker.rerank(queries[q], [d for d, _ in bm25[q]], cache) for q in heldout}
                shutil.rmtree(folder, ignore_errors=True)
            ev = evaluate({q: qrels[q] for q in heldout}, runs, baseline="uncompressed",
                          relevance_level=ds.official_relevance_level)
            ref = runs["uncompressed"]
            for name, run in runs.items():
                taus, errs = [], []
                for q in heldout:
                    ids = list(ref[q])
                    a = np.array([ref[q][d] for d in ids])
                    b = np.array([run[q][d] for d in ids])
                    taus.append(float(kendalltau(a, b).statistic))
                    errs.append(float(np.abs(a - b).max()))
                row = {"L": L, "variant": name, "bytes_per_token": sizes[name],
                       "kendall_tau_mean": statistics.fmean(taus), "kendall_tau_min": min(taus),
                       "max_abs_err": max(errs), "nDCG@10": ev.means[name]["nDCG@10"]}
                if name != "uncompressed":
                    row["autoencoder"] = {"docs": ae.documents, "tokens": ae.tokens, "steps": ae.steps,
                                          "initial_mse": ae.initial_mse, "final_mse": ae.final_mse,
                                          "seconds": ae.seconds}
                if name.startswith("tuned"):
                    row["tuning"] = {"lists": tu.lists, "group": tu.group, "steps": tu.steps, "lr": args.tune_lr,
                                     "initial_loss": tu.initial_loss, "final_loss": tu.final_loss,
                                     "seconds": tu.seconds}
                rows.append(row)
                log(f"L={L} {name}: {sizes[name]:.0f} B/token, tau {row['kendall_tau_mean']:.4f} "
                    f"(min {row['kendall_tau_min']:.4f}), max err {row['max_abs_err']:.3e}, nDCG@10 {row['nDCG@10']:.4f}")
            runs_by_split[L] = ev.to_markdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    env = {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
           "threads": torch.get_num_threads(), "seed": args.seed}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {"environment": env, "settings": settings, "heldout_queries": heldout, "tuning_queries": tuning,
              "rows": rows, "seconds": time.perf_counter() - T0}
    md = ["# Compressed caches: auto-encoder vs tuned through the joint layers", "",
          f"Zero-shot all-MiniLM-L6-v2 twin (mean, cosine) read after the joint layers; DL19 BM25 top-100 of "
          f"{len(heldout)} held-out queries re-ranked from fp16 caches; tuning on the other {len(tuning)} queries' "
          f"candidates (held-out passages removed). Kendall tau-b against the uncompressed ranking, per query.", "",
          "| L | states | B/token | tau mean | tau min | max score err | nDCG@10 |",
          "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['L']} | {r['variant']} | {r['bytes_per_token']:.0f} | {r['kendall_tau_mean']:.4f} | "
                  f"{r['kendall_tau_min']:.4f} | {r['max_abs_err']:.3e} | {r['nDCG@10']:.4f} |")
    md += ["", f"Environment: {json.dumps(env)}. Wall time {result['seconds']:.0f} s.", ""]
    for L, table in runs_by_split.items():
        md += [f"## Significance against uncompressed states, L={L}", "", table]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compressor_fidelity.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (args.out / "compressor_fidelity.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

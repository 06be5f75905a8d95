"""Does a compressed cache of layer-L states keep the ranker's rankings?

all-MiniLM-L6-v2 as a zero-shot twin (mean pooling, cosine) split at L, re-ranking the TREC DL 2019
BM25 top-100 (43 judged queries) from a document cache. Rows:

* the uncompressed fp16 cache (the reference every other row is compared with);
* PreTTR's compressor trained alone as an auto-encoder of the states (reconstruction MSE,
  :func:`lateint.cache.compression.train_compressor`), e = 128;
* the compressor trained through the ranker together with the joint layers and head on
  Margin-MSE against the frozen uncompressed model
  (:func:`lateint.training.compressor.train_compressor_through_ranker`), e in 16..128, the int8
  codec simulated in training, each stored in fp16 and in int8;
* SDR's side information: the auto-encoder, and the compressor trained through the ranker, that
  also read each token's static embedding (rebuilt at query time from the stored token ids and
  types, which count in the row's bytes per token), e = 16, 32 and 40; and the auto-encoder with
  side information fitted on the collection it compresses (the DL19 passages: no queries or
  labels, as a codec is fitted to the corpus it indexes), for longer, which the through-ranker
  rows with side information start from.

Training data: SciFact train queries with their BM25 top-100 (no labels); DL19's queries and
judgements are only evaluated (its passages, without either, fit the collection auto-encoders).
Columns: bytes per token (the cache's own figure), Kendall tau against the reference's scores
(mean and min over queries), nDCG@10 (ranx, official DL19 qrels) and its change.

Writes ``benchmarks/results/compression_fidelity.json`` and ``.md`` after every row (a rerun skips
rows already measured with the same settings) and each row's TREC run to
``benchmarks/results/compression/runs/`` so that every nDCG can be recomputed. Trained models and
caches go to ``benchmarks/results/tmp/compression`` (not committed).

Usage: ``python benchmarks/compression_fidelity.py [--splits 3 5] [--steps 250] [--dims 16 32 64 128]
[--ae-dims 128]``
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from local_data import REPO as ROOT, TMP_ROOT  # noqa: E402  (sets the data environment first)

TMP = TMP_ROOT / "compression"

from lateint import DocCache, SplitRanker, rerank  # noqa: E402
from lateint.cache.compression import StateCompressor, train_compressor  # noqa: E402
from lateint.checkpoints import DEFAULT_MODEL, resolve  # noqa: E402
from lateint.data import load_dataset  # noqa: E402
from lateint.data.runs import write_run  # noqa: E402
from lateint.training.compressor import train_compressor_through_ranker  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
RUNS = OUT / "compression" / "runs"
EVAL, TRAIN = "msmarco-passage/trec-dl-2019/judged", "beir/scifact/train"
MAX_Q, MAX_D = 32, 224
#: Target: at most this many bytes per token with nDCG@10 within 1% (relative) of the uncompressed cache.
TARGET_BYTES, TARGET_REL = 48, 0.01


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def ndcg10(qrels: dict, run: dict) -> float:
    """nDCG@10 (ranx) over every judged query."""
    import ranx

    return float(ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), "ndcg@10", make_comparable=True))


# -- data --------------------------------------------------------------------------------------------
def eval_data():
    ds = load_dataset(EVAL)
    cands = {q: [d for d, _ in ranked] for q, ranked in ds.candidates(run="bm25", depth=100).items()}
    ids = list(dict.fromkeys(d for c in cands.values() for d in c))
    texts = ds.doc_text(ids)
    queries = ds.queries()
    qrels = {q: {d: int(r) for d, r in rels.items()} for q, rels in ds.qrels().items()}
    return {q: queries[q] for q in cands}, cands, [(d, texts[d]) for d in ids], qrels


def train_groups(n_queries: int, per_query: int, words: int, seed: int) -> tuple[list, dict]:
    """SciFact train queries with ``per_query`` of their BM25 top-100 drawn at random (seeded),
    each text cut to its first ``words`` words (the DL19 passages it is evaluated on are short)."""
    from lateint.retrieval import bm25_retrieve, iter_documents

    ds = load_dataset(TRAIN)
    texts = dict(iter_documents(ds))
    queries = ds.queries()
    ranked = bm25_retrieve(texts.items(), queries, k=100)
    rng = random.Random(seed)
    qids = sorted(q for q in ranked if len(ranked[q]) >= per_query)
    qids = rng.sample(qids, min(n_queries, len(qids)))
    cut = lambda s: " ".join(s.split()[:words])  # noqa: E731
    groups = [(queries[q], [cut(texts[d]) for d, _ in rng.sample(ranked[q], per_query)]) for q in qids]
    info = {"dataset": TRAIN, "first_stage": "BM25 top-100 (bm25s, lateint.retrieval)", "queries": len(groups),
            "candidates_per_query": per_query, "words_per_doc": words,
            "unique_docs": len({d for _, ds_ in groups for d in ds_})}
    return groups, info


# -- measurement -------------------------------------------------------------------------------------
def measure(name: str, ranker, compressor, storage: str, ev, reference: dict | None) -> dict:
    queries, cands, docs, qrels = ev
    path = TMP / "cache" / name
    shutil.rmtree(path, ignore_errors=True)
    cache = DocCache.build(ranker, docs, path, storage=storage, compressor=compressor, batch_size=64, progress=False)
    fields = cache.info()["fields"]
    run = {q: rerank(ranker, queries[q], cands[q], cache) for q in cands}
    RUNS.mkdir(parents=True, exist_ok=True)
    write_run(run, RUNS / f"{name}.trec", tag=name)
    # Every field stored per token counts: the codes, and with side information the ids and types.
    row = {"name": name, "storage": storage, "bytes_per_token": sum(f["bytes_per_token"] for f in fields.values()),
           "fields": {k: f["bytes_per_token"] for k, f in fields.items()},
           "mean_tokens_per_doc": fields["states"]["mean_tokens"], "ndcg10": ndcg10(qrels, run),
           "run": str((RUNS / f"{name}.trec").relative_to(ROOT)), "queries": len(run), "docs": len(docs)}
    if reference is not None:
        taus = [kendall_tau(np.array([reference[q][d] for d in cands[q]]), np.array([run[q][d] for d in cands[q]]))
                for q in cands]
        row.update(kendall_tau_mean=statistics.mean(taus), kendall_tau_min=min(taus))
    shutil.rmtree(path, ignore_errors=True)
    return row, run


def render(result: dict) -> str:
    s = result["settings"]
    md = ["# Compression fidelity: compressed layer-L caches against the uncompressed cache", "",
          f"all-MiniLM-L6-v2 zero-shot twin (mean pooling, cosine), max lengths {MAX_Q}/{MAX_D}; evaluation: "
          f"TREC DL 2019 BM25 top-100, {result.get('eval_queries', '?')} judged queries, nDCG@10 by ranx "
          "(graded qrels); Kendall tau against the uncompressed fp16 cache's scores of the same 100 candidates.",
          "", f"Training (through-ranker rows): {json.dumps(result.get('train_data', {}))}; "
          f"{s['steps']} steps of {s['queries_per_step']} queries x {s['docs_per_query']} candidates, "
          f"lr as in the table (joint layers / compressor), {s['reconstruction_steps']} auto-encoder "
          f"steps first (the side-information rows start from the collection auto-encoder instead), int8 codec "
          f"simulated, seed {s['seed']}. Auto-encoder row: `train_compressor`, "
          f"{s['ae_steps']} steps on the same training documents' states. Few steps on few documents: more of "
          "either may do better.", "",
          "| L | row | storage | B/token | tau mean | tau min | nDCG@10 | change vs uncompressed | steps | lr joint / compressor | seed |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for L, block in sorted(result["splits"].items()):
        ref = block["rows"].get(f"L{L}-uncompressed-fp16")
        for row in block["rows"].values():
            tau = (f"{row['kendall_tau_mean']:.4f} | {row['kendall_tau_min']:.4f}" if "kendall_tau_mean" in row
                   else "1 (reference) | 1")
            change = (f"{100 * (row['ndcg10'] / ref['ndcg10'] - 1):+.2f}% ({row['ndcg10'] - ref['ndcg10']:+.4f})"
                      if ref else "")
            tr = row.get("training", {})
            rates = f"{tr['lr']:g} / {tr['compressor_lr']:g}" if "compressor_lr" in tr else ""
            md.append(f"| {L} | {row['method']} | {row['storage']} | {row['bytes_per_token']} | {tau} | "
                      f"{row['ndcg10']:.4f} | {change} | {tr.get('steps', '')} | {rates} | {tr.get('seed', '')} |")
    md += ["", f"Target: at most {TARGET_BYTES} B/token with nDCG@10 within {100 * TARGET_REL:.0f}% of the "
           "uncompressed cache (relative).", ""]
    for L, block in sorted(result["splits"].items()):
        t = block.get("target")
        if t:
            md.append(f"- L={L}: {'met' if t['met'] else 'not met'}"
                      + (f" by {', '.join(t['rows'])}" if t["rows"] else "") + ".")
    if result.get("notes"):
        md += ["", "Observations:", ""] + [f"- {n}" for n in result["notes"]]
    md += ["", "B/token counts every field stored per token: the codes, and with side information the token ids "
           "(2 B) and types (1 B).", "",
           "Each row's TREC run is in `benchmarks/results/compression/runs/`. The fine-tuned joint layers "
           "make each through-ranker row a different model from the reference: its cache is built with the "
           "unchanged lower layers, and its scores come from its own joint layers.", ""]
    return "\n".join(md)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--splits", type=int, nargs="+", default=[3])
    p.add_argument("--dims", type=int, nargs="*", default=[16, 32, 64, 128], help="through-ranker widths")
    p.add_argument("--ae-dims", type=int, nargs="*", default=[128], help="auto-encoder-only widths")
    # e = 40 in int8 is 40 + 4 (scale) + 3 (id, type) = 47 B/token: the widest under the 48 B target.
    p.add_argument("--side-dims", type=int, nargs="*", default=[16, 32, 40],
                   help="auto-encoder widths with side information")
    p.add_argument("--side-through-dims", type=int, nargs="*", default=[32, 40],
                   help="widths with side information trained through the ranker (from the collection auto-encoder)")
    # Rates for fine-tuning from a fitted auto-encoder: the through-ranker rows above show that
    # 5e-5 / 1e-3 undo what the auto-encoder learned (their held-out loss rises).
    p.add_argument("--collection-ae-steps", type=int, default=1500,
                   help="steps of the side-information auto-encoder fitted on the collection")
    p.add_argument("--side-lr", type=float, default=1e-5, help="joint layers' rate, side-information rows")
    p.add_argument("--side-compressor-lr", type=float, default=1e-4, help="compressor's rate, side-information rows")
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--train-queries", type=int, default=200)
    p.add_argument("--docs-per-query", type=int, default=8)
    p.add_argument("--queries-per-step", type=int, default=2)
    p.add_argument("--words", type=int, default=64)
    p.add_argument("--ae-steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT / "compression_fidelity.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    settings = {"model": DEFAULT_MODEL, "head": "twin", "pooling": "mean", "crossing": "cosine",
                "max_query_length": MAX_Q, "max_doc_length": MAX_D, "steps": args.steps,
                "train_queries": args.train_queries, "docs_per_query": args.docs_per_query,
                "queries_per_step": args.queries_per_step, "words": args.words, "ae_steps": args.ae_steps,
                "lr": 5e-5, "compressor_lr": 1e-3, "reconstruction_steps": 300, "train_storage": "int8",
                "seed": args.seed}
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    if result.get("settings") != settings:
        result = {"settings": settings, "splits": {}}
    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "threads": args.threads, "note": "shared 2-core CPU under other load: no timings"}

    def save() -> None:
        args.out.write_text(json.dumps(result, indent=1))
        args.out.with_suffix(".md").write_text(render(result))

    ev = eval_data()
    result["eval_queries"] = len(ev[1])
    log(f"DL19: {len(ev[1])} queries, {len(ev[2])} passages")
    groups, train_info = train_groups(args.train_queries, args.docs_per_query, args.words, args.seed)
    result["train_data"] = train_info
    log(f"training data: {train_info}")
    base = SplitRanker.from_pretrained(resolve(DEFAULT_MODEL), split=max(args.splits), head="twin", pooling="mean",
                                       crossing="cosine", max_query_length=MAX_Q, max_doc_length=MAX_D)
    base.eval()
    train_texts = list(dict.fromkeys(d for _, ds in groups for d in ds))
    for L in args.splits:
        ranker = base.at(L)
        block = result["splits"].setdefault(str(L), {"rows": {}})
        rows = block["rows"]
        ref_name = f"L{L}-uncompressed-fp16"
        if ref_name in rows:
            from lateint.data.runs import read_run

            reference = read_run(ROOT / rows[ref_name]["run"])
        else:
            row, reference = measure(ref_name, ranker, None, "fp16", ev, None)
            rows[ref_name] = {**row, "method": "uncompressed", "dim": None}
            log(f"{ref_name}: nDCG@10 {row['ndcg10']:.4f}")
            save()

        def measure_storages(prefix: str, model, comp, method: str, dim: int, training: dict) -> None:
            """The fp16 and int8 rows of one compressor, each saved as soon as it is measured."""
            for storage in ("fp16", "int8"):
                name = f"{prefix}-{storage}"
                row, _ = measure(name, model, comp, storage, ev, reference)
                rows[name] = {**row, "method": method, "dim": dim, "training": training}
                log(f"{name}: {row['bytes_per_token']} B/token tau {row['kendall_tau_mean']:.4f} "
                    f"nDCG@10 {row['ndcg10']:.4f}")
                save()

        def auto_encoder(dim: int, side_info: bool, on_collection: bool = False,
                         keep: bool = False) -> StateCompressor | None:
            """Measure one auto-encoder's rows if not yet done. With ``keep``, return the compressor:
            loaded from an earlier run, or fitted (seeded: the same one its rows measured)."""
            ae_name = f"L{L}-autoencoder{'-side' if side_info else ''}{'-collection' if on_collection else ''}-e{dim}"
            folder = TMP / "models" / ae_name
            done = all(f"{ae_name}-{s}" in rows for s in ("fp16", "int8"))
            if done and not keep:
                return None
            if done and (folder / "compressor.json").exists():
                return StateCompressor.load(folder)
            texts = [t for _, t in ev[2]] if on_collection else train_texts
            steps = args.collection_ae_steps if on_collection else args.ae_steps
            comp, info = train_compressor(ranker, texts, dim, steps=steps, seed=args.seed, side_info=side_info)
            comp.save(folder)
            if not done:
                training = {"steps": info.steps, "seed": info.seed, "docs": info.documents, "tokens": info.tokens,
                            "initial_mse": info.initial_mse, "final_mse": info.final_mse, "side_info": side_info,
                            "fitted_on": EVAL + " passages (the collection)" if on_collection else TRAIN + " training passages"}
                method = (f"auto-encoder{' + side info' if side_info else ''}"
                          f"{', fitted on the collection' if on_collection else ''} e={dim}")
                measure_storages(ae_name, ranker, comp, method, dim, training)
            return comp

        def through_ranker(dim: int, side_info: bool, init: StateCompressor | None = None) -> None:
            """``init``: the compressor to start from (else auto-encoder steps on the training texts first)."""
            name = f"L{L}-through-ranker{'-side' if side_info else ''}{'-from-collection' if init is not None else ''}-e{dim}"
            if all(f"{name}-{s}" in rows for s in ("fp16", "int8")):
                return
            model_dir = TMP / "models" / name
            record_path = model_dir / "training.json"
            if record_path.exists():
                student, comp = SplitRanker.from_pretrained(model_dir), StateCompressor.load(model_dir)
                record = json.loads(record_path.read_text())
            else:
                log(f"{name}: training")
                comp, student, info = train_compressor_through_ranker(
                    ranker, groups, dim, steps=args.steps, queries_per_step=args.queries_per_step,
                    docs_per_query=args.docs_per_query, lr=args.side_lr if side_info else settings["lr"],
                    compressor_lr=args.side_compressor_lr if side_info else settings["compressor_lr"],
                    reconstruction_steps=settings["reconstruction_steps"], storage=settings["train_storage"],
                    held_out=10, seed=args.seed, side_info=side_info, init=init, progress=True)
                record = {**info.record(), "side_info": side_info,
                          "init": "the side-information auto-encoder fitted on the collection" if init is not None else None}
                shutil.rmtree(model_dir, ignore_errors=True)
                student.save_pretrained(model_dir)
                comp.save(model_dir)
                record_path.write_text(json.dumps(record))
                log(f"{name}: loss {info.initial_loss:.2e} -> {info.final_loss:.2e}, held-out "
                    f"{info.held_out_initial_loss:.2e} -> {info.held_out_final_loss:.2e}")
            student.eval()
            method = (f"through ranker{' + side info' if side_info else ''}"
                      f"{', from the collection auto-encoder' if init is not None else ''} e={dim}")
            measure_storages(name, student, comp, method, dim, record)

        for dim in args.ae_dims:
            auto_encoder(dim, side_info=False)
        for dim in args.side_dims:
            auto_encoder(dim, side_info=True)
        collection = {dim: auto_encoder(dim, side_info=True, on_collection=True, keep=True) for dim in args.side_dims}
        for dim in args.dims:
            through_ranker(dim, side_info=False)
        for dim in args.side_through_dims:
            if dim not in collection:
                collection[dim] = auto_encoder(dim, side_info=True, on_collection=True, keep=True)
            through_ranker(dim, side_info=True, init=collection[dim])
        ref = rows[ref_name]["ndcg10"]
        meeting = [n for n, r in rows.items() if r["bytes_per_token"] <= TARGET_BYTES
                   and r["ndcg10"] >= ref * (1 - TARGET_REL)]
        block["target"] = {"bytes_per_token": TARGET_BYTES, "relative_ndcg_loss": TARGET_REL,
                           "met": bool(meeting), "rows": meeting}
        save()
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Re-ranking latency, FLOP bounds, speed-ups and cache storage of split rankers on TREC DL 2019.

Runs on the CPU with real DL19 queries and passages (``LATEINT_DATA``, default
``<repo>/../shared/irdata``) and measures:

1. per-query re-rank time of the BM25 top-100 at every split L, for all-MiniLM-L6-v2 (a one-label
   cross-encoder built from it for L < T, its own twin head at L = T) and for a randomly initialised
   BERT-base-sized model, from caches built once per L (fp32, fp16, and ``precompute="kv"``);
2. the twin end (and L = T - 1 with cached keys/values) on top-1000 candidate lists;
3. each row's FLOPs of remaining work and the ratio measured time / (FLOPs / matmul peak);
4. the speed-up of every L over L = 0;
5. L = 0 against sentence-transformers' ``CrossEncoder`` on the same checkpoint and pairs;
6. cache bytes per token, build throughput and score fidelity of fp16, int8 and learned compression;

plus a breakdown of where re-ranking time goes (tokenization, cache reads, layers, Python) and the
effect of the re-ranking batch size (padding). Writes ``rerank_latency.json`` and
``rerank_latency.md`` into ``--out`` and prints both.

Usage: ``python benchmarks/rerank_latency.py [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DATASET = "msmarco-passage/trec-dl-2019/judged"
RUNS = ("bm25", "bm25-rm3", "tasb", "splade-pp-ed", "ada2")
MAX_Q, MAX_D = 32, 224
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

from local_data import TMP_ROOT as _TMP_ROOT  # noqa: E402  (sets the data environment first)

from lateint import SplitRanker  # noqa: E402
from lateint.cache.compression import train_compressor  # noqa: E402
from lateint.cache.doc_cache import DocCache  # noqa: E402
from lateint.reranking import rerank  # noqa: E402
from lateint.checkpoints import resolve  # noqa: E402
from lateint.data import load_dataset  # noqa: E402
from lateint.profiling.flops import LayerShape, rerank_flops  # noqa: E402
from lateint.profiling.machine import last_level_cache_bytes, linear_peak, matmul_peak, memory_bandwidth  # noqa: E402
from lateint.profiling.roofline import rerank_bytes, roofline_seconds  # noqa: E402
from lateint.precision import TORCH_DTYPES, auto_dtype, read_cpu_flags  # noqa: E402

#: The memory side of the roofline, measured in ``main``: bandwidth (bytes/s) and last-level cache (bytes).
MACHINE: dict[str, Any] = {"bandwidth": None, "last_level_cache": None}


# ------------------------------------------------------------------------------------------ setup
@dataclass
class Settings:
    """Sizes of one run (``--quick`` shrinks every one of them)."""

    quick: bool
    seed: int
    threads: int
    minilm_queries: int
    minilm_slow_queries: int
    bert_queries: int
    bert_splits: list[int]
    repeats: int
    slow_repeat_seconds: float
    top1000_queries: int
    storage_queries: int
    compressor_docs: int
    compressor_steps: int
    ce_pairs: int
    ce_repeats: int
    encode_docs: int
    effectiveness_splits: list[int]


def make_settings(quick: bool, seed: int, threads: int) -> Settings:
    if quick:
        return Settings(quick, seed, threads, minilm_queries=2, minilm_slow_queries=1, bert_queries=1,
                        bert_splits=[0, 11, 12], repeats=2, slow_repeat_seconds=1.0, top1000_queries=1,
                        storage_queries=2, compressor_docs=300, compressor_steps=100, ce_pairs=32, ce_repeats=2,
                        encode_docs=256, effectiveness_splits=[6])
    # Rows at L < T - 1 cost seconds per query and vary little, so they run on fewer queries.
    return Settings(quick, seed, threads, minilm_queries=5, minilm_slow_queries=2, bert_queries=1,
                    bert_splits=[0, 1, 3, 6, 9, 10, 11, 12], repeats=3, slow_repeat_seconds=1.0, top1000_queries=2,
                    storage_queries=3, compressor_docs=1000, compressor_steps=400, ce_pairs=100, ce_repeats=3,
                    encode_docs=1000, effectiveness_splits=list(range(7)))


@dataclass
class Data:
    """DL19 queries, the five first-stage runs and the passage texts."""

    queries: dict[str, str]
    runs: dict[str, dict[str, list[str]]]
    texts: dict[str, str]


def load_data() -> Data:
    handle = load_dataset(DATASET)
    queries = handle.queries()
    runs = {name: {q: [d for d, _ in ranked] for q, ranked in handle.candidates(run=name, depth=100).items()} for name in RUNS}
    texts = {doc.doc_id: doc.text for doc in handle.dataset.docs_iter()}
    return Data(queries, runs, texts)


def pick_queries(data: Data, n: int) -> list[str]:
    """The first ``n`` judged queries (dataset order) that BM25 returns candidates for."""
    return [q for q in data.queries if q in data.runs["bm25"]][:n]


def top1000(data: Data, qid: str, seed: int) -> tuple[list[str], dict[str, int]]:
    """1000 real DL19 passages for ``qid``: BM25 top-100, then the other runs' candidates for the
    query (in run order: bm25-rm3, tasb, splade-pp-ed, ada2), then passages drawn uniformly from
    the rest of the DL19 passage set with ``random.Random(seed + int(qid))``."""
    out: dict[str, None] = dict.fromkeys(data.runs["bm25"][qid])
    counts = {"bm25": len(out)}
    for name in RUNS[1:]:
        before = len(out)
        out.update(dict.fromkeys(data.runs[name].get(qid, [])))
        counts[name] = len(out) - before
    pool = sorted(set(data.texts) - set(out))
    rng = random.Random(seed + int(qid))
    fill = rng.sample(pool, 1000 - len(out))
    out.update(dict.fromkeys(fill))
    counts["random"] = len(fill)
    return list(out)[:1000], counts


def make_cross_encoder(folder: Path, minilm: Path) -> Path:
    """all-MiniLM-L6-v2 with a seeded one-label classifier, saved by ``transformers``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(1234)
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm), num_labels=1)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5)
        model.classifier.bias.fill_(0.1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm)).save_pretrained(folder)
    return folder


def make_bert_base(folder: Path, minilm: Path, seed: int) -> Path:
    """A BERT-base-sized one-label cross-encoder with random (seeded) weights and MiniLM's vocabulary."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    tok = AutoTokenizer.from_pretrained(str(minilm))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512, num_labels=1)
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------------------------------- timing
def time_reranks(ranker: SplitRanker, cache: DocCache, queries: Sequence[str], cands: Sequence[Sequence[str]],
                 repeats: int, slow_seconds: float, batch_size: int = 128) -> tuple[list[float], int]:
    """Per-query best-of-``repeats`` wall time (seconds) of ``ranker.rerank``.

    A warm-up on 8 candidates pays the one-off costs (the cache's fingerprint check, memory maps,
    allocator). Passes stop early once one pass took longer than ``slow_seconds`` per query, since
    such rows are compute-bound and vary little; the repeat count actually used is returned.
    """
    rerank(ranker, queries[0], list(cands[0][:8]), cache, batch_size=batch_size)
    best = [float("inf")] * len(queries)
    done = 0
    for _ in range(repeats):
        for i, (q, c) in enumerate(zip(queries, cands)):
            start = time.perf_counter()
            rerank(ranker, q, c, cache, batch_size=batch_size)
            best[i] = min(best[i], time.perf_counter() - start)
        done += 1
        if statistics.mean(best) > slow_seconds:
            break
    return best, done


def doc_lengths(ranker: SplitRanker, texts: dict[str, str], ids: Sequence[str]) -> list[int]:
    return [len(s) for s in ranker.doc_sides([texts[i] for i in ids])]


def query_length(ranker: SplitRanker, query: str) -> int:
    return len(ranker.query_sides([query])[0])


def padded_lengths(lengths: Sequence[int], batch_size: int) -> list[int]:
    """Lengths as the re-ranker runs them: sorted, each batch padded to its longest member."""
    s = sorted(lengths)
    out: list[int] = []
    for b in range(0, len(s), batch_size):
        chunk = s[b : b + batch_size]
        out += [max(chunk)] * len(chunk)
    return out


@dataclass
class Row:
    """One measured configuration."""

    section: str
    model: str
    T: int
    L: int
    head: str
    layout: str
    cache_kind: str
    storage: str
    precompute: str
    candidates: int
    queries: int
    repeats: int
    batch_size: int
    mean_ms: float
    median_ms: float
    gflops: float
    gflops_padded: float
    flop_bound_ms: float
    ratio: float
    ratio_padded: float
    build: dict[str, Any] = field(default_factory=dict)
    speedup_vs_L0: float | None = None
    note: str = ""
    dtype: str = "fp32"
    #: bytes moved per query (layer weights from DRAM, cached representations read), MB
    mbytes: float | None = None
    #: max(FLOPs / peak, bytes / bandwidth), and measured / that
    roofline_ms: float | None = None
    ratio_roofline: float | None = None


def measure_row(section: str, model: str, ranker: SplitRanker, cache: DocCache, data: Data, qids: Sequence[str],
                cands: Sequence[Sequence[str]], precompute: str, storage: str, repeats: int, peak: float,
                slow_seconds: float, batch_size: int = 128, note: str = "") -> Row:
    queries = [data.queries[q] for q in qids]
    times, done = time_reranks(ranker, cache, queries, cands, repeats, slow_seconds, batch_size)
    shape = LayerShape.of(ranker.encoder.backbone.config)
    kv = precompute == "kv"
    flops, flops_pad = [], []
    for q, c in zip(queries, cands):
        ql, dl = query_length(ranker, q), doc_lengths(ranker, data.texts, c)
        flops.append(rerank_flops(shape, ranker.num_layers, ranker.split, ql, dl, cls_only_last=True, cached_keys_values=kv))
        flops_pad.append(rerank_flops(shape, ranker.num_layers, ranker.split, ql, padded_lengths(dl, batch_size),
                                      cls_only_last=True, cached_keys_values=kv))
    mean_s = statistics.mean(times)
    bound = statistics.mean(flops) / peak
    bound_pad = statistics.mean(flops_pad) / peak
    build = {}
    if getattr(cache, "last_build", None) is not None:
        b = cache.last_build
        build = {"docs": b.documents_added, "tokens": b.tokens_added, "seconds": round(b.seconds, 3),
                 "docs_per_s": round(b.docs_per_second, 1), "tokens_per_s": round(b.tokens_per_second, 0)}
    c = ranker.config
    row = Row(section, model, ranker.num_layers, ranker.split, c.head.name, c.sides.layout, cache.representation_name, storage,
              precompute, len(cands[0]), len(qids), done, batch_size, mean_s * 1e3, statistics.median(times) * 1e3,
              statistics.mean(flops) / 1e9, statistics.mean(flops_pad) / 1e9, bound * 1e3, mean_s / bound,
              mean_s / bound_pad, build, None, note, dtype=c.dtype)
    if MACHINE["bandwidth"]:
        info = cache.info()
        per_doc = sum(f["bytes"] for f in info["fields"].values()) / max(1, info["docs"])
        layer = sum(p.numel() * p.element_size() for p in ranker.encoder.layers[0].parameters())
        moved = rerank_bytes(layer, ranker.num_layers, ranker.split, len(cands[0]), batch_size, per_doc,
                             MACHINE["last_level_cache"]).total
        roof = roofline_seconds(statistics.mean(flops), moved, peak, MACHINE["bandwidth"])
        row.mbytes, row.roofline_ms, row.ratio_roofline = moved / 1e6, roof * 1e3, mean_s / roof
    return row


def build_cache(ranker: SplitRanker, docs: list[tuple[str, str]], path: Path, storage: str, precompute: str = "none",
                compressor=None) -> DocCache:
    if path.exists():
        shutil.rmtree(path)
    return DocCache.build(ranker, docs, path, storage=storage, precompute=precompute, compressor=compressor,
                          batch_size=64, progress=False)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------- section 1, 3, 4
def split_sweep(model: str, cls_ranker: SplitRanker, twin_ranker: SplitRanker, data: Data, qids: list[str],
                slow_qids: list[str], splits: Sequence[int], storages: Callable[[int], Sequence[str]],
                kv_splits: Sequence[int], tmp: Path, s: Settings, peak: float) -> list[Row]:
    """Every requested L from caches built once per (L, storage): BM25 top-100 per query.

    ``slow_qids`` (a prefix of ``qids``) serve the rows at L < T - 1, which take seconds per query.
    """
    T = cls_ranker.num_layers
    rows: list[Row] = []
    for L in splits:
        use = qids if L >= T - 1 else slow_qids
        cands = [data.runs["bm25"][q] for q in use]
        docs = [(d, data.texts[d]) for d in dict.fromkeys(d for c in cands for d in c)]
        ranker = twin_ranker if L == T else cls_ranker.at(L)
        options = [("fp32", "none")] if L == 0 else [(st, "none") for st in storages(L)]
        if L in kv_splits and 0 < L < T:
            options.append(("fp16", "kv"))
        for storage, pre in options:
            path = tmp / f"{model}-L{L}-{storage}-{pre}"
            cache = build_cache(ranker, docs, path, storage, pre)
            row = measure_row("top100", model, ranker, cache, data, use, cands, pre, storage if L else "ids",
                              s.repeats, peak, s.slow_repeat_seconds)
            rows.append(row)
            log(f"{model} L={L} {row.cache_kind}/{row.storage} {row.dtype}: {row.mean_ms:.1f} ms/query "
                f"(bound {row.flop_bound_ms:.1f} ms, ratio {row.ratio:.2f}, roofline {row.roofline_ms or 0:.2f} ms, "
                f"ratio {row.ratio_roofline or 0:.2f}, repeats {row.repeats})")
            shutil.rmtree(path, ignore_errors=True)
    base = next((r.mean_ms for r in rows if r.L == 0), None)
    for r in rows:
        r.speedup_vs_L0 = base / r.mean_ms if base else None
    return rows


# ------------------------------------------------------------------------------------- section 2
def top1000_rows(cls_ranker: SplitRanker, twin_ranker: SplitRanker, data: Data, s: Settings, tmp: Path,
                 peak: float) -> tuple[list[Row], dict]:
    qids = pick_queries(data, s.top1000_queries)
    lists, composition = [], {}
    for q in qids:
        ids, counts = top1000(data, q, s.seed)
        lists.append(ids)
        composition[q] = counts
    union = list(dict.fromkeys(d for c in lists for d in c))
    docs = [(d, data.texts[d]) for d in union]
    rows = []
    T = twin_ranker.num_layers
    for storage in ("fp16", "fp32"):
        path = tmp / f"top1000-twin-{storage}"
        cache = build_cache(twin_ranker, docs, path, storage)
        row = measure_row("top1000", "MiniLM-L6", twin_ranker, cache, data, qids, lists, "none", storage, s.repeats * 2,
                          peak, s.slow_repeat_seconds)
        # One more pass with timers, to see what a twin re-ranking of 1000 candidates spends its time on.
        timers = Timers()
        with timers.patched(breakdown_targets()):
            start = time.perf_counter()
            for q, c in zip(qids, lists):
                rerank(twin_ranker, data.queries[q], c, cache)
            total = (time.perf_counter() - start) / len(qids) * 1e3
        parts = {k: v / len(qids) * 1e3 for k, v in timers.seconds.items()}
        parts["other (Python, head, cat/expand, copies)"] = total - sum(parts.values())
        row.note = f"timed pass {total:.2f} ms: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
        rows.append(row)
        log(f"top-1000 twin {storage}: {row.mean_ms:.2f} ms/query; {row.note}")
        shutil.rmtree(path, ignore_errors=True)
    ranker = cls_ranker.at(T - 1)
    path = tmp / "top1000-kv"
    cache = build_cache(ranker, docs, path, "fp16", "kv")
    row = measure_row("top1000", "MiniLM-L6", ranker, cache, data, qids, lists, "kv", "fp16", s.repeats, peak,
                      s.slow_repeat_seconds)
    rows.append(row)
    log(f"top-1000 L={T - 1} kv: {row.mean_ms:.1f} ms/query")
    for bs in (32,):
        r = measure_row("top1000", "MiniLM-L6", ranker, cache, data, qids, lists, "kv", "fp16", s.repeats, peak,
                        s.slow_repeat_seconds, batch_size=bs, note=f"rerank batch_size={bs}")
        rows.append(r)
    shutil.rmtree(path, ignore_errors=True)
    info = {"queries": qids, "composition": composition, "union_docs": len(union),
            "construction": "per query: BM25 top-100, then the other four runs' top-100 for the query in the order "
                            "bm25-rm3, tasb, splade-pp-ed, ada2 (duplicates dropped), then passages drawn uniformly "
                            "without replacement from the rest of the 10,852 DL19 passages with "
                            "random.Random(seed + int(qid)), up to 1000"}
    return rows, info


# ------------------------------------------------------------------------------------- section 5
def cross_encoder_compare(ce_path: Path, data: Data, s: Settings, dtype: str = "fp32") -> dict:
    """Our L = 0 against sentence-transformers' CrossEncoder on pairs neither truncates, both in ``dtype``."""
    from sentence_transformers import CrossEncoder

    ranker = SplitRanker.from_pretrained(ce_path, split=0, max_query_length=MAX_Q, max_doc_length=MAX_D, dtype=dtype)
    tok = ranker.tokenizer
    pairs = []
    for q in pick_queries(data, 43):
        for d in data.runs["bm25"][q]:
            qt, dt = data.queries[q], data.texts[d]
            # Keep pairs that fit both truncation schemes untouched: ours (32 + 224) and theirs (256 total).
            nq = len(tok(qt, add_special_tokens=False)["input_ids"]) + 2
            nd = len(tok(dt, add_special_tokens=False)["input_ids"]) + 1
            if nq <= MAX_Q and nd <= MAX_D and nq + nd <= 256:
                pairs.append((qt, dt))
        if len(pairs) >= s.ce_pairs:
            break
    pairs = pairs[: s.ce_pairs]
    qs, ds = [p[0] for p in pairs], [p[1] for p in pairs]
    ce = CrossEncoder(str(ce_path), max_length=256, device="cpu", activation_fn=torch.nn.Identity())
    ce.model.to(TORCH_DTYPES[dtype])
    result: dict[str, Any] = {"dtype": dtype, "pairs": len(pairs), "repeats": s.ce_repeats,
                              "truncation": "only pairs with query side <= 32 and document side <= 224 tokens "
                                            "(so neither our 32+224 nor CrossEncoder's 256 truncates)",
                              "mean_pair_tokens": statistics.mean(
                                  len(tok(q, d)["input_ids"]) for q, d in pairs)}
    ce.predict(pairs[:4], batch_size=32, show_progress_bar=False)
    ranker.score(qs[:4], ds[:4])
    for bs in (32, 128):
        t_ce, t_ours = [], []
        for _ in range(s.ce_repeats):
            start = time.perf_counter()
            theirs = ce.predict(pairs, batch_size=bs, show_progress_bar=False)
            t_ce.append(time.perf_counter() - start)
            start = time.perf_counter()
            ours = ranker.score(qs, ds, batch_size=bs)
            t_ours.append(time.perf_counter() - start)
        result[f"batch_{bs}"] = {"cross_encoder_ms": min(t_ce) * 1e3, "ours_ms": min(t_ours) * 1e3,
                                 "ours_over_theirs": min(t_ours) / min(t_ce),
                                 "max_abs_score_diff": float(np.abs(np.asarray(theirs, dtype=np.float32) - ours.float().numpy()).max())}
        log(f"CrossEncoder {dtype} batch {bs}: theirs {min(t_ce) * 1e3:.0f} ms, ours {min(t_ours) * 1e3:.0f} ms")
    return result


# ------------------------------------------------------------------------------------- section 7
def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _key(r: dict) -> tuple:
    return (r["section"], r["model"], r.get("dtype", "fp32"), r["L"], r["cache_kind"], r["storage"], r["precompute"],
            r["batch_size"])


def before_rows(before: dict, result: dict, path: Path) -> dict:
    """Each row of an earlier run (same machine) that this run measured again, with both times."""
    old = {_key(r): r for r in before["rows"]}
    pairs = []
    for r in result["rows"]:
        b = old.get(_key(r))
        if b is not None:
            pairs.append({"section": r["section"], "model": r["model"], "L": r["L"], "cache": r["cache_kind"],
                          "storage": r["storage"], "candidates": r["candidates"], "before_ms": b["mean_ms"],
                          "after_ms": r["mean_ms"], "speedup": b["mean_ms"] / r["mean_ms"],
                          "before_x_vs_L0": b.get("speedup_vs_L0"), "after_x_vs_L0": r.get("speedup_vs_L0")})
    ce = before.get("cross_encoder", {})
    return {"file": _shown(path), "torch": before["meta"]["torch"], "rows": pairs,
            "cross_encoder_ours_over_theirs": {bs: ce.get(f"batch_{bs}", {}).get("ours_over_theirs") for bs in (32, 128)},
            "breakdown": before.get("breakdown", [])}


INT8_KINDS = ("int8", "int8-except-ffn-output")


def effective_int8_peak(quantization: str, peak: float, peak_int8: float, shape: LayerShape) -> float:
    """The matmul peak a row's bound is taken against: the int8 Linear peak for ``int8``; for
    ``int8-except-ffn-output`` the rate at which a layer's Linear work runs with its feed-forward
    output projection (intermediate x hidden of each token's 4 h^2 + 2 h i multiply-adds) at the
    fp32 peak and the rest at the int8 peak."""
    if quantization == "int8":
        return peak_int8
    fp32_share = shape.intermediate / (4 * shape.hidden + 2 * shape.intermediate)
    return 1.0 / ((1 - fp32_share) / peak_int8 + fp32_share / peak)


def int8_rows(ce_path: Path, minilm: Path, data: Data, s: Settings, tmp: Path, peak: float,
              peak_int8: float) -> list[Row]:
    """The MiniLM split sweep again with int8 Linear layers (both int8 choices), bounds taken
    against :func:`effective_int8_peak`."""
    lengths = dict(max_query_length=MAX_Q, max_doc_length=MAX_D)
    rows: list[Row] = []
    for quantization in INT8_KINDS:
        cls8 = SplitRanker.from_pretrained(ce_path, split=0, quantization=quantization, **lengths)
        twin8 = SplitRanker.from_pretrained(minilm, split=6, quantization=quantization, **lengths)
        T = cls8.num_layers
        rows += split_sweep(f"MiniLM-L6 {quantization}", cls8, twin8, data, pick_queries(data, s.minilm_queries),
                            pick_queries(data, s.minilm_slow_queries), range(T + 1), lambda L: ("fp16",), (T - 1,),
                            tmp, s, effective_int8_peak(quantization, peak, peak_int8,
                                                        LayerShape.of(cls8.encoder.backbone.config)))
    return rows


def int8_effectiveness(minilm: Path, tmp: Path, splits: Sequence[int], runs_dir: Path) -> dict:
    """nDCG@10 on DL19 (BM25 top-100) of the zero-shot twin (mean pooling, cosine) at every L in
    fp32 and both int8 choices, and each int8 run's Kendall tau against the fp32 run (mean and
    minimum over queries); the TREC runs are kept in ``runs_dir`` so every figure can be
    recomputed."""
    import ranx

    from lateint.data.runs import read_run
    from lateint.pipeline.rerank_run import rerank_dataset

    handle = load_dataset(DATASET)
    candidates = handle.candidates(run="bm25", depth=100)
    qrels = ranx.Qrels(handle.qrels())
    out: dict[str, Any] = {"model": f"{MINILM} twin head (mean pooling, cosine), zero-shot", "queries": len(candidates),
                           "first_stage": "bm25 top-100", "cache_storage": "fp16", "runs": _shown(runs_dir),
                           "rows": []}
    fp32_runs: dict[int, dict] = {}
    for quantization in ("none", *INT8_KINDS):
        base = SplitRanker.from_pretrained(minilm, split=6, head="twin", pooling="mean", crossing="cosine",
                                           max_query_length=MAX_Q, max_doc_length=MAX_D, quantization=quantization)
        for L in splits:
            name = f"L{L}-{'fp32' if quantization == 'none' else quantization}"
            run_path = runs_dir / f"{name}.trec"
            for stale in (run_path, run_path.with_name(run_path.name + ".progress")):
                stale.unlink(missing_ok=True)
            rerank_dataset(base.at(L), handle, candidates, run_path, tag=name, cache_root=tmp / f"eff-{name}",
                           storage="fp16", progress=False)
            scores = read_run(run_path)
            run = ranx.Run({q: {d: float(v) for d, v in docs.items()} for q, docs in scores.items()})
            value = float(ranx.evaluate(qrels, run, "ndcg@10", make_comparable=True))
            row = {"L": L, "quantization": quantization, "ndcg@10": round(value, 4), "run": _shown(run_path)}
            if quantization == "none":
                fp32_runs[L] = scores
            else:
                taus = [kendall_tau(np.array([float(fp32_runs[L][q][d]) for d in sorted(docs)]),
                                    np.array([float(docs[d]) for d in sorted(docs)])) for q, docs in scores.items()]
                row["kendall_tau_vs_fp32_mean"] = round(float(np.mean(taus)), 4)
                row["kendall_tau_vs_fp32_min"] = round(float(np.min(taus)), 4)
            out["rows"].append(row)
            log(f"effectiveness {name}: nDCG@10 {value:.4f}")
            shutil.rmtree(tmp / f"eff-{name}", ignore_errors=True)
    by = {(r["L"], r["quantization"]): r["ndcg@10"] for r in out["rows"]}
    out["change"] = {q: {L: round(by[(L, q)] - by[(L, "none")], 4) for L in splits} for q in INT8_KINDS}
    return out


def sentence_transformers_encode_compare(minilm: Path, data: Data, s: Settings, tmp: Path, dtype: str = "fp32") -> dict:
    """Cache build at L = T against ``SentenceTransformer.encode`` of the same model and passages,
    in this run (same threads, same maximum length, batch 64 for both, both in ``dtype``)."""
    from sentence_transformers import SentenceTransformer

    ids = sorted(data.texts)[: s.encode_docs]
    docs = [(d, data.texts[d]) for d in ids]
    twin = SplitRanker.from_pretrained(minilm, split=6, max_query_length=MAX_Q, max_doc_length=MAX_D, dtype=dtype)
    model = SentenceTransformer(str(minilm), device="cpu")
    model.to(TORCH_DTYPES[dtype])
    model.max_seq_length = MAX_D
    texts = [t for _, t in docs]
    model.encode(texts[:64], batch_size=64)
    build_cache(twin, docs[:64], tmp / "encode-warmup", "fp16")
    builds, encodes = [], []
    for _ in range(2):
        start = time.perf_counter()
        build_cache(twin, docs, tmp / "encode-build", "fp16")
        builds.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.encode(texts, batch_size=64)
        encodes.append(time.perf_counter() - start)
    shutil.rmtree(tmp / "encode-build", ignore_errors=True)
    result = {"dtype": dtype, "docs": len(docs), "max_length": MAX_D, "batch_size": 64, "repeats": 2,
              "cache_build_docs_per_s": len(docs) / min(builds), "encode_docs_per_s": len(docs) / min(encodes)}
    result["build_over_encode"] = result["cache_build_docs_per_s"] / result["encode_docs_per_s"]
    log(f"L=T cache build ({dtype}) {result['cache_build_docs_per_s']:.1f} docs/s vs SentenceTransformer.encode "
        f"{result['encode_docs_per_s']:.1f} docs/s: {result['build_over_encode']:.2f}x")
    return result


# ------------------------------------------------------------------------------------- section 6
def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    try:
        from scipy.stats import kendalltau

        return float(kendalltau(a, b).statistic)
    except ImportError:  # tau-b without scipy
        n = len(a)
        conc = disc = ta = tb = 0
        for i in range(n):
            for j in range(i + 1, n):
                x, y = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
                if x == 0 and y == 0:
                    continue
                if x == 0:
                    ta += 1
                elif y == 0:
                    tb += 1
                elif x == y:
                    conc += 1
                else:
                    disc += 1
        return (conc - disc) / np.sqrt((conc + disc + ta) * (conc + disc + tb))


def storage_rows(cls_ranker: SplitRanker, data: Data, s: Settings, tmp: Path, splits: Sequence[int]) -> list[dict]:
    qids = pick_queries(data, s.storage_queries)
    cands = [data.runs["bm25"][q] for q in qids]
    doc_ids = list(dict.fromkeys(d for c in cands for d in c))
    docs = [(d, data.texts[d]) for d in doc_ids]
    # The compressor learns from other DL19 passages than the ones it is evaluated on.
    rng = random.Random(s.seed)
    train_pool = sorted(set(data.texts) - set(doc_ids))
    train_texts = [data.texts[d] for d in rng.sample(train_pool, s.compressor_docs)]
    H = cls_ranker.encoder.hidden_size
    out = []
    for L in splits:
        ranker = cls_ranker.at(L)
        comp, training = train_compressor(ranker, train_texts, 128, steps=s.compressor_steps, seed=s.seed)
        log(f"compressor L={L}: mse {training.initial_mse:.4f} -> {training.final_mse:.4f} in {training.seconds:.1f} s")
        options = [("fp32", None), ("fp16", None), ("int8", None), ("fp16", comp), ("int8", comp)]
        reference: list[np.ndarray] = []
        for storage, c in options:
            path = tmp / f"storage-L{L}-{storage}-{'e128' if c else 'full'}"
            cache = build_cache(ranker, docs, path, storage, compressor=c)
            scores = [np.array(list(rerank(ranker, data.queries[q], ids, cache).values())) for q, ids in zip(qids, cands)]
            if not reference:
                reference = scores
            taus = [kendall_tau(r, x) for r, x in zip(reference, scores)]
            err = max(float(np.abs(r - x).max()) for r, x in zip(reference, scores))
            field_info = cache.info()["fields"]["states"]
            b = cache.last_build
            row = {"L": L, "storage": storage, "compression": "e=128" if c else "none",
                   "bytes_per_token": field_info["bytes_per_token"],
                   "bytes_per_hidden_dim": field_info["bytes_per_token"] / H,
                   "mean_tokens_per_doc": field_info["mean_tokens"],
                   "build_docs_per_s": b.docs_per_second, "build_tokens_per_s": b.tokens_per_second,
                   "kendall_tau_mean": statistics.mean(taus), "kendall_tau_min": min(taus),
                   "max_abs_err": err, "queries": qids, "docs": len(doc_ids)}
            if c is not None:
                row["compressor_training"] = {"docs": training.documents, "tokens": training.tokens,
                                              "steps": training.steps, "initial_mse": training.initial_mse,
                                              "final_mse": training.final_mse, "seconds": training.seconds}
            out.append(row)
            log(f"storage L={L} {storage} {row['compression']}: {row['bytes_per_token']} B/token, "
                f"tau {row['kendall_tau_mean']:.4f} (min {row['kendall_tau_min']:.4f}), max err {err:.2e}")
            shutil.rmtree(path, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------- breakdown
class Timers:
    """Accumulated wall time of named functions, wrapped in place for the duration of a block."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._depth = 0

    def wrap(self, name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            # Only the outermost timed call counts, so nested timed functions are not counted twice.
            self._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                    self.calls[name] = self.calls.get(name, 0) + 1
        return timed

    @contextlib.contextmanager
    def patched(self, targets: list[tuple[Any, str, str]]) -> Iterator["Timers"]:
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]
        try:
            for obj, attr, name in targets:
                setattr(obj, attr, self.wrap(name, getattr(obj, attr)))
            yield self
        finally:
            for obj, attr, fn in saved:
                setattr(obj, attr, fn)


def breakdown_targets() -> list[tuple[Any, str, str]]:
    """The package functions whose time the breakdown reports."""
    import lateint.modeling.layers as layers_mod
    import lateint.modeling.representations.kv as kv_mod
    import lateint.modeling.split_encoder as enc_mod
    from lateint.cache.reader import CacheReader
    from lateint.tokenization import PairTokenizer

    return [
        (PairTokenizer, "query_sides", "tokenize query"),
        (PairTokenizer, "batch", "pad/batch token ids"),
        (DocCache, "check", "cache fingerprint check"),
        (CacheReader, "get", "cache read (ids)"),
        (CacheReader, "gather_padded", "cache gather + decode"),
        (CacheReader, "gather_packed", "cache gather + decode"),
        (CacheReader, "lengths", "cache lengths"),
        (enc_mod.SplitEncoder, "embed", "embeddings"),
        (enc_mod, "layer_forward", "transformer layers"),
        (layers_mod, "layer_forward", "transformer layers"),
        (layers_mod, "project_keys_values", "query K/V projection"),
        (kv_mod, "first_row_over_packed", "last layer: [CLS] row over cached K/V"),
    ]


def breakdown(cls_ranker: SplitRanker, twin_ranker: SplitRanker, data: Data, tmp: Path, repeats: int) -> list[dict]:
    """Where one query's top-100 re-ranking time goes, by timers around the package's functions."""
    qids = pick_queries(data, 2)
    cands = [data.runs["bm25"][q] for q in qids]
    docs = [(d, data.texts[d]) for d in dict.fromkeys(d for c in cands for d in c)]
    T = cls_ranker.num_layers
    targets = breakdown_targets()
    out = []
    for L, pre in ((0, "none"), (T - 1, "none"), (T - 1, "kv"), (T // 2, "none"), (T, "none")):
        ranker = twin_ranker if L == T else cls_ranker.at(L)
        path = tmp / f"breakdown-L{L}-{pre}"
        cache = build_cache(ranker, docs, path, "fp16", pre)
        rerank(ranker, data.queries[qids[0]], cands[0][:8], cache)
        reps = 1 if L == 0 else repeats
        best: dict | None = None
        for _ in range(reps):
            timers = Timers()
            with timers.patched(targets):
                start = time.perf_counter()
                for q, c in zip(qids, cands):
                    rerank(ranker, data.queries[q], c, cache)
                total = time.perf_counter() - start
            if best is None or total < best["total"]:
                best = {"total": total, "seconds": dict(timers.seconds), "calls": dict(timers.calls)}
        assert best is not None
        n = len(qids)
        parts = {k: v / n * 1e3 for k, v in best["seconds"].items()}
        parts["other (Python, head, cat/expand, copies)"] = best["total"] / n * 1e3 - sum(parts.values())
        out.append({"L": L, "precompute": pre, "cache_kind": cache.representation_name, "queries": n, "repeats": reps,
                    "total_ms_per_query": best["total"] / n * 1e3, "ms_per_query": parts})
        log(f"breakdown L={L} {pre}: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
        shutil.rmtree(path, ignore_errors=True)
    return out


def batch_size_effect(cls_ranker: SplitRanker, data: Data, tmp: Path, s: Settings, peak: float) -> list[Row]:
    """Default re-rank batch (128, one padded batch for 100 candidates) against smaller batches."""
    rows = []
    T = cls_ranker.num_layers
    for L, pre, nq, sizes in ((0, "none", 1, (128, 32)), (T // 2, "none", s.minilm_slow_queries, (128, 32, 16)),
                              (T - 1, "none", s.minilm_queries, (128, 32, 16))):
        qids = pick_queries(data, nq)
        cands = [data.runs["bm25"][q] for q in qids]
        docs = [(d, data.texts[d]) for d in dict.fromkeys(d for c in cands for d in c)]
        ranker = cls_ranker.at(L)
        path = tmp / f"batch-L{L}"
        cache = build_cache(ranker, docs, path, "fp32", pre)
        for bs in sizes:
            r = measure_row("batch_size", "MiniLM-L6", ranker, cache, data, qids, cands, pre, "fp32" if L else "ids",
                            s.repeats if L else 1, peak, s.slow_repeat_seconds, batch_size=bs,
                            note=f"rerank batch_size={bs}")
            rows.append(r)
            log(f"batch L={L} bs={bs}: {r.mean_ms:.1f} ms/query (padded/real FLOPs {r.gflops_padded / r.gflops:.2f})")
        shutil.rmtree(path, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------------------- reporting
def row_table(rows: list[Row]) -> str:
    head = ("| model | dtype | L | head/layout | cache | storage | pre | cand | q | rep | bs | mean ms | median ms | GFLOP "
            "| bound ms | ratio | ratio (padded FLOPs) | MB moved | roofline ms | measured / roofline | x vs L=0 "
            "| build docs/s |")
    lines = [head, "|" + "---|" * 22]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.dtype} | {r.L} | {r.head}/{r.layout} | {r.cache_kind} | {r.storage} | {r.precompute} | "
            f"{r.candidates} | {r.queries} | {r.repeats} | {r.batch_size} | {r.mean_ms:.2f} | {r.median_ms:.2f} | "
            f"{r.gflops:.3f} | {r.flop_bound_ms:.2f} | {r.ratio:.2f} | {r.ratio_padded:.2f} | "
            f"{_opt(r.mbytes, 2)} | {_opt(r.roofline_ms, 2)} | {_opt(r.ratio_roofline, 2)} | "
            f"{'' if r.speedup_vs_L0 is None else f'{r.speedup_vs_L0:.1f}'} | {r.build.get('docs_per_s', '')} |")
    return "\n".join(lines)


def _opt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def breakdown_lines(breakdown: list[dict]) -> list[str]:
    """One line per measured split: the total and each part, ms per query."""
    return [f"- L={b['L']} ({b['cache_kind']}, precompute={b['precompute']}): total {b['total_ms_per_query']:.2f} ms: "
            + ", ".join(f"{k} {v:.2f}" for k, v in b["ms_per_query"].items()) for b in breakdown]


def render_markdown(result: dict) -> str:
    m = result["meta"]
    rows = [Row(**r) for r in result["rows"]]
    md = ["# Re-ranking latency on TREC DL 2019 (CPU)", "",
          f"torch {m['torch']}, {m['threads']} threads, seed {m['seed']}, fp32 peak "
          f"{m['matmul_peak_gflops']:.1f} GFLOP/s (the better of torch.mm and the packed Linear kernel, 2048^2, best of "
          f"{m['matmul_peak_repeats']}; int8 rows against the int8 Linear peak "
          f"{m.get('int8_linear_peak_gflops', float('nan')):.1f} GFLOP/s, int8-except-ffn-output rows with the feed-forward "
          "output projections' share of the Linear work at the fp32 peak), "
          f"{'quick' if m['quick'] else 'full'} run, {m['wall_seconds']:.0f} s. max_query_length {MAX_Q}, "
          f"max_doc_length {MAX_D}. Times are per query, best of `rep` passes per query, then mean/median over "
          "queries; `bound` = FLOPs of the remaining work / matmul peak; `ratio` = measured / bound "
          "(FLOPs from real token lengths); `ratio (padded FLOPs)` counts each length-sorted batch padded to its "
          "longest candidate, as the re-ranker runs it.", "",
          "## Top-100 (BM25) at every split", "", row_table([r for r in rows if r.section == "top100"]), "",
          "## Top-1000", "", result["top1000"]["construction"], "",
          row_table([r for r in rows if r.section == "top1000"]), "",
          *[f"- L={r.L} {r.cache_kind}/{r.storage} bs {r.batch_size}: {r.note}" for r in rows
            if r.section == "top1000" and r.note], "",
          "## Re-rank batch size (padding)", "", row_table([r for r in rows if r.section == "batch_size"]), "",
          "## L = 0 against sentence-transformers CrossEncoder", ""]
    ce = result["cross_encoder"]
    md.append(f"{ce['pairs']} BM25 pairs, {ce['truncation']}; mean {ce['mean_pair_tokens']:.1f} tokens per pair; "
              f"best of {ce['repeats']}.")
    md += ["", "| batch | CrossEncoder ms | ours ms | ours / theirs | max abs score diff |", "|---|---|---|---|---|"]
    for bs in (32, 128):
        b = ce[f"batch_{bs}"]
        md.append(f"| {bs} | {b['cross_encoder_ms']:.0f} | {b['ours_ms']:.0f} | {b['ours_over_theirs']:.2f} | "
                  f"{b['max_abs_score_diff']:.2e} |")
    md += ["", "## Cache storage and fidelity (MiniLM, cls head)", "",
           "| L | storage | compression | B/token | B/hidden dim/token | build docs/s | build tokens/s | "
           "Kendall tau mean | min | max abs err |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["storage"]:
        md.append(f"| {r['L']} | {r['storage']} | {r['compression']} | {r['bytes_per_token']} | "
                  f"{r['bytes_per_hidden_dim']:.3f} | {r['build_docs_per_s']:.0f} | {r['build_tokens_per_s']:.0f} | "
                  f"{r['kendall_tau_mean']:.4f} | {r['kendall_tau_min']:.4f} | {r['max_abs_err']:.2e} |")
    md += ["", "## Where the time goes (MiniLM, BM25 top-100, fp16 caches, ms per query)", ""]
    md += breakdown_lines(result["breakdown"])
    enc = result["sentence_transformers_encode"]
    md += ["", "## Cache build at L = T against SentenceTransformer.encode (same run)", "",
           f"{enc['docs']} DL19 passages, max length {enc['max_length']}, batch {enc['batch_size']}, best of "
           f"{enc['repeats']}: cache build {enc['cache_build_docs_per_s']:.1f} docs/s, SentenceTransformer.encode "
           f"{enc['encode_docs_per_s']:.1f} docs/s: **{enc['build_over_encode']:.2f}x**."]
    eff = result["int8_effectiveness"]
    md += ["", "## int8 Linear layers: nDCG@10 on DL19", "",
           f"{eff['model']}, {eff['queries']} queries, {eff['first_stage']}, {eff['cache_storage']} caches; TREC runs in "
           f"`{eff['runs']}`. tau: Kendall tau of each query's int8 scores against its fp32 scores, mean (min) over "
           "queries.", "",
           "| L | fp32 | " + " | ".join(f"{q} | change | tau" for q in INT8_KINDS) + " |",
           "|---|---|" + "---|---|---|" * len(INT8_KINDS)]
    by = {(r["L"], r["quantization"]): r for r in eff["rows"]}
    for L in sorted({r["L"] for r in eff["rows"]}):
        cells = [f"{by[(L, 'none')]['ndcg@10']:.4f}"]
        for q in INT8_KINDS:
            r = by[(L, q)]
            cells += [f"{r['ndcg@10']:.4f}", f"{r['ndcg@10'] - by[(L, 'none')]['ndcg@10']:+.4f}",
                      f"{r['kendall_tau_vs_fp32_mean']:.3f} ({r['kendall_tau_vs_fp32_min']:.3f})"]
        md.append(f"| {L} | " + " | ".join(cells) + " |")
    if result.get("before"):
        b = result["before"]
        md += ["", "## Before and after (same machine)", "",
               f"Earlier version: `{b['file']}` (torch {b['torch']}), mean ms per query.", "",
               "| section | model | L | cache | storage | cand | before ms | after ms | speed-up | x vs L=0 before | after |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in b["rows"]:
            fmt = lambda v: f"{v:.1f}" if v else ""  # noqa: E731
            md.append(f"| {r['section']} | {r['model']} | {r['L']} | {r['cache']} | {r['storage']} | {r['candidates']} | "
                      f"{r['before_ms']:.2f} | {r['after_ms']:.2f} | {r['speedup']:.2f}x | {fmt(r['before_x_vs_L0'])} | "
                      f"{fmt(r['after_x_vs_L0'])} |")
        md += ["", "Where the time went before:", "", *breakdown_lines(b["breakdown"])]
    md += ["", "## Targets", "", "| target | status | measured |", "|---|---|---|"]
    for t in result["targets"]:
        md.append(f"| {t['target']} | {'MET' if t['met'] else 'NOT MET'} | {t['measured']} |")
    return "\n".join(md) + "\n"


def evaluate_targets(result: dict) -> list[dict]:
    every = [Row(**r) for r in result["rows"]]
    targets = precision_targets(result, every)
    rows = [r for r in every if r.dtype == "fp32"]  # the targets below were set for fp32
    twin = [r for r in rows if r.section == "top1000" and r.L == r.T and r.storage == "fp16"]
    if twin:
        targets.append({"target": "twin (L=T, fp16) top-1000 < 20 ms/query incl. query encoding",
                        "met": twin[0].mean_ms < 20, "measured": f"{twin[0].mean_ms:.2f} ms (median {twin[0].median_ms:.2f})"})
    main = [r for r in rows if r.section == "top100"]
    worst = max(main, key=lambda r: r.ratio)
    targets.append({"target": "measured time within 1.3x of FLOPs / peak at every L (top-100 rows)",
                    "met": all(r.ratio <= 1.3 for r in main),
                    "measured": f"worst {worst.ratio:.2f} ({worst.model} L={worst.L} {worst.cache_kind}/{worst.storage}); "
                                f"{sum(r.ratio <= 1.3 for r in main)}/{len(main)} rows within 1.3x"})
    mini = [r for r in main if r.model == "MiniLM-L6"]
    if mini:
        T = mini[0].T
        best_t1 = max((r for r in mini if r.L == T - 1), key=lambda r: r.speedup_vs_L0 or 0)
        plain_t1 = [r for r in mini if r.L == T - 1 and r.precompute == "none"]
        extra = f"; without kv best {max(r.speedup_vs_L0 for r in plain_t1):.1f}x" if plain_t1 else ""
        targets.append({"target": "MiniLM L=T-1 >= 20x faster than L=0 (top-100)", "met": best_t1.speedup_vs_L0 >= 20,
                        "measured": f"{best_t1.speedup_vs_L0:.1f}x ({best_t1.cache_kind}/{best_t1.storage}){extra}"})
    ce = result["cross_encoder"]
    worst_ce = max(ce[f"batch_{bs}"]["ours_over_theirs"] for bs in (32, 128))
    targets.append({"target": "L=0 at least as fast as sentence-transformers CrossEncoder",
                    "met": worst_ce <= 1.0, "measured": f"ours/theirs {ce['batch_32']['ours_over_theirs']:.2f} (batch 32), "
                                                        f"{ce['batch_128']['ours_over_theirs']:.2f} (batch 128)"})
    t1000 = [r for r in rows if r.section == "top1000" and r.L == r.T and r.storage == "fp16" and r.batch_size == 128]
    if t1000:
        targets.append({"target": "twin top-1000 <= 5 ms per query", "met": t1000[0].mean_ms <= 5,
                        "measured": f"{t1000[0].mean_ms:.2f} ms"})
    kv = [r for r in main if r.model == "MiniLM-L6" and r.L == r.T - 1 and r.precompute == "kv"]
    if kv:
        targets.append({"target": "L = T-1 (kv) top-100 <= 8 ms per query", "met": kv[0].mean_ms <= 8,
                        "measured": f"{kv[0].mean_ms:.2f} ms"})
    for model, goal in (("MiniLM-L6", 150), ("BERT-base-random", 300)):
        fast = [r for r in main if r.model == model and r.L == r.T - 1 and r.speedup_vs_L0]
        if fast:
            best = max(r.speedup_vs_L0 for r in fast)
            targets.append({"target": f"{model}: L = T-1 >= {goal}x faster than L = 0", "met": best >= goal,
                            "measured": f"{best:.1f}x"})
    targets.append({"target": "L = 0 vs CrossEncoder at its default batch size (32) <= 0.65",
                    "met": ce["batch_32"]["ours_over_theirs"] <= 0.65,
                    "measured": f"{ce['batch_32']['ours_over_theirs']:.2f}"})
    enc = result.get("sentence_transformers_encode")
    if enc:
        targets.append({"target": "cache build at L = T vs SentenceTransformer.encode >= 1.2x",
                        "met": enc["build_over_encode"] >= 1.2, "measured": f"{enc['build_over_encode']:.2f}x"})
    eff = result.get("int8_effectiveness")
    if eff:
        for q, change in eff["change"].items():
            targets.append({"target": f"{q} Linear layers lose <= 0.005 nDCG@10 on DL19 at every L",
                            "met": min(change.values()) >= -0.005,
                            "measured": ", ".join(f"L={L}: {c:+.4f}" for L, c in change.items())})
    int8 = [r for r in result["storage"] if r["storage"] == "int8" and r["compression"] == "none"]
    if int8:
        ok = all(r["bytes_per_hidden_dim"] <= 1.15 and r["kendall_tau_min"] >= 0.98 for r in int8)
        targets.append({"target": "int8 <= 1.15 B per hidden dim per token with Kendall tau >= 0.98 vs fp32",
                        "met": ok, "measured": "; ".join(f"L={r['L']}: {r['bytes_per_hidden_dim']:.3f} B/dim, tau min "
                                                         f"{r['kendall_tau_min']:.4f}" for r in int8)})
    return targets


def precision_targets(result: dict, rows: list[Row]) -> list[dict]:
    """The roofline and speed-up goals, in every precision measured, and the bf16 peers' goals."""
    targets = []
    for dtype in dict.fromkeys(r.dtype for r in rows):
        main = [r for r in rows if r.section == "top100" and r.dtype == dtype and r.ratio_roofline is not None]
        if main:
            worst = max(main, key=lambda r: r.ratio_roofline)
            targets.append({"target": f"{dtype}: measured / roofline <= 1.5 at every L (top-100 rows)",
                            "met": all(r.ratio_roofline <= 1.5 for r in main),
                            "measured": f"worst {worst.ratio_roofline:.2f} ({worst.model} L={worst.L} "
                                        f"{worst.cache_kind}/{worst.storage})"})
        mini = [r for r in rows if r.section == "top100" and r.dtype == dtype and r.model == "MiniLM-L6" and r.speedup_vs_L0]
        for what, pick, goal in (("L = T-1 with K/V", lambda r: r.L == r.T - 1 and r.precompute == "kv", 150),
                                 ("twin", lambda r: r.L == r.T, 400)):
            chosen = [r for r in mini if pick(r)]
            if chosen:
                best = max(r.speedup_vs_L0 for r in chosen)
                targets.append({"target": f"{dtype}: MiniLM {what} >= {goal}x faster than L = 0 (top-100)",
                                "met": best >= goal, "measured": f"{best:.1f}x"})
    fp32 = {(r.model, r.L, r.storage, r.precompute): r for r in rows if r.section == "top100" and r.dtype == "fp32"}
    for dtype, peers in result.get("precisions", {}).items():
        l0 = [r for r in rows if r.section == "top100" and r.dtype == dtype and r.model == "MiniLM-L6" and r.L == 0]
        base = fp32.get(("MiniLM-L6", 0, "ids", "none"))
        if l0 and base:
            targets.append({"target": f"{dtype} at L = 0 <= 0.5x the fp32 time", "met": l0[0].mean_ms <= 0.5 * base.mean_ms,
                            "measured": f"{l0[0].mean_ms / base.mean_ms:.2f}x"})
        ce = peers["cross_encoder"]["batch_32"]["ours_over_theirs"]
        targets.append({"target": f"{dtype}: L = 0 <= 0.8x of CrossEncoder in {dtype} (batch 32)", "met": ce <= 0.8,
                        "measured": f"{ce:.2f}"})
        enc = peers["sentence_transformers_encode"]["build_over_encode"]
        targets.append({"target": f"{dtype}: cache build at L = T >= 1.2x SentenceTransformer.encode in {dtype}",
                        "met": enc >= 1.2, "measured": f"{enc:.2f}x"})
    return targets


# ----------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer queries, splits and repeats (a few minutes)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="folder for the JSON and markdown")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--families", action="store_true",
                        help="also the DistilBERT, DeBERTa-v3 and ModernBERT rows (benchmarks/family_latency.py)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for caches (default: a temp dir under benchmarks/results/tmp)")
    parser.add_argument("--before", type=Path, default=None,
                        help="rerank_latency.json of an earlier version measured on this machine: its rows are shown "
                             "next to the new ones")
    has_bf16 = auto_dtype("cpu", read_cpu_flags()) == "bf16"
    parser.add_argument("--dtypes", nargs="+", choices=list(TORCH_DTYPES), default=["fp32", "bf16"] if has_bf16 else ["fp32"],
                        help="precisions the split sweeps and the sentence-transformers peers run in (default: fp32, and "
                             "bf16 where the CPU has AMX or AVX512-BF16)")
    args = parser.parse_args(argv)

    wall = time.perf_counter()
    s = make_settings(args.quick, args.seed, args.threads)
    torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    random.seed(s.seed)
    np.random.seed(s.seed)
    _TMP_ROOT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rerank-latency-", dir=args.tmp or _TMP_ROOT))
    try:
        peak_repeats = 20
        # The bound is taken against the fastest fp32 kernel the rows can use: torch's matmul or the
        # packed Linear the encoder runs with at inference.
        peak = max(matmul_peak(repeats=peak_repeats), linear_peak(repeats=peak_repeats))
        peak_int8 = linear_peak(repeats=peak_repeats, quantization="int8")
        # the memory side of the roofline: a copy well above the last-level cache
        MACHINE["last_level_cache"] = last_level_cache_bytes()
        MACHINE["bandwidth"] = memory_bandwidth(mib=max(256, 8 * (MACHINE["last_level_cache"] or 0) // 2**20),
                                                repeats=peak_repeats // 2)
        log(f"fp32 peak {peak / 1e9:.1f} GFLOP/s, int8 Linear peak {peak_int8 / 1e9:.1f} GFLOP/s, "
            f"bandwidth {MACHINE['bandwidth'] / 1e9:.1f} GB/s, last-level cache {MACHINE['last_level_cache']} B, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        data = load_data()
        log(f"data: {len(data.queries)} queries, {len(data.texts)} passages")

        minilm = resolve(MINILM)
        ce_path = make_cross_encoder(tmp / "minilm-cross-encoder", minilm)
        bert_path = make_bert_base(tmp / "bert-base-random", minilm, s.seed)
        lengths = dict(max_query_length=MAX_Q, max_doc_length=MAX_D)
        mini_cls = SplitRanker.from_pretrained(ce_path, split=0, **lengths)
        mini_twin = SplitRanker.from_pretrained(minilm, split=6, **lengths)  # twin head (mean, cosine) of the ST folder

        rows: list[Row] = []
        T = mini_cls.num_layers
        # fp16 next to fp32 where it matters most (L >= T/2: the fast rows); kv at every 0 < L < T.
        rows += split_sweep("MiniLM-L6", mini_cls, mini_twin, data, pick_queries(data, s.minilm_queries),
                            pick_queries(data, s.minilm_slow_queries), range(T + 1),
                            lambda L: ("fp32", "fp16") if L >= T // 2 else ("fp32",), range(1, T), tmp, s, peak)
        rows += batch_size_effect(mini_cls, data, tmp, s, peak)
        t1000, t1000_info = top1000_rows(mini_cls, mini_twin, data, s, tmp, peak)
        rows += t1000
        ce = cross_encoder_compare(ce_path, data, s)
        encode = sentence_transformers_encode_compare(minilm, data, s, tmp)
        rows += int8_rows(ce_path, minilm, data, s, tmp, peak, peak_int8)
        storage = storage_rows(mini_cls, data, s, tmp, (3, 5) if not s.quick else (3,))
        bd = breakdown(mini_cls, mini_twin, data, tmp, s.repeats)

        bert_cls = SplitRanker.from_pretrained(bert_path, split=0, **lengths)
        bert_twin = SplitRanker.from_pretrained(bert_path, split=12, head="twin", pooling="mean", crossing="cosine", **lengths)
        bq = pick_queries(data, s.bert_queries)
        rows += split_sweep("BERT-base-random", bert_cls, bert_twin, data, bq, bq, s.bert_splits,
                            lambda L: ("fp16",), (11,), tmp, s, peak)
        # The split sweeps and the peers again in each other precision, bounds against that precision's peak.
        precisions: dict[str, dict] = {}
        for dtype in (d for d in args.dtypes if d != "fp32"):
            low_peak = matmul_peak(repeats=peak_repeats, dtype=TORCH_DTYPES[dtype])
            log(f"{dtype} matmul peak {low_peak / 1e9:.1f} GFLOP/s")
            low = dict(lengths, dtype=dtype)
            rows += split_sweep("MiniLM-L6", SplitRanker.from_pretrained(ce_path, split=0, **low),
                                SplitRanker.from_pretrained(minilm, split=6, **low), data,
                                pick_queries(data, s.minilm_queries), pick_queries(data, s.minilm_slow_queries),
                                range(T + 1), lambda L: ("fp16",), range(1, T), tmp, s, low_peak)
            rows += split_sweep("BERT-base-random", SplitRanker.from_pretrained(bert_path, split=0, **low),
                                SplitRanker.from_pretrained(bert_path, split=12, head="twin", pooling="mean",
                                                            crossing="cosine", **low),
                                data, bq, bq, s.bert_splits, lambda L: ("fp16",), (11,), tmp, s, low_peak)
            precisions[dtype] = {"matmul_peak_gflops": low_peak / 1e9,
                                 "cross_encoder": cross_encoder_compare(ce_path, data, s, dtype),
                                 "sentence_transformers_encode": sentence_transformers_encode_compare(minilm, data, s, tmp,
                                                                                                      dtype)}
        families = None
        if args.families:
            from family_latency import family_rows

            family_table, families = family_rows(data, s, tmp, peak, minilm)
            rows += family_table
        # The machine is shared: take the better of two peak measurements (start and end of the run).
        peak_end = max(matmul_peak(repeats=peak_repeats), linear_peak(repeats=peak_repeats))
        log(f"matmul peak at the end {peak_end / 1e9:.1f} GFLOP/s")
        if peak_end > peak:
            for r in (r for r in rows if "int8" not in r.model and r.dtype == "fp32"):  # int8 and bf16 keep theirs
                scale = peak_end / peak
                r.flop_bound_ms /= scale
                r.ratio *= scale
                r.ratio_padded *= scale
                if r.roofline_ms is not None:  # the memory term is unchanged; the FLOP term shrinks
                    flop_s = r.gflops * 1e9 / peak_end
                    r.roofline_ms = max(flop_s, r.mbytes * 1e6 / MACHINE["bandwidth"]) * 1e3
                    r.ratio_roofline = r.mean_ms / r.roofline_ms

        result = {
            "meta": {"seed": s.seed, "torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "sentence_transformers": __import__("sentence_transformers").__version__,
                     "python": sys.version.split()[0], "platform": platform.platform(), "threads": torch.get_num_threads(),
                     "cpu_count": os.cpu_count(), "matmul_peak_gflops": max(peak, peak_end) / 1e9,
                     "memory_bandwidth_gbps": MACHINE["bandwidth"] / 1e9, "last_level_cache_bytes": MACHINE["last_level_cache"],
                     "roofline": "max(FLOPs / matmul peak of the row's precision, bytes moved / measured copy bandwidth); "
                                 "bytes: the query side's layer weights once, the joint layers' weights once per batch "
                                 "unless they fit in the last-level cache, and the candidates' cached representations",
                     "dtypes": args.dtypes, "cpu_bf16_flags": sorted(f for f in read_cpu_flags()
                                                                     if f in ("amx_bf16", "avx512_bf16")),
                     "matmul_peak_start_end_gflops": [peak / 1e9, peak_end / 1e9], "matmul_peak_repeats": peak_repeats,
                     "peak": "fp32: the better of torch.mm and the packed Linear kernel (2048^2); int8 rows: the "
                             "dynamic int8 Linear kernel (2048^2); int8-except-ffn-output rows: the feed-forward "
                             "output projections' share of the Linear work at the fp32 peak, the rest at the int8 one",
                     "quick": s.quick, "settings": s.__dict__, "max_query_length": MAX_Q, "max_doc_length": MAX_D,
                     "models": {"MiniLM-L6": {"cls (L<T)": f"{MINILM} + seeded 1-label classifier (torch.manual_seed(1234), "
                                                          "weight ~ N(0, 0.5), bias 0.1), saved by transformers",
                                              "twin (L=T)": f"{MINILM} sentence-transformers folder: mean pooling, cosine, "
                                                            "layout separate"},
                                "BERT-base-random": {"config": "BertConfig(hidden 768, 12 layers, 12 heads, intermediate 3072, "
                                                               "max positions 512, num_labels 1), random weights "
                                                               f"(torch.manual_seed({s.seed})), MiniLM tokenizer",
                                                     "twin (L=T)": "same weights, new twin head (mean, cosine)"}},
                     "layouts": "L=0 packed, 0<L<T offset (PreTTR), L=T separate (defaults)",
                     "dataset": DATASET, "LATEINT_DATA": os.environ["LATEINT_DATA"],
                     "timing": "per query: best of `repeats` passes (a pass stops the row's repeats once its mean "
                               f"exceeds {s.slow_repeat_seconds} s/query); warm-up rerank on 8 candidates first"},
            "rows": [r.__dict__ for r in rows],
            "top1000": t1000_info,
            "cross_encoder": ce,
            "storage": storage,
            "breakdown": bd,
            "sentence_transformers_encode": encode,
            "precisions": precisions,
            "families": families,
            "int8_effectiveness": int8_effectiveness(minilm, tmp, s.effectiveness_splits,
                                                     args.out / "rerank_latency_runs"),
        }
        result["meta"]["int8_linear_peak_gflops"] = peak_int8 / 1e9
        if args.before is not None:
            result["before"] = before_rows(json.loads(args.before.read_text()), result, args.before)
        result["meta"]["wall_seconds"] = time.perf_counter() - wall
        result["targets"] = evaluate_targets(result)
        args.out.mkdir(parents=True, exist_ok=True)
        md = render_markdown(result)
        (args.out / "rerank_latency.json").write_text(json.dumps(result, indent=2, default=str))
        (args.out / "rerank_latency.md").write_text(md)
        print(json.dumps(result, indent=2, default=str))
        print(md)
        for t in result["targets"]:
            print(f"{'MET' if t['met'] else 'NOT MET'}: {t['target']}: {t['measured']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

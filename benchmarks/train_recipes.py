"""Training recipes for split rankers, end to end on CPU: TREC DL 2019 cross-validation, SciFact,
and distillation into shallower students.

1. ``dl19``: 5-fold cross-validation over the 43 judged DL19 queries (``kfold`` with the seed).
   For every split L of ``--splits`` a per-L model starts from the packaged all-MiniLM-L6-v2 (with
   ``--head twin``, the default, the checkpoint's own twin head (mean, cosine) at every L, read after
   the joint layers at L < T; with ``--head cls`` a new ``cls`` head at L < T), is trained on the
   four training folds (listwise CE, 1 positive + 7 negatives from the BM25 top-100) and re-ranks
   the held-out fold's BM25 top-100; the fold runs are merged into one test run per L. A "dial"
   model (twin head, split sampled per batch from ``--splits``) is trained once per fold and
   evaluated at every L. Everything is evaluated against BM25 and the zero-shot twin (L = T, no
   training), with Holm-corrected paired t-tests against each; the untrained twin read at each
   L < T ("zero-shot L=x") shows what training adds at that depth.
2. ``scifact``: first stage = the zero-shot twin's own full retrieval over the 5,183 SciFact
   documents (top 100); per-L models trained on ``beir/scifact/train`` (negatives from that first
   stage), evaluated on ``beir/scifact/test`` (re-ranking that first stage's top ``--scifact-depth``),
   beside the untrained twin read at each L < T.
3. ``distill``: a DL19 L = 0 model of fold 0 (6 layers, full interaction, ``--teacher-steps``) is the teacher
   of 3-layer students (every other layer) at L in {0, 1, 2, 3}, trained with margin-MSE on the teacher's scores
   plus listwise CE (``--tinybert`` adds TinyBERT intermediate losses); reported: effectiveness
   kept (student / teacher nDCG@10 on fold 0's held-out queries) vs the measured speed-up of the
   per-query re-rank time over the teacher.

Results: one JSON per experiment (``dl19.json``, ``scifact.json``, ``distill.json``) and
``summary.md`` in ``--out``. Resumable: a model/fold already recorded in the JSON is skipped, the
trainer resumes from its checkpoints and run files resume query by query. Trained weights are
deleted once a fold is recorded (``--keep-models`` keeps them), except the distillation teacher.

Usage::

    python benchmarks/train_recipes.py [--smoke] [--only dl19|scifact|distill] [--out DIR]
        [--steps N] [--scifact-steps N] [--splits 0,2,4,5,6] [--folds K] [--run-folds 0,1]
        [--scifact-test-queries N] [--scifact-depth N] [--scifact-splits 0,2,4,5,6] [--head twin|cls]
        [--tinybert] [--threads N] [--seed S] [--keep-models]

``--smoke`` runs a few steps on one fold, two splits and a handful of queries (results go to
``benchmarks/results/training-smoke`` unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DL19 = "msmarco-passage/trec-dl-2019/judged"
SCIFACT_TRAIN = "beir/scifact/train"
SCIFACT_TEST = "beir/scifact/test"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
REFERENCE = {"BM25": 0.506, "twin zero-shot": 0.639}  # DL19 nDCG@10 of the bm25 run and of the default sweep at L = 6

import local_data  # noqa: E402,F401  (sets the data environment before lateint imports ir_datasets)

from lateint import SplitRanker  # noqa: E402
from lateint.checkpoints import resolve  # noqa: E402
from lateint.data import load_dataset, read_run, write_run  # noqa: E402
from lateint.evaluation import evaluate  # noqa: E402
from lateint.pipeline.rerank_run import rerank_dataset  # noqa: E402
from lateint.training.config import (  # noqa: E402
    CheckpointSettings,
    DataSettings,
    DialSettings,
    DistillSettings,
    LossSettings,
    OptimSettings,
    TrainConfig,
)
from lateint.training.groups import build_groups, judged_query_ids, kfold  # noqa: E402
from lateint.training.crossval import cross_validate  # noqa: E402
from lateint.training.trainer import Trainer  # noqa: E402

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {msg}", flush=True)


# ------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    smoke: bool
    seed: int
    threads: int
    out: str
    splits: list[int]
    folds: int  # k of the cross-validation
    run_folds: list[int]  # which folds are run (all by default)
    steps: int
    dial_steps: int
    scifact_steps: int
    distill_steps: int
    teacher_steps: int = 200
    teacher: str = ""  # a cross-encoder checkpoint to distil from instead of training one
    head: str = "twin"  # the per-L models' head at L < T: the checkpoint's twin head, or a new cls head
    scifact_splits: list[int] = field(default_factory=lambda: [0, 2, 4, 5, 6])
    scifact_depth: int = 50
    batch_size: int = 4
    negatives: int = 7
    depth: int = 100
    lr: float = 3e-5
    head_lr: float = 1e-3  # the fresh cls head learns faster than the pretrained encoder
    max_query_length: int = 32
    max_doc_length: int = 128
    dl19_max_positives: int = 16  # per query, so that queries with many positives do not dominate
    test_queries_per_fold: int = 0  # 0: all
    scifact_max_query_length: int = 48
    scifact_max_doc_length: int = 128
    scifact_retrieval_doc_length: int = 256  # the twin's own max_seq_length for the first stage
    scifact_train_queries: int = 0  # 0: all
    scifact_test_queries: int = 100  # a seeded sample of the 300 (0: all)
    scifact_corpus_limit: int = 0  # 0: the whole corpus (smoke: a subset around the judged docs)
    distill_splits: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    distill_train_queries: int = 0
    tinybert: bool = False
    keep_models: bool = False
    checkpoint_every: int = 20

    def key(self, *parts: Any) -> str:
        """A short tag of the settings that change a trained model, used in folder names."""
        return "-".join(str(p) for p in parts)


def make_settings(args: argparse.Namespace) -> Settings:
    smoke = args.smoke
    splits = [int(s) for s in args.splits.split(",")] if args.splits else ([0, 6] if smoke else [0, 2, 4, 5, 6])
    folds = args.folds or 5
    if args.run_folds:
        run_folds = [int(f) for f in args.run_folds.split(",")]
    else:
        run_folds = [0] if smoke else list(range(folds))
    steps = args.steps or (2 if smoke else 40)
    out = args.out or str(REPO / "benchmarks" / "results" / ("training-smoke" if smoke else "training"))
    s = Settings(
        smoke=smoke, seed=args.seed, threads=args.threads, out=out, splits=sorted(set(splits)), folds=folds,
        run_folds=run_folds, steps=steps, dial_steps=args.dial_steps or steps,
        scifact_steps=args.scifact_steps or (2 if smoke else 30),
        distill_steps=args.distill_steps or steps, teacher_steps=args.teacher_steps or (2 if smoke else 200),
        tinybert=args.tinybert, keep_models=args.keep_models,
        head=args.head, teacher=args.teacher,
    )
    if args.scifact_splits:
        s.scifact_splits = sorted({int(x) for x in args.scifact_splits.split(",")})
    elif smoke:
        s.scifact_splits = list(s.splits)
    if args.scifact_depth:
        s.scifact_depth = args.scifact_depth
    if args.scifact_test_queries is not None:
        s.scifact_test_queries = args.scifact_test_queries
    if smoke:
        s.test_queries_per_fold = 3
        s.scifact_train_queries = 24
        s.scifact_test_queries = 3 if args.scifact_test_queries is None else args.scifact_test_queries
        s.scifact_corpus_limit = 600
        s.distill_splits = [0, 2]
        s.distill_train_queries = 4
        s.checkpoint_every = 0
    return s


# ------------------------------------------------------------------------------------- records
class Records:
    """One experiment's JSON file: settings, records keyed by name, written atomically."""

    def __init__(self, path: Path, settings: dict[str, Any]):
        self.path = path
        self.data: dict[str, Any] = {"settings": settings, "records": {}}
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            self.data["records"] = old.get("records", {})
            for k, v in old.items():
                if k not in ("settings", "records"):
                    self.data[k] = v

    def get(self, key: str, fingerprint: str) -> dict | None:
        rec = self.data["records"].get(key)
        return rec if rec is not None and rec.get("fingerprint") == fingerprint else None

    def put(self, key: str, fingerprint: str, record: dict) -> None:
        self.data["records"][key] = {"fingerprint": fingerprint, **record}
        self.save()

    def set(self, name: str, value: Any) -> None:
        self.data[name] = value
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.part")
        tmp.write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, self.path)


def fingerprint(obj: Any) -> str:
    """A short hash of what determines a record, the same wherever the repository and the
    packaged model are installed (paths are hashed relative to them)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    for place, name in ((str(resolve(MINILM)), MINILM), (str(REPO), "<repo>")):
        text = text.replace(json.dumps(place)[1:-1], name)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def step_seconds(loss_log: Path) -> dict[str, float | None]:
    """Per-step time from the trainer's loss log (the first step, with its warm-up, left out)."""
    rows = [json.loads(line) for line in loss_log.read_text().splitlines() if line.strip()] if loss_log.is_file() else []
    if len(rows) >= 2:
        per = (rows[-1]["seconds"] - rows[0]["seconds"]) / (rows[-1]["step"] - rows[0]["step"])
    elif rows:
        per = rows[0]["seconds"] / rows[0]["step"]
    else:
        per = None
    return {"seconds_per_step": per, "first_step_seconds": rows[0]["seconds"] if rows else None}


def train(config: TrainConfig, groups) -> tuple[Any, dict]:
    t = time.perf_counter()
    result = Trainer(config, groups).train(resume=True)
    info = {
        "steps": result.steps, "resumed_from": result.resumed_from, "final_loss": result.final_loss,
        "seeds": result.seeds, "groups": result.groups, "train_seconds": result.seconds,
        "wall_seconds": time.perf_counter() - t, **step_seconds(result.loss_log),
        "output": str(result.output),
    }
    return result, info


def drop_weights(output: Path) -> None:
    """Delete a finished run's model and checkpoints (the logs, config and result stay)."""
    for name in ("final", "best", "checkpoints"):
        shutil.rmtree(output / name, ignore_errors=True)


def rerank(ranker, dataset, candidates, out: Path, tag: str) -> dict:
    report = rerank_dataset(ranker, dataset, candidates, out, tag=tag, storage="fp32", progress=False,
                            cache_root=out.parent / (out.name + ".caches"))
    shutil.rmtree(out.parent / (out.name + ".caches"), ignore_errors=True)
    d = report.to_dict()
    return {k: d[k] for k in ("run_path", "queries", "scored_now", "latencies_ms", "mean_latency_ms",
                              "median_latency_ms", "cache_build_seconds", "candidates_per_query")}


def base_config(s: Settings, *, model: str, split: int, output: Path, steps: int, seed: int, **kw) -> TrainConfig:
    data = kw.pop("data")
    return TrainConfig(
        model=model, split=split, seed=seed, steps=steps, batch_size=s.batch_size, device="cpu",
        output=str(output), progress=False, optim=OptimSettings(lr=s.lr, head_lr=s.head_lr), data=data,
        checkpoint=CheckpointSettings(every=s.checkpoint_every, keep_last=1), **kw,
    )


def mean_or_nan(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(values) if values else float("nan")


def gain_table(qrels, runs: dict[str, Any], splits: list[int], level: int, untrained: dict[int, str],
               trained: dict[str, dict[int, str]]) -> tuple[str, dict]:
    """What training adds at each depth: nDCG@10 of the untrained model at L and of each trained
    model at the same L, with the paired t-test of each against the untrained one (``ranx``),
    Holm-corrected over the whole table. Returns the Markdown table and its figures."""
    from lateint.evaluation.significance import adjust_p_values

    rows, tests = [], []
    for L in splits:
        base = untrained.get(L)
        if base is None or base not in runs:
            continue
        names = {kind: by_split[L] for kind, by_split in trained.items() if by_split.get(L) in runs}
        ev = evaluate(qrels, {base: runs[base], **{n: runs[n] for n in names.values()}}, ["nDCG@10"],
                      baseline=base, relevance_level=level, correction="none")
        row = {"L": L, "untrained": ev.means[base]["nDCG@10"]}
        for kind, name in names.items():
            c = ev.comparisons[name]["nDCG@10"]
            row[kind] = {"nDCG@10": ev.means[name]["nDCG@10"], "gain": c.difference, "p": c.p_value}
            tests.append((row, kind))
        rows.append(row)
    for (row, kind), p_adj in zip(tests, adjust_p_values([r[k]["p"] for r, k in tests], "holm")):
        row[kind]["p_holm"] = p_adj
    kinds = list(trained)
    md = ["| L | untrained | " + " | ".join(f"{k} | gain (Holm p)" for k in kinds) + " |",
          "|---:|---:|" + "---:|---:|" * len(kinds)]
    for row in rows:
        cells = [f"{row['L']}", f"{row['untrained']:.4f}"]
        for k in kinds:
            r = row.get(k)
            cells += [f"{r['nDCG@10']:.4f}", f"{r['gain']:+.4f} ({r['p_holm']:.3f})"] if r else ["–", "–"]
        md.append("| " + " | ".join(cells) + " |")
    md += ["", f"Paired two-sided t-tests on nDCG@10 against the untrained model at the same L, Holm-corrected "
           f"over the {len(tests)} tests of this table."]
    return "\n".join(md), {"rows": rows, "tests": len(tests)}


def per_l_head(s: Settings, L: int, T: int) -> str | None:
    """A per-L model's head: None keeps the checkpoint's twin head (mean, cosine); with
    ``--head cls`` a new ``cls`` head at L < T."""
    return "cls" if L < T and s.head == "cls" else None


def untrained_at_splits(rec: Records, tag: str, fp_tag: str, model: str, splits: list[int],
                        lengths: tuple[int, int], dataset, candidates, runs_dir: Path, fp_parts: list) -> None:
    """Re-rank ``candidates`` with the untrained ``model`` read at each split of ``splits``,
    recorded as ``zeroshot-L<split>`` under a fingerprint of ``fp_tag``, the split, the lengths and
    ``fp_parts`` (skipped where already recorded)."""
    for L in splits:
        fp = fingerprint([fp_tag, L, *lengths, *fp_parts])
        if rec.get(f"zeroshot-L{L}", fp) is None:
            ranker = SplitRanker.from_pretrained(model, split=L, max_query_length=lengths[0], max_doc_length=lengths[1])
            info = rerank(ranker, dataset, candidates, runs_dir / f"zeroshot-L{L}-{fp}.trec", f"{tag}-zs-L{L}")
            rec.put(f"zeroshot-L{L}", fp, {"split": L, "rerank": info})
            log(f"{tag}: zero-shot twin at L={L} re-ranked {info['queries']} queries, "
                f"mean {info['mean_latency_ms']:.0f} ms/query")
            del ranker


# ------------------------------------------------------------------------------------------ DL19
class DL19Experiment:
    def __init__(self, s: Settings):
        self.s = s
        self.ds = load_dataset(DL19)
        self.queries = self.ds.queries()
        self.qrels = self.ds.qrels()
        self.level = self.ds.official_relevance_level
        self.qids = judged_query_ids(self.queries, self.qrels)
        self.bm25 = self.ds.candidates("bm25", s.depth)
        self.splits = kfold(self.qids, s.folds, s.seed)
        # The local DL19 collection is the subset of passages the first-stage runs retrieved, so
        # some judged positives have no text: training draws positives from the subset only.
        have = {d.doc_id for d in self.ds.dataset.docs_iter()}
        self.train_qrels = {q: {d: g for d, g in docs.items() if d in have} for q, docs in self.qrels.items()}
        self.dropped_positives = sum(1 for docs in self.qrels.values() for d, g in docs.items()
                                     if g >= self.level and d not in have)
        self.minilm = str(resolve(MINILM))
        self.T = 6

    def test_qids(self, fold: int) -> list[str]:
        test = self.splits[fold][1]
        if self.s.test_queries_per_fold:
            test = test[: self.s.test_queries_per_fold]
        return test

    def groups(self, fold: int, max_queries: int = 0):
        s = self.s
        train_qids = self.splits[fold][0]
        if max_queries and len(train_qids) > max_queries:
            train_qids = sorted(random.Random(f"queries:{s.seed}").sample(train_qids, max_queries))
        return build_groups(
            self.queries, self.train_qrels, self.bm25, self.ds.doc_text, negatives=s.negatives, depth=s.depth,
            min_relevance=self.level, max_positives=s.dl19_max_positives, qids=train_qids, seed=s.seed,
        )

    def data_settings(self, fold: int, max_queries: int = 0) -> DataSettings:
        s = self.s
        return DataSettings(
            dataset=DL19, run="bm25", depth=s.depth, negatives=s.negatives, min_relevance=self.level,
            max_positives=s.dl19_max_positives, max_queries=max_queries, folds=s.folds, fold=fold,
            max_query_length=s.max_query_length, max_doc_length=s.max_doc_length,
        )

    def model_config(self, L: int, root: Path, steps: int | None = None, fold: int = 0) -> TrainConfig:
        """A per-L model's config; cross-validation trains it once per fold (``fold`` picks one)."""
        s = self.s
        steps = steps or s.steps
        key = s.key(f"L{L}", self.head_name(L), f"{s.folds}folds", f"s{steps}", f"seed{s.seed}")
        return base_config(
            s, model=self.minilm, split=L, head=self.head(L), output=root / "models" / "dl19" / key,
            steps=steps, seed=s.seed, data=self.data_settings(fold),
        )

    def dial_config(self, root: Path) -> TrainConfig:
        s = self.s
        key = s.key("dial", "_".join(map(str, s.splits)), f"{s.folds}folds", f"s{s.dial_steps}", f"seed{s.seed}")
        return base_config(
            s, model=self.minilm, split=self.T, head=None, output=root / "models" / "dl19" / key,
            steps=s.dial_steps, seed=s.seed, data=self.data_settings(0),
            dial=DialSettings(enabled=True, splits=list(s.splits)),
        )

    def head(self, L: int) -> str | None:
        return per_l_head(self.s, L, self.T)

    def head_name(self, L: int) -> str:
        return self.head(L) or "twin"

    def candidates(self, qids: list[str]):
        return {q: self.bm25[q] for q in qids if q in self.bm25}

    def load(self, path: Path | str, split: int | None = None) -> SplitRanker:
        r = SplitRanker.from_pretrained(path, max_query_length=self.s.max_query_length,
                                        max_doc_length=self.s.max_doc_length)
        if split is not None and split != r.split:
            r = r.at(split)
        return r


def run_dl19(s: Settings, root: Path) -> dict:
    exp = DL19Experiment(s)
    settings = asdict(s)
    rec = Records(root / "dl19.json", settings)
    runs_dir = root / "runs" / "dl19"
    evaluated: list[str] = sorted(q for f in s.run_folds for q in exp.test_qids(f))
    log(f"dl19: {len(exp.qids)} queries, {s.folds} folds (running {s.run_folds}), splits {s.splits}, "
        f"{len(evaluated)} test queries evaluated; {exp.dropped_positives} judged positives lack a text "
        "in the local subset and are not used for training")
    rec.set("folds", {str(f): {"train": exp.splits[f][0], "test": exp.splits[f][1]} for f in range(s.folds)})

    # zero-shot twin at L = T on every evaluated query
    fp = fingerprint(["twin-zs", s.max_query_length, s.max_doc_length, evaluated])
    if rec.get("twin-zeroshot", fp) is None:
        ranker = exp.load(exp.minilm)
        info = rerank(ranker, exp.ds, exp.candidates(evaluated), runs_dir / f"twin-zeroshot-{fp}.trec", "twin-zeroshot")
        rec.put("twin-zeroshot", fp, {"rerank": info})
        log(f"dl19: zero-shot twin re-ranked {info['scored_now']} queries, mean {info['mean_latency_ms']:.0f} ms/query")
    # the same untrained twin read after the joint layers at each L < T: what training adds at that L
    untrained_at_splits(rec, "dl19", "twin-zs-at-L", exp.minilm, [x for x in s.splits if x < exp.T],
                        (s.max_query_length, s.max_doc_length), exp.ds, exp.candidates(evaluated), runs_dir,
                        [evaluated])
    torch.manual_seed(s.seed)

    # per-L models and the dial model, each cross-validated over the folds by the package
    def cross_validated(key: str, config: TrainConfig) -> dict:
        fp = fingerprint([config.to_dict(), s.run_folds, s.test_queries_per_fold])
        done = rec.get(key, fp)
        if done is not None:
            log(f"dl19: {key} already recorded, skipped")
            return done
        log(f"dl19: {key}: cross-validating folds {s.run_folds}, {config.steps} steps each")
        cv = cross_validate(config, Path(config.output), depth=s.depth, storage="fp32", evaluate_runs=False,
                            progress=False, folds=s.run_folds, max_test_queries=s.test_queries_per_fold)
        folds = []
        for f in cv.folds:
            info = {**{k: f.train[k] for k in ("steps", "resumed_from", "final_loss", "seeds", "groups")},
                    "train_seconds": f.train["seconds"], **step_seconds(Path(f.train["loss_log"])),
                    "output": f.train["output"]}
            folds.append({"fold": f.fold, "train": info, "test_qids": f.test_qids,
                          "latencies_ms": {str(L): v for L, v in f.latencies_ms.items()}})
            if not s.keep_models and not (key == "L0" and f.fold == 0):
                drop_weights(Path(f.train["output"]))
        record = {"runs": {str(L): str(p) for L, p in cv.runs.items()}, "folds": folds}
        rec.put(key, fp, record)
        return rec.get(key, fp)

    for L in s.splits:
        cross_validated(f"L{L}", exp.model_config(L, root))
    dial = cross_validated("dial", exp.dial_config(root))
    split_counts: dict[str, int] = {}
    for f in dial["folds"]:
        loss_log = Path(f["train"]["output"]) / "loss_log.jsonl"
        for line in loss_log.read_text().splitlines() if loss_log.is_file() else []:
            sp = str(json.loads(line)["split"])
            split_counts[sp] = split_counts.get(sp, 0) + 1
    rec.set("dial_steps_per_split", split_counts)

    # merge the fold runs and evaluate
    records = rec.data["records"]
    runs: dict[str, Any] = {"BM25": {q: dict(exp.bm25[q]) for q in evaluated}}
    runs["twin zero-shot (L=6)"] = read_run(records["twin-zeroshot"]["rerank"]["run_path"])
    for L in s.splits:
        if f"zeroshot-L{L}" in records:
            runs[f"zero-shot L={L}"] = read_run(records[f"zeroshot-L{L}"]["rerank"]["run_path"])
    for L in s.splits:
        runs[f"per-L L={L} ({exp.head_name(L)})"] = read_run(records[f"L{L}"]["runs"][str(L)])
        runs[f"dial L={L}"] = read_run(records["dial"]["runs"][str(L)])
    qrels = {q: exp.qrels[q] for q in evaluated}
    evals = {}
    for baseline in ("BM25", "twin zero-shot (L=6)"):
        evals[baseline] = evaluate(qrels, runs, baseline=baseline, relevance_level=exp.level, correction="holm")
    latency = {}
    for name, key, L in [(f"per-L L={L}", f"L{L}", L) for L in s.splits] + [(f"dial L={L}", "dial", L) for L in s.splits]:
        lat = [x for f in records[key]["folds"] for x in f["latencies_ms"].get(str(L), [])]
        latency[name] = statistics.median(lat) if lat else None
    step_times = [f["train"]["seconds_per_step"] for k, r in records.items() for f in r.get("folds", [])
                  if f["train"].get("seconds_per_step")]
    untrained = {L: f"zero-shot L={L}" for L in s.splits}
    untrained[exp.T] = "twin zero-shot (L=6)"
    gains_md, gains = gain_table(qrels, runs, s.splits, exp.level, untrained, {
        "per-L": {L: f"per-L L={L} ({exp.head_name(L)})" for L in s.splits},
        "dial": {L: f"dial L={L}" for L in s.splits}})
    rec.set("gains_over_untrained", gains)
    rec.set("evaluation", {b: e.to_dict() for b, e in evals.items()})
    rec.set("median_latency_ms", latency)
    rec.set("mean_seconds_per_step", mean_or_nan(step_times))
    md = [f"## TREC DL 2019: {s.folds}-fold cross-validation, BM25 top-{s.depth} re-ranked",
          "",
          f"{len(evaluated)} test queries (folds {s.run_folds}); {s.steps} steps x {s.batch_size} groups "
          f"(1 positive + {s.negatives} negatives), lr {s.lr}, lengths {s.max_query_length}/{s.max_doc_length}, "
          f"seed {s.seed}. Reference nDCG@10 (the bm25 run; the default sweep at L = 6): BM25 {REFERENCE['BM25']}, zero-shot twin "
          f"{REFERENCE['twin zero-shot']}. Mean training step time: {mean_or_nan(step_times):.2f} s.",
          ""]
    md += ["### What training adds at each depth", "", gains_md, ""]
    for b, e in evals.items():
        md += [f"### Significance against {b}", "", e.to_markdown()]
    md += ["Median per-query re-rank time (ms): " + ", ".join(
        f"{k}: {v:.0f}" for k, v in latency.items() if v is not None), ""]
    return {"markdown": "\n".join(md), "means": evals["BM25"].means}


# --------------------------------------------------------------------------------------- SciFact
def scifact_first_stage(s: Settings, root: Path, train_ds, test_ds, rec: Records) -> tuple[dict, dict, dict]:
    """The zero-shot twin's full retrieval (top ``depth``) for the train and test queries."""
    folder = root / "firststage"
    tag = f"twin-top{s.depth}-d{s.scifact_retrieval_doc_length}-c{s.scifact_corpus_limit}-seed{s.seed}"
    paths = {n: folder / f"scifact-{n}-{tag}.trec" for n in ("train", "test")}
    info_key = "first-stage"
    fp = fingerprint([tag, s.scifact_train_queries, s.scifact_test_queries])
    train_q, test_q = select_scifact_queries(s, train_ds, test_ds)
    if rec.get(info_key, fp) is not None and all(p.is_file() for p in paths.values()):
        return read_run(paths["train"]), read_run(paths["test"]), rec.get(info_key, fp)
    ranker = SplitRanker.from_pretrained(MINILM, max_query_length=s.scifact_max_query_length,
                                        max_doc_length=s.scifact_retrieval_doc_length)
    store_ds = test_ds
    doc_ids = [d.doc_id for d in store_ds.dataset.docs_iter()]
    if s.scifact_corpus_limit and len(doc_ids) > s.scifact_corpus_limit:
        # smoke: the judged documents of the chosen queries plus a seeded sample of the rest
        judged = {d for qr in (train_ds.qrels(), test_ds.qrels()) for q, docs in qr.items()
                  if q in train_q or q in test_q for d in docs}
        rest = sorted(set(doc_ids) - judged)
        doc_ids = sorted(judged | set(random.Random(s.seed).sample(rest, max(0, s.scifact_corpus_limit - len(judged)))))
    texts = store_ds.doc_text(doc_ids)
    t = time.perf_counter()
    sides = ranker.doc_sides([texts[d] for d in doc_ids])
    order = sorted(range(len(doc_ids)), key=lambda i: len(sides[i]))
    vecs = torch.empty(len(doc_ids), ranker.encoder.hidden_size)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            rep = ranker.represent_docs([sides[i] for i in idx]).values.float()
            vecs[idx] = torch.nn.functional.normalize(rep, dim=-1)
    enc_seconds = time.perf_counter() - t
    log(f"scifact: encoded {len(doc_ids)} documents in {enc_seconds:.0f} s ({len(doc_ids) / enc_seconds:.0f} docs/s)")
    out = {}
    for name, queries in (("train", train_q), ("test", test_q)):
        qids = sorted(queries)
        with torch.inference_mode():
            q = torch.nn.functional.normalize(
                ranker.represent_queries(ranker.query_sides([queries[x] for x in qids])).values.float(), dim=-1)
        scores = q @ vecs.T
        top = torch.topk(scores, min(s.depth, len(doc_ids)), dim=1)
        run = {qid: {doc_ids[j]: float(v) for v, j in zip(top.values[i].tolist(), top.indices[i].tolist())}
               for i, qid in enumerate(qids)}
        write_run(run, paths[name], "twin-zeroshot-full")
        out[name] = run
    info = {"docs": len(doc_ids), "encode_seconds": enc_seconds, "paths": {k: str(v) for k, v in paths.items()}}
    rec.put(info_key, fp, info)
    return out["train"], out["test"], info


def select_scifact_queries(s: Settings, train_ds, test_ds) -> tuple[dict[str, str], dict[str, str]]:
    def pick(ds, limit, salt):
        queries, qrels = ds.queries(), ds.qrels()
        qids = judged_query_ids(queries, qrels)
        if limit and len(qids) > limit:
            qids = sorted(random.Random(f"{salt}:{s.seed}").sample(qids, limit))
        return {q: queries[q] for q in qids}

    return pick(train_ds, s.scifact_train_queries, "train"), pick(test_ds, s.scifact_test_queries, "test")


def run_scifact(s: Settings, root: Path) -> dict:
    train_ds, test_ds = load_dataset(SCIFACT_TRAIN), load_dataset(SCIFACT_TEST)
    rec = Records(root / "scifact.json", asdict(s))
    train_q, test_q = select_scifact_queries(s, train_ds, test_ds)
    train_run, test_run, fs_info = scifact_first_stage(s, root, train_ds, test_ds, rec)
    log(f"scifact: {len(train_q)} training queries, {len(test_q)} test queries, first stage over {fs_info['docs']} docs")
    from lateint.data import rank_run

    train_c, test_c = rank_run(train_run, s.depth), rank_run(test_run, s.scifact_depth)
    T, minilm = 6, str(resolve(MINILM))
    groups = None
    runs_dir = root / "runs" / "scifact"

    def head(L: int) -> str | None:
        return per_l_head(s, L, T)

    for L in s.scifact_splits:
        key = f"L{L}"
        out = root / "models" / "scifact" / s.key(f"L{L}", head(L) or "twin", f"s{s.scifact_steps}", f"seed{s.seed}")
        config = base_config(
            s, model=minilm, split=L, head=head(L), output=out, steps=s.scifact_steps, seed=s.seed,
            data=DataSettings(dataset=SCIFACT_TRAIN, run=fs_info["paths"]["train"], depth=s.depth,
                              negatives=s.negatives, min_relevance=1, max_query_length=s.scifact_max_query_length,
                              max_doc_length=s.scifact_max_doc_length),
        )
        fp = fingerprint([config.to_dict(), sorted(test_q), sorted(train_q), s.scifact_depth])
        if rec.get(key, fp) is not None:
            log(f"scifact: {key} already recorded, skipped")
            continue
        if groups is None:
            groups = build_groups(train_q, train_ds.qrels(), train_c, train_ds.doc_text, negatives=s.negatives,
                                  depth=s.depth, min_relevance=1, qids=sorted(train_q), seed=s.seed)
        log(f"scifact: {key}: training {config.steps} steps on {len(groups)} groups")
        result, info = train(config, groups)
        ranker = SplitRanker.from_pretrained(result.model_path)
        rr = rerank(ranker, test_ds, test_c, runs_dir / f"{out.name}.trec", f"scifact-L{L}")
        rec.put(key, fp, {"split": L, "train": info, "rerank": rr})
        log(f"scifact: {key}: {info['seconds_per_step'] or float('nan'):.2f} s/step; re-ranked {rr['queries']} queries, "
            f"mean {rr['mean_latency_ms']:.0f} ms/query")
        if not s.keep_models:
            drop_weights(out)
        del ranker
    # the untrained twin read after the joint layers at each L < T, with the re-rankers' lengths
    untrained_at_splits(rec, "scifact", "scifact-zs-at-L", minilm, [x for x in s.scifact_splits if x < T],
                        (s.scifact_max_query_length, s.scifact_max_doc_length), test_ds, test_c, runs_dir,
                        [sorted(test_q), s.scifact_depth])
    records = rec.data["records"]
    # the first stage cut to the depth the re-rankers see, so that every run has the same candidates
    runs: dict[str, Any] = {f"twin zero-shot full retrieval (top {s.scifact_depth})": {
        q: dict(docs) for q, docs in rank_run(test_run, s.scifact_depth).items()}}
    for L in s.scifact_splits:
        if f"zeroshot-L{L}" in records:
            runs[f"zero-shot L={L}"] = read_run(records[f"zeroshot-L{L}"]["rerank"]["run_path"])
    for L in s.scifact_splits:
        if f"L{L}" in records:
            runs[f"per-L L={L} ({head(L) or 'twin'})"] = read_run(records[f"L{L}"]["rerank"]["run_path"])
    qrels = {q: d for q, d in test_ds.qrels().items() if q in test_q}
    ev = evaluate(qrels, runs, baseline=next(iter(runs)), relevance_level=1)
    untrained = {L: f"zero-shot L={L}" for L in s.scifact_splits}
    untrained[T] = next(iter(runs))
    gains_md, gains = gain_table(qrels, runs, s.scifact_splits, 1, untrained,
                                 {"per-L": {L: f"per-L L={L} ({head(L) or 'twin'})" for L in s.scifact_splits}})
    rec.set("gains_over_untrained", gains)
    rec.set("evaluation", ev.to_dict())
    md = [f"## SciFact: trained on {SCIFACT_TRAIN} ({len(train_q)} queries), tested on {SCIFACT_TEST} "
          f"({len(test_q)} queries)", "",
          f"First stage: the zero-shot all-MiniLM-L6-v2 twin's full retrieval over {fs_info['docs']} documents "
          f"(doc length {s.scifact_retrieval_doc_length}), top {s.depth} for training negatives; the re-rankers "
          f"re-rank its top {s.scifact_depth}. Re-rankers: {s.scifact_steps} steps x "
          f"{s.batch_size} groups, lengths {s.scifact_max_query_length}/{s.scifact_max_doc_length}.", "",
          "### What training adds at each depth", "", gains_md, "", "### Significance against the first stage", "",
          ev.to_markdown()]
    return {"markdown": "\n".join(md)}


# ---------------------------------------------------------------------------------- distillation
def run_distill(s: Settings, root: Path) -> dict:
    exp = DL19Experiment(s)
    rec = Records(root / "distill.json", asdict(s))
    runs_dir = root / "runs" / "distill"
    fold = 0
    test = exp.test_qids(fold)
    cands = exp.candidates(test)
    if s.teacher:
        # a given cross-encoder checkpoint (a folder or a hub id), used at L = 0 as it is
        teacher_path, teacher_fp = s.teacher, fingerprint([s.teacher, test, "teacher"])
        teacher_desc, student_tag = f"L=0, {s.teacher}", [f"t{teacher_fp}"]
    else:
        # a DL19 L = 0 model of fold 0, trained for --teacher-steps (with --steps, the per-L model
        # of step 1, which is kept)
        tconf = exp.model_config(0, root, steps=s.teacher_steps, fold=fold)
        tconf.output = str(Path(tconf.output) / f"fold{fold}")  # where cross-validation trains that fold
        teacher_path = Path(tconf.output) / "final"
        if not (teacher_path / "lateint.json").is_file():
            log(f"distill: training the teacher (DL19 L=0, fold {fold}, {tconf.steps} steps)")
            result, info = train(tconf, exp.groups(fold))
            rec.set("teacher_train", info)
        teacher_fp = fingerprint([tconf.to_dict(), test, "teacher"])
        teacher_desc, student_tag = f"L=0, {s.teacher_steps} steps", []
    data = exp.data_settings(fold, s.distill_train_queries)
    groups = exp.groups(fold, s.distill_train_queries)
    if rec.get("teacher", teacher_fp) is None:
        ranker = exp.load(teacher_path, split=0)
        rr = rerank(ranker, exp.ds, cands, runs_dir / f"teacher-{teacher_fp}.trec", "teacher-L0")
        rec.put("teacher", teacher_fp, {"model": str(teacher_path), "layers": ranker.num_layers, "rerank": rr})
        log(f"distill: teacher re-ranked {rr['queries']} queries, mean {rr['mean_latency_ms']:.0f} ms/query")
        del ranker
    scores_cache = root / "models" / "distill" / f"teacher_scores-{teacher_fp}.json"
    for L in s.distill_splits:
        key = f"student-L{L}"
        variant = "margin_mse+ce" + ("+tinybert" if s.tinybert else "")
        out = root / "models" / "distill" / s.key(f"student-L{L}", variant, *student_tag, f"s{s.distill_steps}",
                                                   f"seed{s.seed}")
        config = base_config(
            s, model=str(teacher_path), split=L, student_layers="every_other", output=out, steps=s.distill_steps,
            seed=s.seed, data=data,
            loss=LossSettings(hard="listwise_ce", soft="margin_mse", intermediate=s.tinybert),
            distill=DistillSettings(teacher=str(teacher_path), teacher_split=0, scores_cache=str(scores_cache),
                                    batch_size=32),
        )
        fp = fingerprint([config.to_dict(), test, teacher_fp])
        if rec.get(key, fp) is not None:
            log(f"distill: {key} already recorded, skipped")
            continue
        log(f"distill: {key}: 3-layer student (every other layer), {variant}, {config.steps} steps on {len(groups)} groups")
        result, info = train(config, groups)
        ranker = exp.load(result.model_path, split=L)
        rr = rerank(ranker, exp.ds, cands, runs_dir / f"{out.name}.trec", f"student-L{L}")
        rec.put(key, fp, {"split": L, "layers": ranker.num_layers, "variant": variant, "train": info, "rerank": rr})
        log(f"distill: {key}: {info['seconds_per_step'] or float('nan'):.2f} s/step; mean {rr['mean_latency_ms']:.0f} ms/query")
        if not s.keep_models:
            drop_weights(out)
        del ranker
    # context on the same held-out queries: the first stage and the untrained twin
    zs_fp = fingerprint(["distill-twin-zs", s.max_query_length, s.max_doc_length, test])
    if rec.get("twin-zeroshot", zs_fp) is None:
        ranker = exp.load(exp.minilm)
        rr = rerank(ranker, exp.ds, cands, runs_dir / f"twin-zeroshot-{zs_fp}.trec", "twin-zeroshot")
        rec.put("twin-zeroshot", zs_fp, {"rerank": rr})
        del ranker
    records = rec.data["records"]
    tname = f"teacher ({records['teacher']['layers']} layers, L=0)"
    runs = {tname: read_run(records["teacher"]["rerank"]["run_path"]),
            "BM25": {q: dict(exp.bm25[q]) for q in test},
            "twin zero-shot (6 layers, L=6)": read_run(records["twin-zeroshot"]["rerank"]["run_path"])}
    for L in s.distill_splits:
        if f"student-L{L}" in records:
            runs[f"student 3 layers L={L}"] = read_run(records[f"student-L{L}"]["rerank"]["run_path"])
    qrels = {q: exp.qrels[q] for q in test}
    ev = evaluate(qrels, runs, baseline=tname, relevance_level=exp.level)
    t_ndcg = ev.means[tname]["nDCG@10"]
    t_lat = records["teacher"]["rerank"]["median_latency_ms"]
    rows = ["| Model | nDCG@10 | kept | median ms/query | speed-up |", "|---|---:|---:|---:|---:|",
            f"| teacher ({records['teacher']['layers']} layers, {teacher_desc}) | {t_ndcg:.4f} | 1.000 | {t_lat:.0f} | 1.00x |"]
    table = {}
    for L in s.distill_splits:
        name = f"student 3 layers L={L}"
        if name not in ev.means:
            continue
        n = ev.means[name]["nDCG@10"]
        lat = records[f"student-L{L}"]["rerank"]["median_latency_ms"]
        kept = n / t_ndcg if t_ndcg > 0 else float("nan")
        table[name] = {"nDCG@10": n, "kept": kept, "median_latency_ms": lat, "speedup": t_lat / lat}
        rows.append(f"| {name} | {n:.4f} | {kept:.3f} | {lat:.0f} | {t_lat / lat:.2f}x |")
    rec.set("evaluation", ev.to_dict())
    rec.set("kept_vs_speedup", table)
    md = [f"## Distillation into 3-layer students (DL19 fold {fold}: {len(groups)} training groups, "
          f"{len(test)} held-out queries)", "",
          f"Soft labels: margin-MSE on the teacher's scores + listwise CE{' + TinyBERT intermediate' if s.tinybert else ''}; "
          f"{s.distill_steps} steps. Speed-up: teacher's median per-query re-rank time / the student's "
          f"(rerank_dataset latencies, {torch.get_num_threads()} threads).", "", *rows, "", ev.to_markdown()]
    return {"markdown": "\n".join(md)}


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="a few steps, one fold, two splits, a few queries")
    p.add_argument("--only", choices=["dl19", "scifact", "distill"], help="run one experiment")
    p.add_argument("--out", help="results folder (default benchmarks/results/training[-smoke])")
    p.add_argument("--steps", type=int, help="training steps of the DL19 per-L models (default 40; smoke 2)")
    p.add_argument("--dial-steps", type=int, help="steps of the dial model (default: --steps)")
    p.add_argument("--scifact-steps", type=int, help="steps of the SciFact models (default 30; smoke 2)")
    p.add_argument("--distill-steps", type=int, help="steps of each student (default: --steps)")
    p.add_argument("--teacher-steps", type=int, help="steps of the distillation teacher (default 200; smoke 2)")
    p.add_argument("--teacher", default="", help="distil from this cross-encoder (a folder or hub id, e.g. "
                   "cross-encoder/ms-marco-MiniLM-L6-v2 where the hub is reachable) instead of training a teacher")
    p.add_argument("--splits", help="comma-separated splits L (default 0,2,4,5,6; smoke 0,6)")
    p.add_argument("--folds", type=int, help="k of the DL19 cross-validation (default 5)")
    p.add_argument("--run-folds", help="comma-separated folds to run (default all; smoke 0)")
    p.add_argument("--scifact-test-queries", type=int, help="cap on SciFact test queries, a seeded sample (default 100; 0: all 300)")
    p.add_argument("--scifact-depth", type=int, help="SciFact test candidates re-ranked per query (default 50)")
    p.add_argument("--scifact-splits", help="comma-separated splits of the SciFact models (default 0,2,4,5,6)")
    p.add_argument("--head", choices=["twin", "cls"], default="twin",
                   help="head of the per-L models at L < T: the checkpoint's twin head (default) or a new cls head")
    p.add_argument("--tinybert", action="store_true", help="add TinyBERT intermediate losses to distillation")
    p.add_argument("--keep-models", action="store_true", help="keep every trained model (else only the teacher)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    s = make_settings(args)
    torch.set_num_threads(s.threads)
    random.seed(s.seed)
    np.random.seed(s.seed)
    torch.manual_seed(s.seed)
    root = Path(s.out)
    root.mkdir(parents=True, exist_ok=True)
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
           "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "seed": s.seed}
    log(f"settings: {json.dumps(asdict(s))}")
    log(f"environment: {json.dumps(env)}")
    sections = {}
    todo = [args.only] if args.only else ["dl19", "scifact", "distill"]
    runners = {"dl19": run_dl19, "scifact": run_scifact, "distill": run_distill}
    timings = {}
    for name in todo:
        t = time.perf_counter()
        log(f"=== {name} ===")
        sections[name] = runners[name](s, root)["markdown"]
        timings[name] = time.perf_counter() - t
        log(f"=== {name} done in {timings[name]:.0f} s ===")
        (root / f"{name}.md").write_text(sections[name], encoding="utf-8")
    parts = [f"# Training recipes{' (smoke run)' if s.smoke else ''}", "",
             f"Environment: {json.dumps(env)}. Wall time of the last invocation (parts recorded earlier are skipped, their times are in the JSON records): "
             + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), ""]
    for name in ("dl19", "scifact", "distill"):
        path = root / f"{name}.md"
        if path.is_file():
            parts.append(path.read_text(encoding="utf-8"))
    (root / "summary.md").write_text("\n".join(parts), encoding="utf-8")
    print("\n".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Effectiveness at every interaction depth on BEIR SciFact, with every depth trained.

Protocol (BEIR re-ranking): all 300 ``beir/scifact/test`` queries, the BM25 top-100 of
``lateint retrieve`` (bm25s, English stemmer, title + text) re-ranked; nDCG@10 over all test
queries. Training on ``beir/scifact/train`` with a seeded 10% of its queries held out as dev
queries; negatives from the BM25 top-100 of the training queries; every model starts from
all-MiniLM-L6-v2 and trains (bf16 autocast unless `--amp no`) until dev nDCG@10 stops improving (``patience`` validations without a
new best), and the best dev checkpoint is the one tested.

Points (``kind``):
* ``untrained``: all-MiniLM-L6-v2 (twin head: mean pooling, cosine) at every L;
* ``per-L``: one model trained at each L in {0, 2, 4, 5, 6} (twin head), and at L = 0 one with a
  ``cls`` head;
* ``dial``: one model trained with the split sampled per batch, validated at every L (the mean dev
  nDCG@10 picks its checkpoint), tested at every L;
* ``student``: Margin-MSE (plus listwise CE) from the best L = 0 model (by dev nDCG@10) into
  students at L in {4, 5, 6} and into a 3-layer student (every other layer) at its twin end;
* ``seed-heads`` (part): per-L models at L = 6 with the seed systems' heads (TwinBERT weighted pooling with
  cosine and with residual crossing, DiPair, ColBERT MaxSim 128-d), compared with the mean/cosine twin;
* ``tinybert`` (part): a 3-layer Simplified TinyBERT student at L = 0 (``distillation: "tinybert"``);
* ``sandwich`` (part): a ``dial`` trained as a slimmable network (``dial_training: "sandwich"``);
* ``cascade``: stages along the sandwich dial's checkpoint (``stages``; ``ms_per_query`` end to end), drawn
  with every other point on ``pareto.png``.

Resumable: every finished part (first-stage runs, trainings, test runs) is recorded and skipped
when the script is rerun; an interrupted training resumes from its last checkpoint. Each finished
point is added to ``summary.json`` at once, so a partial grid is reported as far as it went
(``status.json`` lists what is still missing).

Writes ``benchmarks/results/effectiveness/scifact/``: ``summary.json`` (the shape below),
``summary.md`` (table, targets with Holm-corrected paired t-tests), ``depth.png`` (nDCG@10 against
L), ``pareto.png`` (nDCG@10 against ms/query), ``runs/*.trec`` (every point's TREC run, from which every figure can be recomputed) and
``curves/*.png`` (loss and dev nDCG).
Models and caches go to ``--work`` (not committed).

The test runs are timed while other models train, so their ``ms_per_query`` is no latency figure;
``--retime N`` (after the parts, or alone with ``--report``) times every point whose model is in
``--work`` again over the first N test queries, to be run with nothing else on the machine
(``timing.json`` records what was re-timed, on what).

Usage: ``python benchmarks/effectiveness_scifact.py [--work DIR] [--device cuda] [--max-steps N]``
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from pathlib import Path

import torch
from local_data import REPO as ROOT  # noqa: E402  (sets the data environment first)

from lateint.checkpoints import DEFAULT_MODEL  # noqa: E402
from lateint.cli.common import positive_int  # noqa: E402
from lateint.data import load_dataset  # noqa: E402
from lateint.data.runs import read_run, write_run  # noqa: E402
from lateint.records import RecordStore  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "effectiveness" / "scifact"
TEST, TRAIN = "beir/scifact/test", "beir/scifact/train"
SPLITS = (0, 2, 4, 5, 6)
STUDENT_SPLITS = (4, 5, 6)
#: the 3-layer student, tested at its L = 3: its twin end
THREE_LAYER = "student 3-layer L=3"
DEPTH = 100
SEED = 0
QUERIES = 300
#: the head options of a twin when none are named: the untrained model's own (mean pooling, cosine)
TWIN = {"pooling": "mean", "crossing": "cosine"}
#: the seed systems' heads at the twin end (``--only seed-heads``), each trained like the per-L twin and compared
#: with it: (point name, head, head options)
SEED_HEADS = (
    ("per-L L=6 weighted-cosine", "twin", {"pooling": "weighted", "crossing": "cosine"}),  # TwinBERT-cos
    ("per-L L=6 weighted-residual", "twin", {"pooling": "weighted", "crossing": "residual"}),  # TwinBERT-res
    ("per-L L=6 dipair", "dipair", {"dipair_tokens": 8, "dipair_dim": 128, "dipair_layers": 1, "dipair_heads": 4}),
    ("per-L L=6 maxsim", "maxsim", {"maxsim_dim": 128}),  # ColBERT
)
#: the Simplified TinyBERT student (``--only tinybert``): 3 layers (every other) at L = 0 like its teacher, the best
#: L = 0 model, distilled in one step with intermediate-layer losses (embeddings and hidden states through a learned
#: projection to the teacher's width, attention scores), soft (KL) and hard (listwise CE) labels
TINYBERT = "student 3-layer tinybert L=0"
#: the sandwich dial (``--only sandwich``): both ends and this many random splits of SPLITS' interior each step,
#: the L = 0 pass teaching the others over the same batch (in-place distillation)
SANDWICH = {"mode": "sandwich", "random_splits": 2, "inplace_distillation": "margin_mse"}
#: the cascades along the dial (``--only cascade``): the twin over the BM25 top-100, then L = a over its top k1, then
#: L = 0 over the top k2 (and the two-stage twin -> L = 0 ones)
CASCADES = tuple([((6, DEPTH), (a, k1), (0, k2)) for a in (2, 4, 5) for k1 in (20, 30) for k2 in (5, 10)]
                 + [((6, DEPTH), (0, k)) for k in (10, 20)])
#: the dial the cascades run along: the uniform one (``dial``) or the sandwich one (``dial sandwich``)
CASCADE_DIAL = "dial sandwich"
#: the parts of the grid, in their default order (``--only``); the BM25 first stage is always computed (once)
PARTS = ("untrained", "per-L", "dial", "student", "seed-heads", "sandwich", "cascade", "tinybert")


def settings(args) -> dict:
    """Everything that decides the results (recorded with them)."""
    return {
        "model": DEFAULT_MODEL, "seed": SEED, "depth": DEPTH, "max_query_length": 32, "max_doc_length": 256,
        "max_steps": args.max_steps, "batch_size": 4, "negatives": 7, "lr": 3e-5, "head_lr": 1e-3,
        "validation": {"every": args.validate_every, "holdout": 0.1, "depth": 30, "max_queries": 0,
                       "patience": args.patience, "dial_splits": list(SPLITS)},
        "checkpoint_every": args.validate_every, "device": args.device, "amp": args.amp,
        "test_queries": args.test_queries,
    }


def _shown(path: Path) -> str:
    """A path as recorded: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# -- first stage ---------------------------------------------------------------------------------
def bm25_run(dataset_id: str, path: Path, store: RecordStore) -> Path:
    """The BM25 top-100 of every query of ``dataset_id`` as a TREC run (computed once)."""
    key = f"bm25-{dataset_id.replace('/', '-')}"
    if key in store and path.exists():
        return path
    from lateint.retrieval import bm25_retrieve, iter_documents

    ds = load_dataset(dataset_id)
    start = time.perf_counter()
    ranked = bm25_retrieve(iter_documents(ds), ds.queries(), k=DEPTH, progress=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_run(ranked, path, tag="bm25")
    store.put(key, {"dataset": dataset_id, "run": _shown(path),
                    "queries": len(ranked), "seconds": time.perf_counter() - start})
    return path


def ndcg10(qrels: dict, run: dict, per_query: bool = False):
    """nDCG@10 (ranx) over every judged query (a query the run misses scores 0), or per query."""
    import ranx

    qrels = ranx.Qrels({q: r for q, r in qrels.items()})
    run = ranx.Run({q: {d: float(s) for d, s in docs.items()} for q, docs in run.items()})
    mean = ranx.evaluate(qrels, run, "ndcg@10", make_comparable=True)
    return dict(run.scores["ndcg@10"]) if per_query else mean


# -- training ------------------------------------------------------------------------------------
def train_config(s: dict, name: str, work: Path, train_run: Path, *, split: int, head: str = "twin",
                 head_options: dict | None = None, dial: bool = False, dial_mode: dict | None = None,
                 teacher: str | None = None, student_layers: str | None = None, tinybert: bool = False) -> dict:
    config = {
        "model": s["model"], "split": split, "head": head, "seed": s["seed"], "steps": s["max_steps"], "amp": s["amp"],
        "batch_size": s["batch_size"], "device": s["device"], "output": str(work / "models" / name),
        "progress": True,
        "optim": {"lr": s["lr"], "head_lr": s["head_lr"], "warmup_steps": 50, "schedule": "constant"},
        "data": {"dataset": TRAIN, "run": str(train_run), "depth": DEPTH, "negatives": s["negatives"],
                 "max_query_length": s["max_query_length"], "max_doc_length": s["max_doc_length"]},
        "loss": {"hard": "listwise_ce"},
        "checkpoint": {"every": s["checkpoint_every"], "keep_last": 1},
        "validation": {"every": s["validation"]["every"], "holdout": s["validation"]["holdout"],
                       "run": str(train_run), "depth": s["validation"]["depth"],
                       "patience": s["validation"]["patience"]},
    }
    if head_options is not None:
        config["head_options"] = dict(head_options)
    elif head == "twin":
        config["head_options"] = dict(TWIN)
    if dial:
        config["dial"] = {"enabled": True, "splits": list(SPLITS), **(dial_mode or {})}
        # one checkpoint serves every split, so the mean dev nDCG@10 over them picks it
        config["validation"]["splits"] = s["validation"]["dial_splits"]
    if teacher is not None:
        # one cache for every student: it is keyed by (query, document) and the teacher's fingerprint
        config["distill"] = {"teacher": teacher, "teacher_split": 0, "scores_cache": str(work / "teacher-scores.jsonl")}
        config["loss"] = {"hard": "listwise_ce", "soft": "margin_mse"}
        if tinybert:
            config["loss"] = {"hard": "listwise_ce", "soft": "kl", "intermediate": True}
    if student_layers is not None:
        config["student_layers"] = student_layers
    return config


def train(config: dict, store: RecordStore, name: str) -> dict:
    """Train (or resume) one model; its record names the best dev checkpoint."""
    key = f"train-{name}"
    done = store.get(key)
    if done is not None:
        return done
    from lateint.training.config import TrainConfig
    from lateint.training.trainer import Trainer

    result = Trainer(TrainConfig.from_dict(config)).train()
    record = {"name": name, "config": config, **result.to_dict()}
    store.put(key, record)
    return record


# -- testing -------------------------------------------------------------------------------------
def point_ranker(model: str, kind: str, head: str, split: int, args):
    """The ranker a point is tested (and re-timed) with: ``model`` at ``split``; an untrained model gets the
    twin head's mean pooling and cosine."""
    from lateint import SplitRanker

    s = settings(args)
    options = {"head": head, "pooling": "mean", "crossing": "cosine"} if kind == "untrained" else {}
    ranker = SplitRanker.from_pretrained(model, max_query_length=s["max_query_length"],
                                         max_doc_length=s["max_doc_length"], seed=SEED, device=args.device, **options)
    return ranker.at(split)


def described(point: dict) -> dict:
    """The point with the fields that say what it is: ``head_options`` (always), ``distillation`` (students) and
    ``dial_training`` (dial points). Points recorded before these fields existed are the mean/cosine twin, the
    ``cls`` head's tanh dense layer, Margin-MSE students and the uniform dial, which is what they get."""
    point = dict(point)
    if "head_options" not in point:
        point["head_options"] = dict(TWIN) if point["head"] == "twin" else {"pooler_activation": "tanh"}
    if point["kind"] == "student":
        point.setdefault("distillation", "margin-mse")
        # the grid's first students learnt from the L = 0 twin (the summary of their run names it)
        point.setdefault("teacher", "per-L L=0")
    if point["kind"] == "dial":
        point.setdefault("dial_training", "uniform")
    return point


def baseline_head(point: dict) -> bool:
    """Whether the point has its head's plain options (the mean/cosine twin; any ``cls`` head): the grid's
    per-L curve and targets are drawn from these, the seed heads at L = 6 apart."""
    return point["head"] != "twin" or point["head_options"] == TWIN


def head_label(point: dict) -> str:
    """The head as the table shows it: ``twin`` for the mean/cosine twin, its options otherwise."""
    options = point["head_options"]
    if point["head"] == "twin" and options != TWIN:
        return f"twin ({options['pooling']}/{options['crossing']})"
    if point["head"] == "maxsim":
        return f"maxsim ({options['maxsim_dim']}-d)"
    if point["head"] == "dipair":
        return f"dipair (k={options['dipair_tokens']}, {options['dipair_dim']}-d)"
    return point["head"]


def test_point(store: RecordStore, work: Path, name: str, kind: str, model: str, split: int, head: str,
               steps: int, candidates: dict, ds, args, **fields) -> dict:
    """Re-rank the test first stage with ``model`` at ``split``; recorded as one summary point."""
    key = f"point-{name}"
    done = store.get(key)
    if done is not None:
        return done
    from lateint.pipeline.rerank_run import rerank_dataset

    ranker = point_ranker(model, kind, head, split, args)
    slug = name.replace(" ", "-").replace("=", "")
    run_path = OUT / "runs" / f"{slug}.trec"
    report = rerank_dataset(ranker, ds, candidates, run_path, tag=slug, cache_root=work / "caches" / slug,
                            storage="fp16", batch_size=128, progress=True)
    shutil.rmtree(work / "caches" / slug, ignore_errors=True)
    value = ndcg10(ds.qrels(), read_run(run_path))
    point = {"name": name, "kind": kind, "split": split, "head": head, "steps": steps, "ndcg@10": round(float(value), 4),
             "run": _shown(run_path), "ms_per_query": round(report.median_latency_ms, 2),
             "bytes_per_doc": int(round(report.cache_bytes_per_doc or 0)), **fields}
    point = described(point)
    store.put(key, point)
    return point


def cascade_name(stages) -> str:
    return "cascade " + " > ".join(f"L={split}@{depth}" for split, depth in stages)


def cascade_point(store: RecordStore, work: Path, stages, dial: dict, candidates: dict, ds, args) -> dict:
    """Re-rank the test first stage in ``stages`` along the dial's checkpoint; recorded as one summary point
    (``ms_per_query``: the median end-to-end time of every stage; ``bytes_per_doc``: every stage's cache)."""
    from lateint.cascading import cascade

    name = cascade_name(stages)
    key = f"point-{name}"
    done = store.get(key)
    if done is not None:
        return done
    model = dial["best_path"] or dial["model_path"]
    ranker = point_ranker(model, "dial", "twin", stages[0][0], args)
    slug = "cascade-" + "-".join(f"L{split}at{depth}" for split, depth in stages)
    run_path = OUT / "runs" / f"{slug}.trec"
    # one cache per split, shared by every cascade (each stage's cache holds every test candidate)
    report = cascade(ranker, ds, candidates, run_path, stages=stages, tag=slug, cache_root=work / "caches" / "cascade",
                     storage="fp16", batch_size=128, progress=True)
    value = ndcg10(ds.qrels(), read_run(run_path))
    training = "sandwich" if dial["name"] == "dial sandwich" else "uniform"
    point = described({"name": name, "kind": "cascade", "split": stages[-1][0], "head": "twin",
                       "steps": dial["best_step"] or dial["steps"], "ndcg@10": round(float(value), 4),
                       "run": _shown(run_path), "ms_per_query": round(report.median_latency_ms, 2),
                       "bytes_per_doc": int(round(sum(st["bytes_per_doc"] for st in report.stages))),
                       "stages": [{"split": split, "depth": depth} for split, depth in stages],
                       "dial_training": training})
    store.put(key, point)
    print(f"{name}: nDCG@10 {point['ndcg@10']:.4f}, {point['ms_per_query']:.1f} ms/query", flush=True)
    return point


def point_model(store: RecordStore, point: dict, s: dict) -> str | None:
    """The model a point was tested with (None when its training record is not here, e.g. in a fresh clone)."""
    if point["kind"] == "untrained":
        return s["model"]
    if point["kind"] == "cascade":
        return None  # several stages: its timing is the cascade's own (per stage in its run's .json)
    dial = "dial sandwich" if point.get("dial_training") == "sandwich" else "dial"
    training = {"per-L": point["name"], "dial": dial, "student": point["name"]}[point["kind"]]
    record = store.get(f"train-{training}")
    return (record["best_path"] or record["model_path"]) if record else None


def retime_point(store: RecordStore, work: Path, point: dict, candidates: dict, ds, args) -> float | None:
    """The point's median per-query re-ranking time over the first ``--retime`` test queries, measured
    alone on the machine (the test runs ran beside training). None when the point's model is not here."""
    key = f"time-{point['name']}"
    done = store.get(key)
    if done is not None and done["queries"] == args.retime:
        return done["ms_per_query"]
    model = point_model(store, point, settings(args))
    if model is None or (point["kind"] != "untrained" and not Path(model).exists()):
        return None
    from lateint.pipeline.rerank_run import rerank_dataset

    ranker = point_ranker(model, point["kind"], point["head"], point["split"], args)
    # one query more than timed: the first pays the warm-up (allocator, kernels) and is left out
    chosen = {q: candidates[q] for q in sorted(candidates)[: args.retime + 1]}
    folder = work / "retime"
    shutil.rmtree(folder, ignore_errors=True)
    report = rerank_dataset(ranker, ds, chosen, folder / "run.trec", tag="retime", cache_root=folder / "caches",
                            storage="fp16", batch_size=128, progress=False)
    shutil.rmtree(folder, ignore_errors=True)
    ms = round(statistics.median(report.latencies_ms[1:]), 2)
    store.put(key, {"name": point["name"], "queries": args.retime, "ms_per_query": ms,
                    "threads": torch.get_num_threads(), "device": args.device, "torch": torch.__version__,
                    "measured": time.strftime("%Y-%m-%d")})
    return ms


def adopt_committed_points(store: RecordStore) -> None:
    """Points already in the committed ``summary.json`` whose run is complete count as finished.

    The record store is not committed, so without this a fresh clone would recompute every point.
    A point is adopted only when its run file holds every query it lists in the progress file.
    """
    path = OUT / "summary.json"
    if not path.exists():
        return
    for p in json.loads(path.read_text())["points"]:
        run = ROOT / p["run"]
        progress = run.with_name(run.name + ".progress")
        key = f"point-{p['name']}"
        if key in store or not run.exists() or not progress.exists():
            continue
        finished = {line.split("\t")[0] for line in progress.read_text().splitlines() if line.strip()}
        if finished and finished <= set(read_run(run)) and len(finished) == QUERIES:
            store.put(key, p)


def write_summary(store: RecordStore, first_stage: dict, ds) -> dict:
    order = {"untrained": 0, "per-L": 1, "dial": 2, "student": 3, "cascade": 4}
    points = [described(store.get(k)) for k in store.keys() if k.startswith("point-")]
    points.sort(key=lambda p: (order[p["kind"]], p.get("dial_training") == "sandwich", p["head"] != "twin", p["split"],
                               p["name"]))
    summary = {"dataset": TEST, "queries": QUERIES, "first_stage": first_stage, "points": points}
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def mean_ndcg(per_query: dict) -> float:
    """The mean of per-query nDCG@10 (``ndcg10(..., per_query=True)`` holds every judged query)."""
    return sum(per_query.values()) / len(per_query)


def best_dev(records) -> dict:
    return max(records, key=lambda t: t["best_dev_ndcg"] or 0.0)


def targets(summary: dict, ds, teacher: str | None = None) -> list[str]:
    """The targets, met or not, with Holm-corrected paired t-tests on per-query nDCG@10.

    ``teacher`` names the students' teacher point; the students are compared with it and with the
    per-L model at their split.
    """
    from scipy.stats import ttest_rel

    from lateint.evaluation.significance import adjust_p_values

    qrels = ds.qrels()
    by = {(p["kind"], p["split"], p["head"]): p for p in summary["points"]
          if baseline_head(p) and p.get("dial_training") != "sandwich" and p["kind"] != "cascade"}
    per_query = {}

    def scores(p):
        if p["name"] not in per_query:
            per_query[p["name"]] = ndcg10(qrels, read_run(ROOT / p["run"]), per_query=True)  # ROOT / absolute = absolute
        return per_query[p["name"]]

    def paired(a, b):
        qa, qb = scores(a), scores(b)
        qs = sorted(set(qa) | set(qb))
        return ttest_rel([qa.get(q, 0.0) for q in qs], [qb.get(q, 0.0) for q in qs]).pvalue

    lines = []
    pairs = [(by.get(("per-L", L, "twin")), by.get(("untrained", L, "twin")), L) for L in (0, 2, 4, 5)]
    pairs = [(a, b, L) for a, b, L in pairs if a and b]
    if pairs:
        adjusted = adjust_p_values([paired(a, b) for a, b, _ in pairs], "holm")
        wins = [a["ndcg@10"] > b["ndcg@10"] and p < 0.05 for (a, b, _), p in zip(pairs, adjusted)]
        detail = ", ".join(f"L={L}: {b['ndcg@10']:.4f} -> {a['ndcg@10']:.4f} (Holm p {p:.3g})"
                           for (a, b, L), p in zip(pairs, adjusted))
        status = "met" if len(pairs) == 4 and all(wins) else ("not met" if len(pairs) == 4 else "open")
        lines.append(f"- trained beats untrained at every L in {{0, 2, 4, 5}}: **{status}** ({detail})")
    twin = by.get(("per-L", 6, "twin"))
    lower = [p for p in summary["points"] if p["kind"] == "per-L" and p["split"] < 6 and baseline_head(p)]
    if twin and lower:
        adjusted = adjust_p_values([paired(p, twin) for p in lower], "holm")
        better = [p for p, q in zip(lower, adjusted) if p["ndcg@10"] > twin["ndcg@10"] and q < 0.05]
        detail = ", ".join(f"{p['name']} {p['ndcg@10']:.4f} (Holm p {q:.3g})" for p, q in zip(lower, adjusted))
        every_lower = len([L for L in SPLITS if L < 6]) + 1  # and the cls cross-encoder at L = 0
        status = "met" if better else ("not met" if len(lower) == every_lower else "not met so far")
        lines.append(f"- some L < 6 beats the trained twin ({twin['ndcg@10']:.4f}): **{status}** ({detail})")
    l0 = [p for p in summary["points"] if p["kind"] == "per-L" and p["split"] == 0 and baseline_head(p)]
    if l0:
        best = max(l0, key=lambda p: p["ndcg@10"])
        lines.append(f"- best L = 0 model reaches nDCG@10 >= 0.70: **{'met' if best['ndcg@10'] >= 0.70 else 'not met'}** "
                     f"({best['name']}: {best['ndcg@10']:.4f}; BM25 {summary['first_stage']['ndcg@10']:.4f})")
    for training, label in (("uniform", "dial"), ("sandwich", "sandwich dial")):
        dial = [(p, by[("per-L", p["split"], "twin")]) for p in summary["points"]
                if p["kind"] == "dial" and p["dial_training"] == training and ("per-L", p["split"], "twin") in by]
        if not dial:
            continue
        adjusted = adjust_p_values([paired(d, q) for d, q in dial], "holm")
        # unrounded, so that a gap printed as 0.0100 is judged by its real value
        diffs = [mean_ndcg(scores(d)) - mean_ndcg(scores(q)) for d, q in dial]
        worst = max(abs(x) for x in diffs)
        complete = len(dial) == len(SPLITS)
        if training == "uniform":
            status = "met" if complete and worst <= 0.01 else ("not met" if worst > 0.01 else "open")
            goal = "within 0.01 of per-L at every L"
        else:
            # the sandwich dial's goal adds: no significant difference from per-L at any L
            close = worst <= 0.01 and all(q >= 0.05 for q in adjusted)
            status = "met" if complete and close else ("not met" if not close else "open")
            goal = "within 0.01 of per-L at every L, no significant difference (Holm)"
        lines.append(f"- {label} {goal}: **{status}** (largest |{label} - per-L| {worst:.4f}; "
                     + ", ".join(f"L={d['split']}: {x:+.4f} (Holm p {q:.3g})" for (d, _), x, q in zip(dial, diffs, adjusted))
                     + ")")
    students = [p for p in summary["points"] if p["kind"] == "student"]
    teacher = next((p for p in summary["points"] if p["name"] == teacher), None)
    if students and teacher:
        # not a target: how each student compares with the per-L model at its split (the 3-layer student, a
        # twin, with the trained 6-layer twin) and with its teacher
        def reference(st):
            if st["name"] == TINYBERT:  # against the Margin-MSE student of the same size
                return next((p for p in students if p["name"] == THREE_LAYER), None)
            return by.get(("per-L", max(SPLITS) if st["name"] == THREE_LAYER else st["split"], "twin"))

        pairs = [(st, ref) for st in students for ref in (reference(st), teacher) if ref]
        adjusted = adjust_p_values([paired(a, b) for a, b in pairs], "holm")
        lines.append("- students (no target; Holm over these comparisons): "
                     + ", ".join(f"{a['name']} {a['ndcg@10']:.4f} vs {b['name']} {b['ndcg@10']:.4f} "
                                 f"({mean_ndcg(scores(a)) - mean_ndcg(scores(b)):+.4f}, Holm p {q:.3g})"
                                 for (a, b), q in zip(pairs, adjusted)))
    cascades = [p for p in summary["points"] if p["kind"] == "cascade"]
    singles = [p for p in summary["points"] if p["kind"] != "cascade"]
    if cascades and singles:
        best = max(singles, key=lambda p: p["ndcg@10"])
        # the goal: as good as the best single point (within 0.005) at a fifth of its time or less
        fits = [c for c in cascades if c["ndcg@10"] >= best["ndcg@10"] - 0.005 and c["ms_per_query"] <= best["ms_per_query"] / 5]
        top = max(cascades, key=lambda c: (c["ndcg@10"], -c["ms_per_query"]))
        shown = max(fits, key=lambda c: c["ndcg@10"]) if fits else top
        status = "met" if fits else ("not met" if len(cascades) == len(CASCADES) else "not met so far")
        lines.append(f"- a cascade within 0.005 nDCG@10 of the best single point ({best['name']} {best['ndcg@10']:.4f}, "
                     f"{best['ms_per_query']:.1f} ms/query) at <= 1/5 of its ms/query: **{status}** ({shown['name']}: "
                     f"{shown['ndcg@10']:.4f} ({shown['ndcg@10'] - best['ndcg@10']:+.4f}), {shown['ms_per_query']:.1f} "
                     f"ms/query ({shown['ms_per_query'] / best['ms_per_query']:.2f} of it), Holm p "
                     f"{adjust_p_values([paired(shown, best)], 'holm')[0]:.3g})")
    seeds = [p for p in summary["points"] if p["name"] in {n for n, _, _ in SEED_HEADS}]
    if twin and seeds:
        # not a target: each seed system's head against the trained mean/cosine twin, at the same L and budget
        adjusted = adjust_p_values([paired(p, twin) for p in seeds], "holm")
        lines.append(f"- seed heads at L = 6 against the trained mean/cosine twin {twin['ndcg@10']:.4f} (no target; "
                     "Holm over these comparisons): "
                     + ", ".join(f"{head_label(p)} {p['ndcg@10']:.4f} ({mean_ndcg(scores(p)) - mean_ndcg(scores(twin)):+.4f}, "
                                 f"Holm p {q:.3g})" for p, q in zip(seeds, adjusted)))
    return lines


def timings() -> dict:
    """``timing.json``: the points re-timed alone on the machine (``--retime``)."""
    path = OUT / "timing.json"
    return json.loads(path.read_text()) if path.exists() else {"points": {}}


def write_timings(store: RecordStore) -> None:
    """Adds the re-timings in the record store to ``timing.json`` (kept across fresh clones)."""
    timed = timings()
    for key in store.keys():
        if key.startswith("time-"):
            record = store.get(key)
            timed["points"][record["name"]] = record
    (OUT / "timing.json").write_text(json.dumps(timed, indent=2) + "\n")


def write_markdown(summary: dict, lines: list[str], missing: list[str], s: dict) -> None:
    fs = summary["first_stage"]
    md = ["# SciFact: effectiveness at every interaction depth", "",
          f"{summary['dataset']}, {summary['queries']} queries, re-ranking the BM25 top-{DEPTH} "
          f"(nDCG@10 {fs['ndcg@10']:.4f}). Settings: `{json.dumps(s)}`.", "",
          "| name | kind | L | head | steps | nDCG@10 | ms/query | bytes/doc |", "|---|---|---:|---|---:|---:|---:|---:|"]
    timed = timings()
    for p in summary["points"]:
        loaded = "" if p["name"] in timed["points"] else "*"
        md.append(f"| {p['name']} | {p['kind']} | {p['split']} | {head_label(p)} | {p['steps']} | {p['ndcg@10']:.4f} | "
                  f"{p['ms_per_query']:.1f}{loaded} | {p['bytes_per_doc']} |")
    if timed["points"]:
        env = next(iter(timed["points"].values()))
        counts = "/".join(str(n) for n in sorted({r["queries"] for r in timed["points"].values()}))
        timing = (f"ms/query: the median per-query re-ranking time (query encoding, cache reads, joint layers and "
                  f"head; the document cache built beforehand, fp16) over the first {counts} test queries "
                  f"after one warm-up query, each point re-timed in a pass of its own with nothing else running (`--retime N`; "
                  f"{env['device']}, {env['threads']} threads, torch {env['torch']}; `timing.json`). ")
    else:
        timing = ""
    if any(p["name"] not in timed["points"] for p in summary["points"]):
        timing += ("ms/query marked *: the median per-query re-ranking time of the point's whole test run, on a "
                   "machine shared with training: not a latency figure (`--retime N` re-times it alone; "
                   "`benchmarks/results/rerank_latency.md` has DL19 latencies). ")
    md += ["", "steps: the step of the checkpoint kept (best dev nDCG@10; training stopped after `patience` "
           "validations without improvement). " + timing + "nDCG@10 against L: `depth.png`. Loss and dev "
           "nDCG@10 curves: `curves/`.",
           "", "## Targets", "", *(lines or ["- no target can be judged yet"]), ""]
    if missing:
        md += ["## Not run yet", "", "This grid is incomplete; rerun the script to continue it: " + ", ".join(missing), ""]
    (OUT / "summary.md").write_text("\n".join(md))


def depth_plot(summary: dict, path: Path) -> None:
    """nDCG@10 against L: one line per kind of model (students and the cls model as points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    styles = {"untrained": ("untrained (zero-shot)", "o", ":"), "per-L": ("per-L, twin head", "s", "-"),
              "dial": ("dial (one model)", "^", "--"), "student": ("Margin-MSE students", "D", "none")}
    # the 3-layer student's L = 3 is its twin end: drawn apart, at the twin's x
    for kind, (label, marker, line) in styles.items():
        points = sorted((p for p in summary["points"] if p["kind"] == kind and p["head"] == "twin" and baseline_head(p)
                         and p["name"] not in (THREE_LAYER, TINYBERT) and p.get("dial_training") != "sandwich"),
                        key=lambda p: p["split"])
        if points:
            ax.plot([p["split"] for p in points], [p["ndcg@10"] for p in points], marker=marker, linestyle=line,
                    label=label)
    seeds = [p for p in summary["points"] if not baseline_head(p) or p["head"] in ("maxsim", "dipair")]
    for p in summary["points"]:
        if p in seeds or p["kind"] == "cascade" or p.get("dial_training") == "sandwich":
            continue
        if p["name"] == TINYBERT:
            ax.plot([p["split"]], [p["ndcg@10"]], marker="*", markersize=10, linestyle="none", color="teal",
                    label="3-layer Simplified TinyBERT student (L=0)")
            continue
        if p["head"] != "twin":
            ax.plot([p["split"]], [p["ndcg@10"]], marker="x", linestyle="none", color="black", label=p["name"])
        elif p["name"] == THREE_LAYER:
            ax.plot([6], [p["ndcg@10"]], marker="*", markersize=10, linestyle="none", color="purple",
                    label="3-layer student (twin)")
    sandwich = sorted((p for p in summary["points"] if p.get("dial_training") == "sandwich"), key=lambda p: p["split"])
    if sandwich:
        ax.plot([p["split"] for p in sandwich], [p["ndcg@10"] for p in sandwich], marker="v", linestyle="-.",
                label="sandwich dial (one model)")
    # the seed systems' heads at the twin end, side by side just right of L = 6
    for i, p in enumerate(seeds):
        ax.plot([p["split"] + 0.08 * (i + 1)], [p["ndcg@10"]], marker="PXhv"[i % 4], linestyle="none",
                label=f"{head_label(p)}, L={p['split']}")
    ax.axhline(summary["first_stage"]["ndcg@10"], color="grey", linestyle="--", linewidth=1, label="BM25 (first stage)")
    ax.set_xlabel("L (layers before query and document meet; 6 = twin)")
    ax.set_ylabel("nDCG@10")
    ax.set_xticks(range(0, 7))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{summary['dataset']}: {summary['queries']} queries, BM25 top-{DEPTH} re-ranked")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pareto_front(points: list[dict]) -> list[dict]:
    """The points no other point beats on both nDCG@10 and ms/query, fastest first."""
    front = [p for p in points if not any(q["ndcg@10"] >= p["ndcg@10"] and q["ms_per_query"] <= p["ms_per_query"]
                                          and (q["ndcg@10"], q["ms_per_query"]) != (p["ndcg@10"], p["ms_per_query"])
                                          for q in points)]
    return sorted(front, key=lambda p: p["ms_per_query"])


def pareto_plot(summary: dict, path: Path) -> None:
    """nDCG@10 against ms/query (log scale): every single point by kind, the cascades, and the front of them all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8))
    markers = {"untrained": "o", "per-L": "s", "dial": "^", "student": "D", "cascade": "*"}
    groups: dict[str, list[dict]] = {}
    for p in summary["points"]:
        label = "sandwich dial" if p.get("dial_training") == "sandwich" else p["kind"]
        groups.setdefault(label, []).append(p)
    for label, points in groups.items():
        ax.plot([p["ms_per_query"] for p in points], [p["ndcg@10"] for p in points], linestyle="none",
                marker=markers.get(points[0]["kind"], "v"), markersize=9 if label == "cascade" else 6, label=label)
    front = pareto_front([p for p in summary["points"] if p["ms_per_query"] > 0])
    ax.plot([p["ms_per_query"] for p in front], [p["ndcg@10"] for p in front], color="black", linewidth=1,
            drawstyle="steps-post", label="Pareto front")
    ax.axhline(summary["first_stage"]["ndcg@10"], color="grey", linestyle="--", linewidth=1, label="BM25 (first stage)")
    ax.set_xscale("log")
    ax.set_xlabel("ms per query (re-ranking the top 100; see summary.md for how each was timed)")
    ax.set_ylabel("nDCG@10")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{summary['dataset']}: effectiveness against re-ranking time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def copy_curve(record: dict, name: str) -> None:
    curve = Path(record["output"]) / "loss_curve.png"
    if curve.exists():
        (OUT / "curves").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(curve, OUT / "curves" / f"{name.replace(' ', '-').replace('=', '')}.png")


def main() -> None:
    global OUT, QUERIES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "results" / "tmp" / "scifact",
                        help="models, caches and the training first stage (not committed)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--amp", default="bf16", choices=("no", "bf16"),
                        help="mixed-precision training (bf16 autocast, on the CPU too: 1.4x faster per step "
                             "there); test runs are always scored in fp32")
    parser.add_argument("--max-steps", type=int, default=3000, help="upper bound; dev nDCG@10 stops training earlier")
    parser.add_argument("--validate-every", type=int, default=100)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT, help="results folder (default: %(default)s)")
    parser.add_argument("--test-queries", type=int, default=0,
                        help="a quick look: only the first N test queries (0: all, the protocol)")
    parser.add_argument("--only", nargs="+", default=None, choices=PARTS, metavar="PART",
                        help=f"parts to run, in the order given: {' '.join(PARTS)} (default: all, in that order); "
                             "the BM25 first stage is always computed first (once)")
    parser.add_argument("--retime", type=positive_int, default=None, metavar="N",
                        help="after the parts, time every finished point alone on the machine over the first N test "
                             "queries (its ms_per_query; the test runs are timed beside training); needs the models")
    parser.add_argument("--report", action="store_true",
                        help="run nothing: rewrite summary.json, summary.md and status.json from the finished points")
    args = parser.parse_args()
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    OUT = args.out.resolve()
    torch.manual_seed(SEED)
    s = settings(args)
    OUT.mkdir(parents=True, exist_ok=True)
    store = RecordStore(args.work / "records")
    saved = args.work / "settings.json"
    if saved.exists() and json.loads(saved.read_text()) != s:
        raise SystemExit(f"{args.work} holds a grid with other settings ({saved}); use another --work folder.")
    args.work.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(s, indent=2))
    parts = [] if args.report else (args.only or list(PARTS))

    ds = load_dataset(TEST)
    test_run = bm25_run(TEST, OUT / "runs" / "bm25.trec", store)
    train_run = bm25_run(TRAIN, args.work / "bm25-train.trec", store)
    candidates = {q: sorted(docs.items(), key=lambda x: -x[1])[:DEPTH] for q, docs in read_run(test_run).items()}
    if args.test_queries:
        candidates = {q: candidates[q] for q in sorted(candidates)[: args.test_queries]}
    QUERIES = len(candidates) if args.test_queries else len(ds.queries())
    first_stage = {"name": "bm25", "run": _shown(test_run),
                   "ndcg@10": round(float(ndcg10(ds.qrels(), read_run(test_run))), 4)}
    adopt_committed_points(store)
    plan: list[tuple[str, str, callable]] = []

    def report() -> tuple[dict, list[str], list[str]]:
        """summary.json, summary.md and status.json as far as the grid went."""
        summary = write_summary(store, first_stage, ds)
        expected = [f"untrained L={L}" for L in SPLITS] + [f"per-L L={L}" for L in SPLITS] + ["per-L L=0 cls"] \
            + [f"dial L={L}" for L in SPLITS] + [f"student L={L}" for L in STUDENT_SPLITS] + [THREE_LAYER] \
            + [name for name, _, _ in SEED_HEADS] + [f"dial sandwich L={L}" for L in SPLITS] \
            + [cascade_name(c) for c in CASCADES] + [TINYBERT]
        have = {p["name"] for p in summary["points"]}
        missing = [n for n in expected if n not in have]
        # the students' teacher as their points name it (their training records are not in a fresh clone)
        teacher = next((p["teacher"] for p in summary["points"] if p["kind"] == "student"), None)
        lines = targets(summary, ds, teacher)
        write_markdown(summary, lines, missing, s)
        depth_plot(summary, OUT / "depth.png")
        pareto_plot(summary, OUT / "pareto.png")
        (OUT / "status.json").write_text(json.dumps({"complete": not missing, "missing": missing}, indent=2) + "\n")
        return summary, lines, missing

    def point(*a, **fields):
        p = test_point(store, args.work, *a, candidates, ds, args, **fields)
        report()  # after every point, so an interrupted grid is reported as far as it went
        print(f"{p['name']}: nDCG@10 {p['ndcg@10']:.4f}", flush=True)

    if "untrained" in parts:
        for L in sorted(SPLITS, reverse=True):  # the cheap ones first
            plan.append(("untrained", f"untrained L={L}", lambda L=L: point(f"untrained L={L}", "untrained", s["model"], L, "twin", 0)))
    # The twin and the cross-encoder bound the curve and the L = 0 model teaches the students, so they go first.
    per_l = [(6, "twin"), (0, "cls"), (4, "twin"), (5, "twin"), (2, "twin"), (0, "twin")]

    def tested(*names: str) -> bool:
        """Every named point is finished (e.g. adopted from the committed summary): its model need not be trained."""
        return all(f"point-{n}" in store for n in names)

    def per_l_training(L, head):
        name = f"per-L L={L}" + (" cls" if head == "cls" else "")
        return name, train(train_config(s, name.replace(" ", "-").replace("=", ""), args.work, train_run, split=L,
                                        head=head), store, name)

    def per_l_model(L, head):
        if tested(f"per-L L={L}" + (" cls" if head == "cls" else "")):
            return
        name, rec = per_l_training(L, head)
        copy_curve(rec, name)
        point(name, "per-L", rec["best_path"] or rec["model_path"], L, head, rec["best_step"] or rec["steps"])

    if "per-L" in parts:
        for L, head in per_l:
            plan.append(("per-L", f"per-L L={L} {head}", lambda L=L, head=head: per_l_model(L, head)))

    def dial_model():
        if tested(*(f"dial L={L}" for L in SPLITS)):
            return
        rec = train(train_config(s, "dial", args.work, train_run, split=4, dial=True), store, "dial")
        copy_curve(rec, "dial")
        for L in SPLITS:
            point(f"dial L={L}", "dial", rec["best_path"] or rec["model_path"], L, "twin", rec["best_step"] or rec["steps"])

    if "dial" in parts:
        plan.append(("dial", "dial", dial_model))

    def students():
        if tested(*(f"student L={L}" for L in STUDENT_SPLITS), THREE_LAYER):
            return
        # trains them only where their records are missing (a fresh checkout has their points, not their models)
        teacher = best_dev(per_l_training(0, head)[1] for head in ("twin", "cls"))
        path = teacher["best_path"] or teacher["model_path"]
        for L in STUDENT_SPLITS:
            name = f"student L={L}"
            if tested(name):
                continue
            rec = train(train_config(s, f"student-L{L}", args.work, train_run, split=L, teacher=path), store, name)
            copy_curve(rec, name)
            point(name, "student", rec["best_path"] or rec["model_path"], L, "twin", rec["best_step"] or rec["steps"],
                  teacher=teacher["name"])
        name = THREE_LAYER
        if tested(name):
            return
        rec = train(train_config(s, "student-3layer", args.work, train_run, split=3, teacher=path,
                                 student_layers="every_other"), store, name)
        copy_curve(rec, name)
        point(name, "student", rec["best_path"] or rec["model_path"], 3, "twin", rec["best_step"] or rec["steps"],
              teacher=teacher["name"])

    if "student" in parts:
        plan.append(("student", "students", students))

    def seed_head(name, head, options):
        if tested(name):
            return
        L = max(SPLITS)
        rec = train(train_config(s, name.replace(" ", "-").replace("=", ""), args.work, train_run, split=L, head=head,
                                 head_options=options), store, name)
        copy_curve(rec, name)
        point(name, "per-L", rec["best_path"] or rec["model_path"], L, head, rec["best_step"] or rec["steps"],
              head_options=options)

    if "seed-heads" in parts:
        for name, head, options in SEED_HEADS:
            plan.append(("seed-heads", name, lambda a=(name, head, options): seed_head(*a)))

    def sandwich_model():
        if tested(*(f"dial sandwich L={L}" for L in SPLITS)):
            return
        rec = train(train_config(s, "dial-sandwich", args.work, train_run, split=4, dial=True, dial_mode=SANDWICH),
                    store, "dial sandwich")
        copy_curve(rec, "dial sandwich")
        for L in SPLITS:
            point(f"dial sandwich L={L}", "dial", rec["best_path"] or rec["model_path"], L, "twin",
                  rec["best_step"] or rec["steps"], dial_training="sandwich")

    if "sandwich" in parts:
        plan.append(("sandwich", "dial sandwich", sandwich_model))

    def cascades():
        if tested(*(cascade_name(c) for c in CASCADES)):
            return
        # the dial's record (its model is trained first when it is not in --work)
        mode = SANDWICH if CASCADE_DIAL == "dial sandwich" else None
        rec = train(train_config(s, CASCADE_DIAL.replace(" ", "-"), args.work, train_run, split=4, dial=True,
                                 dial_mode=mode), store, CASCADE_DIAL)
        for stages in CASCADES:
            cascade_point(store, args.work, stages, rec, candidates, ds, args)
            report()

    if "cascade" in parts:
        plan.append(("cascade", "cascades", cascades))

    def tinybert_student():
        if tested(TINYBERT):
            return
        # the teacher as the Margin-MSE students have it (trained first where its record is missing)
        teacher = best_dev(per_l_training(0, head)[1] for head in ("twin", "cls"))
        path = teacher["best_path"] or teacher["model_path"]
        rec = train(train_config(s, "student-3layer-tinybert", args.work, train_run, split=0, teacher=path,
                                 student_layers="every_other", tinybert=True), store, TINYBERT)
        copy_curve(rec, TINYBERT)
        point(TINYBERT, "student", rec["best_path"] or rec["model_path"], 0, "twin", rec["best_step"] or rec["steps"],
              teacher=teacher["name"], distillation="tinybert")

    if "tinybert" in parts:
        plan.append(("tinybert", TINYBERT, tinybert_student))

    environment = {"torch": torch.__version__, "machine": platform.machine(), "threads": torch.get_num_threads(),
                   "python": platform.python_version()}
    (OUT / "environment.json").write_text(json.dumps({"settings": s, "environment": environment}, indent=2) + "\n")
    # parts run in the order --only names them (so the trainings can go before untrained L = 0)
    for part in parts:
        for _, label, step in (item for item in plan if item[0] == part):
            print(f"== {label}", flush=True)
            step()
    if args.retime:
        for p in write_summary(store, first_stage, ds)["points"]:
            ms = retime_point(store, args.work, p, candidates, ds, args)
            if ms is None:
                print(f"{p['name']}: not re-timed (its model is not in {args.work})", flush=True)
                continue
            print(f"{p['name']}: {ms:.1f} ms/query (was {p['ms_per_query']:.1f})", flush=True)
            store.put(f"point-{p['name']}", {**p, "ms_per_query": ms})
        write_timings(store)
    summary, lines, missing = report()
    print("\n".join(lines))
    print(f"summary: {OUT / 'summary.json'}" + (f" (incomplete: {len(missing)} points missing)" if missing else ""))


if __name__ == "__main__":
    main()

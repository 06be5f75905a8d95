"""Re-ranking a first-stage run of a dataset into a TREC run, resumably.

Documents are encoded once into a :class:`~lateint.DocCache` (the offline part, itself
resumable), then each query is re-ranked from the cache and written to the run as soon as it is
scored (the online part). Rerunning the same command skips the queries already in the run.
The run is bound to what produced it: ``<run>.ranker.json`` records the ranker's fingerprint (config,
tokenizer and weights), split, run tag, storage and dataset, and a job resuming the run
with anything else is refused rather than mixing two rankers in one run.
Where the layout makes document states depend on the query (``packed`` at L > 0), there is
nothing to cache and pairs are scored end to end.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from lateint.data.datasets import DOC_TEXT, DatasetHandle
from lateint.data.run_types import RankedLists
from lateint.data.runs import ResumableRunWriter, check_run_queries
from lateint.errors import CacheMismatchError, InputError

#: Suffix of the record beside a run naming the ranker and inputs that wrote it.
PRODUCER_SUFFIX = ".ranker.json"


@dataclass
class RerankReport:
    """What a re-rank job did and measured.

    Attributes:
        run_path: the TREC run written.
        queries: queries in the run (including ones done by an earlier, interrupted job).
        scored_now: queries scored by this job.
        latencies_ms: per-query re-rank time of the queries scored now (query encoding, cache
            reads, joint layers and head; not the offline cache build).
        cache_path: the document cache used, if any.
        cache_bytes_per_doc: stored bytes per document (0 without a cache).
        cache_build_seconds: time spent building the cache in this job.
        candidates_per_query: mean number of candidates.
    """

    run_path: str
    queries: int
    scored_now: int
    latencies_ms: list[float] = field(default_factory=list)
    cache_path: str | None = None
    cache_bytes_per_doc: float = 0.0
    cache_build_seconds: float = 0.0
    candidates_per_query: float = 0.0

    @property
    def mean_latency_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def median_latency_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean_latency_ms"] = self.mean_latency_ms
        d["median_latency_ms"] = self.median_latency_ms
        return d


def run_tag(ranker, model_name: str, storage: str) -> str:
    """A TREC run tag naming the model and configuration (no spaces)."""
    c = ranker.config
    parts = [model_name.replace("/", "_"), f"L{ranker.split}of{ranker.num_layers}", c.head.name]
    if c.head.name == "twin":
        parts += [c.head.pooling, c.head.crossing]
    parts += [c.sides.layout, storage]
    if c.dtype != "fp32":
        parts.append(c.dtype)
    return "-".join(parts)


def candidate_docs(candidates: RankedLists) -> list[str]:
    """Every document id in the candidate lists, once, in first-seen order."""
    return list(dict.fromkeys(doc for ranked in candidates.values() for doc, _ in ranked))


def cache_folder_for(root: Path, ranker, storage: str, doc_ids: list[str], dataset: str) -> Path:
    """A cache folder name that changes whenever the configuration or the document set does."""
    c = ranker.config
    settings = c.to_dict()
    if settings["dtype"] == "fp32":  # left out so that fp32 folders keep the names they had before dtype existed
        del settings["dtype"]
    key = json.dumps([settings, storage, dataset, hashlib.sha256("\n".join(sorted(doc_ids)).encode()).hexdigest()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return root / f"L{ranker.split}-{c.head.name}-{storage}-{digest}"


def rerank_dataset(
    ranker,
    dataset: DatasetHandle,
    candidates: RankedLists,
    out: str | Path,
    *,
    tag: str,
    cache_root: str | Path | None = None,
    storage: str = "fp16",
    batch_size: int = 128,
    progress: bool = True,
    cache: str | Path | None = None,
) -> RerankReport:
    """Re-rank ``candidates`` of ``dataset`` with ``ranker`` into the TREC run ``out``.

    Args:
        ranker: the :class:`~lateint.SplitRanker`.
        dataset: the dataset (queries and document texts).
        candidates: query id -> ranked ``(doc_id, score)`` from the first stage.
        out: the run file; if it exists from an interrupted job, its queries are skipped.
        tag: the run tag.
        cache_root: where document caches live (default: beside the run, ``<out>.caches``).
        storage: cache storage (``fp32``, ``fp16``, ``int8``).
        batch_size: candidates per joint batch.
        progress: show progress bars.
        cache: a document cache built beforehand (e.g. over the whole collection with
            ``lateint cache build``) to re-rank from, instead of building one for the candidates;
            it must hold every candidate and fit the ranker.

    Raises:
        InputError: the candidates name queries the dataset does not have, or are empty, or the
            given cache lacks some candidates.
        CacheMismatchError: the given cache was built from another document text.
    """
    out = Path(out)
    queries = check_rerank_inputs(out, dataset, candidates, batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = RerankReport(str(out), 0, 0)
    report.candidates_per_query = statistics.fmean(len(v) for v in candidates.values())
    with ResumableRunWriter(out, tag) as writer:
        bind_run(out, writer, run_producer(ranker, tag, storage, dataset.irds_id, cache))
        pending = writer.pending(candidates.keys())
        cacheable = not (ranker.doc_states_depend_on_query and ranker.split > 0)
        given, cache = cache, None
        if pending and given is not None:
            cache = open_prebuilt_cache(given, candidate_docs({q: candidates[q] for q in pending}))
            report.cache_path = str(given)
            info = cache.info()
            report.cache_bytes_per_doc = sum(f["bytes"] for f in info["fields"].values()) / max(1, info["docs"])
        elif pending and cacheable:
            todo = {q: candidates[q] for q in pending}
            doc_ids = candidate_docs(todo)
            root = Path(cache_root) if cache_root is not None else out.with_name(out.name + ".caches")
            folder = cache_folder_for(root, ranker, storage, candidate_docs(candidates), dataset.irds_id)
            start = time.perf_counter()
            cache = build_candidate_cache(ranker, dataset, doc_ids, folder, storage=storage, progress=progress)
            report.cache_build_seconds = time.perf_counter() - start
            report.cache_path = str(folder)
            info = cache.info()
            report.cache_bytes_per_doc = sum(f["bytes"] for f in info["fields"].values()) / max(1, info["docs"])
        bar = pending
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(pending, desc=f"re-rank L={ranker.split}", unit="query")
        for qid in bar:
            ranked = candidates[qid]
            doc_ids = [d for d, _ in ranked]
            start = time.perf_counter()
            scores = score_candidates(ranker, dataset, queries[qid], doc_ids, cache, batch_size)
            report.latencies_ms.append((time.perf_counter() - start) * 1000)
            writer.write(qid, scores)
            report.scored_now += 1
        report.queries = len(writer.done)
    return report


def check_rerank_inputs(out: Path, dataset: DatasetHandle, candidates: RankedLists, batch_size: int) -> dict[str, str]:
    """The dataset's queries, once the inputs of a re-rank (or a cascade) into ``out`` are checked.

    Raises:
        InputError: ``out`` is a folder, the batch size is not positive, the candidates are empty or
            name queries the dataset does not have, or some of their queries have an empty text.
    """
    from lateint.ranker import check_batch_size

    if out.is_dir():
        raise InputError(f"{out} is a folder; the re-ranked run is one TREC file: give a file path such as {out / 'run.trec'}.")
    check_batch_size(batch_size)
    if not candidates or not any(candidates.values()):
        raise InputError("the first-stage run is empty: there is nothing to re-rank.")
    queries = dataset.queries()
    check_run_queries(candidates, queries.keys(), source="first-stage run")
    blank = [q for q in candidates if not queries[q].strip()]
    if blank:
        raise InputError(f"{len(blank)} queries of {dataset.irds_id!r} have an empty text, e.g. query id(s) "
                         f"{blank[:5]}; drop them from the first-stage run (or give them a text).")
    return queries


def build_candidate_cache(ranker, dataset: DatasetHandle, doc_ids: list[str], folder: Path, *, storage: str,
                          progress: bool):
    """The :class:`~lateint.DocCache` of ``doc_ids`` for ``ranker`` in ``folder`` (built, or resumed, from the
    dataset's document text)."""
    from lateint.cache.doc_cache import DocCache

    texts = dataset.doc_text(doc_ids)
    missing = [d for d in doc_ids if d not in texts]
    if missing:
        raise InputError(f"{len(missing)} candidate documents are not in {dataset.irds_id!r}, e.g. {missing[:5]}.")
    return DocCache.build(ranker, ((d, texts[d]) for d in doc_ids), folder, storage=storage,
                          batch_size=64, progress=progress, total=len(doc_ids), text=DOC_TEXT)


def score_candidates(ranker, dataset: DatasetHandle, query: str, doc_ids: list[str], cache, batch_size: int) -> dict:
    """``{doc_id: score}`` of one query's candidates: from ``cache``, or end to end when there is none (the
    document states depend on the query)."""
    from lateint.reranking import rerank

    if cache is not None:
        return rerank(ranker, query, doc_ids, cache, batch_size=batch_size)
    texts = dataset.doc_text(doc_ids)
    values = ranker.score([query] * len(doc_ids), [texts[d] for d in doc_ids], batch_size=batch_size)
    return dict(zip(doc_ids, values.tolist()))


def run_producer(ranker, tag: str, storage: str, dataset: str, cache: str | Path | None = None) -> dict:
    """What a re-ranked run is bound to: the ranker (fingerprint, split), the tag, the storage or
    prebuilt cache and the dataset. (A resumed job may add queries, so the candidates are not part
    of it.)"""
    from lateint.cache.fingerprint import ranker_fingerprint

    source = {"cache": str(Path(cache).resolve())} if cache is not None else {"storage": storage}
    return {"fingerprint": ranker_fingerprint(ranker), "split": ranker.split, "num_layers": ranker.num_layers,
            "tag": tag, **source, "dataset": dataset}


def bind_run(out: Path, writer: ResumableRunWriter, producer: dict) -> None:
    """Record ``producer`` beside a new run, or check that a run being resumed was written by it.

    Raises:
        CacheMismatchError: the run holds queries written by another ranker, split, tag, storage
            or dataset, or holds queries without a record of what wrote them.
    """
    from lateint.cache.files import atomic_write_bytes

    record = out.with_name(out.name + PRODUCER_SUFFIX)
    if not writer.done:
        atomic_write_bytes(record, json.dumps(producer, indent=2).encode("utf-8"))
        return
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        stored = None
    except (OSError, ValueError):
        stored = {}
    if not isinstance(stored, dict):
        raise CacheMismatchError(
            f"{out} holds {len(writer.done)} re-ranked queries but no readable record of the ranker that wrote them "
            f"({record.name}); resuming could mix two rankers in one run. Write to a new --out (or delete {out}).")
    differs = sorted(k for k in set(stored) | set(producer) if stored.get(k) != producer.get(k))
    if differs:
        shown = "; ".join(f"{k}: run {str(stored.get(k))[:16]!r}, now {str(producer.get(k))[:16]!r}" for k in differs[:4])
        raise CacheMismatchError(
            f"{out} was written by another ranker or setup ({shown}); resuming would mix two in one run. "
            f"Write to a new --out, or rerun with the model and options that wrote it.")


def open_prebuilt_cache(path: str | Path, doc_ids: list[str]):
    """Open the cache at ``path`` for re-ranking ``doc_ids``: it must hold them all and have been
    built from the text re-ranking uses (:data:`~lateint.data.datasets.DOC_TEXT`)."""
    from lateint.cache.doc_cache import DocCache
    from lateint.errors import CacheMismatchError

    cache = DocCache.open(path)
    text = cache.reader.metadata.get("text")
    if text != DOC_TEXT:
        raise CacheMismatchError(
            f"the document cache at {path} was built from document text {text or 'of unknown origin'!r}, but "
            f"re-ranking reads {DOC_TEXT!r}; build the cache with `lateint cache build` (which uses the same text)")
    missing = cache.reader.missing(doc_ids)
    if missing:
        raise InputError(f"{len(missing)} of {len(doc_ids)} candidate documents are not in the cache at {path}, e.g. "
                         f"{missing[:5]}; build it over a collection that includes them, or drop --cache")
    return cache


def as_run(candidates: Mapping[str, list]) -> dict[str, dict[str, float]]:
    """Ranked lists back to a plain run dict."""
    return {q: dict(v) for q, v in candidates.items()}

"""``cascade``: re-rank a first stage in stages along one checkpoint's dial.

A cascade is a list of stages ``(split, depth)``: the first re-ranks the top ``depth`` of the first
stage at its split, each next one re-ranks the top ``depth`` of the ranking before it at its own
split, e.g. the twin over the BM25 top-100, then L = 4 over its top 30, then L = 0 over their top
10. Cheap stages thin the candidates for the expensive ones, so that full interaction is paid for
only where the ranking is decided.

The ranking written keeps the last stage's order (and scores) on top; below it, the documents each
earlier stage saw but did not pass on keep that stage's order. Scores below the last stage's are
steps of 1 under its lowest score, so the TREC run sorts the same way (stages' raw scores are not
comparable with one another).

Every stage reads a document cache of its own split (built once over every candidate, resumably,
as ``lateint rerank`` builds one); the run is written one query at a time as ``lateint rerank``
writes it, so an interrupted cascade resumes; ``<run>.json`` holds each stage's timing.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from lateint.errors import InputError


@dataclass(frozen=True)
class Stage:
    """One stage: re-rank the top ``depth`` of the ranking before it at ``split``."""

    split: int
    depth: int

    def to_dict(self) -> dict[str, int]:
        return {"split": self.split, "depth": self.depth}


def parse_stages(text: str) -> list[Stage]:
    """``"6:100,4:30,0:10"`` -> stages ``(split, depth)`` (not yet checked against a model)."""
    stages = []
    for part in str(text).split(","):
        split, sep, depth = part.strip().partition(":")
        try:
            stages.append(Stage(int(split), int(depth)))
        except ValueError:
            raise InputError(f"cascade stage {part.strip()!r} is not SPLIT:DEPTH; write the stages as e.g. "
                             "6:100,4:30,0:10 (the twin over 100, then L=4 over its top 30, then L=0 over 10).") from None
    return stages


def check_stages(stages: Iterable[Any], max_split: int) -> list[Stage]:
    """The stages as :class:`Stage` (from ``Stage``, ``(split, depth)`` or ``{"split", "depth"}``), checked.

    Raises:
        InputError: no stage, a depth below 1, a split outside ``0..max_split`` (the ranker's
            :attr:`~lateint.SplitRanker.max_split`), or depths that do not
            decrease from stage to stage.
    """
    checked = []
    for stage in stages:
        if isinstance(stage, dict) and set(stage) == {"split", "depth"}:
            stage = Stage(stage["split"], stage["depth"])
        elif isinstance(stage, (tuple, list)) and len(stage) == 2:
            stage = Stage(*stage)
        if not isinstance(stage, Stage) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                   for v in (stage.split, stage.depth)):
            raise InputError(f"a cascade stage must be (split, depth) integers or {{'split': ..., 'depth': ...}}, "
                             f"got {stage!r}.")
        checked.append(stage)
    if not checked:
        raise InputError("a cascade needs at least one stage (split, depth).")
    for i, stage in enumerate(checked, 1):
        if stage.depth < 1:
            raise InputError(f"cascade stage {i} re-ranks depth {stage.depth}; a stage needs a depth of at least 1.")
        if not 0 <= stage.split <= max_split:
            raise InputError(f"cascade stage {i} is at split {stage.split}, but the model runs splits 0..{max_split}; "
                             f"use a split in that range.")
    for i, (before, after) in enumerate(zip(checked, checked[1:]), 2):
        if after.depth >= before.depth:
            raise InputError(f"cascade stage {i} re-ranks {after.depth} documents after stage {i - 1} re-ranked "
                             f"{before.depth}; each stage must re-rank fewer documents than the one before it.")
    return checked


def merge_stages(rankings: list[list[tuple[str, float]]]) -> dict[str, float]:
    """The cascade's final scores from each stage's ranking (best first; each a prefix of the one before's
    candidates): the last stage's scores on top, then each earlier stage's remaining documents in its order,
    scored in steps of 1 under the lowest score above them."""
    final = dict(rankings[-1])
    floor = min(final.values(), default=0.0)
    for ranking in reversed(rankings[:-1]):
        for doc, _ in ranking:
            if doc not in final:
                floor -= 1.0
                final[doc] = floor
    return final


@dataclass
class CascadeReport:
    """What a cascade job did and measured.

    Attributes:
        run_path: the TREC run written.
        stages: the stages, with each one's cache, bytes per document, cache build time and per-query
            re-ranking times (of the queries scored now).
        queries: queries in the run (including ones done by an earlier, interrupted job).
        scored_now: queries scored by this job.
        latencies_ms: per-query end-to-end re-ranking time (every stage) of the queries scored now.
    """

    run_path: str
    stages: list[dict] = field(default_factory=list)
    queries: int = 0
    scored_now: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def median_latency_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    def to_dict(self) -> dict:
        def summary(values):
            return {"median_ms": statistics.median(values) if values else None,
                    "mean_ms": statistics.fmean(values) if values else None}

        return {"run_path": self.run_path, "queries": self.queries, "scored_now": self.scored_now,
                "end_to_end": summary(self.latencies_ms),
                "stages": [{**s, **summary(s["latencies_ms"])} for s in self.stages],
                "latencies_ms": self.latencies_ms}


def cascade(
    ranker,
    dataset,
    candidates,
    out: str | Path,
    *,
    stages: Iterable[Any],
    tag: str = "cascade",
    cache_root: str | Path | None = None,
    storage: str = "fp16",
    batch_size: int = 128,
    progress: bool = True,
) -> CascadeReport:
    """Re-rank ``candidates`` of ``dataset`` in ``stages`` along ``ranker``'s dial into the TREC run ``out``.

    Args:
        ranker: the :class:`~lateint.SplitRanker` (its split does not matter: each stage takes its own).
        dataset: the dataset (queries and document texts).
        candidates: query id -> ranked ``(doc_id, score)`` from the first stage, best first.
        out: the run file; if it exists from an interrupted job, its queries are skipped. ``<out>.json``
            receives the report (each stage's timing).
        stages: ``(split, depth)`` pairs, :class:`Stage` or ``{"split", "depth"}``, first stage first; depths
            must decrease.
        tag: the run tag.
        cache_root: where the stages' document caches live (default: beside the run, ``<out>.caches``).
        storage: cache storage (``fp32``, ``fp16``, ``int8``).
        batch_size: candidates per joint batch.
        progress: show progress bars.

    Raises:
        InputError: the stages make no sense (see :func:`check_stages`), the candidates are empty or name
            queries the dataset does not have, or a candidate is not in the dataset.
    """
    from lateint.cache.files import atomic_write_bytes
    from lateint.data.runs import ResumableRunWriter
    from lateint.pipeline.rerank_run import (bind_run, build_candidate_cache, cache_folder_for, candidate_docs, check_rerank_inputs,
                                             run_producer, score_candidates)
    stages = check_stages(stages, ranker.max_split)
    out = Path(out)
    queries = check_rerank_inputs(out, dataset, candidates, batch_size)
    # what the first stage re-ranks: its top depth, each document once
    firsts = {q: list(dict.fromkeys(d for d, _ in ranked))[: stages[0].depth] for q, ranked in candidates.items()}
    root = Path(cache_root) if cache_root is not None else out.with_name(out.name + ".caches")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = CascadeReport(str(out))
    with ResumableRunWriter(out, tag) as writer:
        # a resumed cascade must be the same checkpoint, stages and storage, or the run would mix two
        bind_run(out, writer, {**run_producer(ranker, tag, storage, dataset.irds_id),
                               "stages": [stage.to_dict() for stage in stages]})
        pending = writer.pending(firsts.keys())
        views, caches = [], []
        # any candidate may reach any stage, so every stage's cache holds them all (built once, offline)
        doc_ids = candidate_docs({q: [(d, 0.0) for d in firsts[q]] for q in pending})
        every_doc = candidate_docs({q: [(d, 0.0) for d in docs] for q, docs in firsts.items()})
        for stage in stages:
            view = ranker.at(stage.split)
            record = {**stage.to_dict(), "cache": None, "bytes_per_doc": 0.0, "cache_build_seconds": 0.0,
                      "latencies_ms": []}
            cache = None
            if pending and not (view.doc_states_depend_on_query and view.split > 0):
                folder = cache_folder_for(root, view, storage, every_doc, dataset.irds_id)
                start = time.perf_counter()
                cache = build_candidate_cache(view, dataset, doc_ids, folder, storage=storage, progress=progress)
                info = cache.info()
                record.update(cache=str(folder), cache_build_seconds=time.perf_counter() - start,
                              bytes_per_doc=sum(f["bytes"] for f in info["fields"].values()) / max(1, info["docs"]))
            views.append(view)
            caches.append(cache)
            report.stages.append(record)
        bar = pending
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(pending, desc="cascade " + " > ".join(f"L={s.split}@{s.depth}" for s in stages), unit="query")
        for qid in bar:
            docs, rankings, total = firsts[qid], [], 0.0
            for stage, view, cache, record in zip(stages, views, caches, report.stages):
                docs = docs[: stage.depth]
                start = time.perf_counter()
                scores = score_candidates(view, dataset, queries[qid], docs, cache, batch_size)
                elapsed = (time.perf_counter() - start) * 1000
                record["latencies_ms"].append(elapsed)
                total += elapsed
                # best first, ties by document id (as first-stage runs are ranked)
                ranking = sorted(scores.items(), key=lambda x: (-x[1], x[0]))
                rankings.append(ranking)
                docs = [d for d, _ in ranking]
            report.latencies_ms.append(total)
            writer.write(qid, merge_stages(rankings))
            report.scored_now += 1
        report.queries = len(writer.done)
    # whole or not at all, as the cache's own files are written
    atomic_write_bytes(Path(str(out) + ".json"), (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return report

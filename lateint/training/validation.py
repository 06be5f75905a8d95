"""Validation while training: nDCG@10 of the student on a dev query set, measured with ``ranx``.

The dev set is either a fraction of the training dataset's judged queries held out of training
(``[validation] holdout``) or the judged queries of another dataset (``[validation] dataset``);
its candidates are the top ``depth`` of a first-stage run, re-ranked by the student at the
config's split. Dev sets are small (hundreds of queries), so they are held in memory.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from lateint.errors import InputError

#: The measure validation tracks, as ``ranx`` names it, and its name in the loss log.
DEV_METRIC = "ndcg@10"
DEV_LOG_KEY = "dev_ndcg@10"
#: With several validation splits, the loss log and ``best.json`` also keep each split's value.
DEV_BY_SPLIT_KEY = "dev_ndcg@10_by_split"


def holdout_queries(qids: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded sample of ``fraction`` of ``qids`` (at least one), sorted: the dev queries held
    out of training."""
    if not fraction:
        return []
    count = max(1, round(fraction * len(qids)))
    if count >= len(qids):
        raise InputError(f"validation.holdout={fraction} leaves no training query out of {len(qids)}.")
    return sorted(random.Random(f"holdout:{seed}").sample(sorted(qids), count))


@dataclass
class DevSet:
    """Dev queries, their candidates and judgements.

    Attributes:
        queries: query id -> text.
        candidates: query id -> candidate document ids, best first.
        docs: document id -> text of every candidate.
        qrels: query id -> document id -> grade.
    """

    queries: dict[str, str]
    candidates: dict[str, list[str]]
    docs: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def __len__(self) -> int:
        return len(self.candidates)


def dev_set(config) -> DevSet | None:
    """The dev set of a :class:`~lateint.training.config.TrainConfig` (None without validation)."""
    from lateint.data import load_dataset
    from lateint.training.groups import judged_query_ids

    v, data = config.validation, config.data
    if not v.every:
        return None
    own = not v.dataset or v.dataset == data.dataset
    ds = load_dataset(data.dataset if own else v.dataset)
    queries, qrels = ds.queries(), ds.qrels()
    judged = judged_query_ids(queries, qrels)
    qids = holdout_queries(judged, v.holdout, config.seed) if own else judged
    if v.max_queries and len(qids) > v.max_queries:
        qids = sorted(random.Random(f"dev:{config.seed}").sample(qids, v.max_queries))
    run = v.run if v.run is not None else (data.run if own else None)
    ranked = ds.candidates(run, v.depth)
    candidates = {q: [doc for doc, _ in ranked[q]] for q in qids if ranked.get(q)}
    if not candidates:
        raise InputError(f"no dev query of {ds.name!r} has first-stage candidates to re-rank.")
    docs = ds.doc_text({d for ids in candidates.values() for d in ids})
    return DevSet({q: queries[q] for q in candidates}, candidates, docs, {q: qrels[q] for q in candidates})


def validation_splits(settings, student) -> list[int]:
    """The splits dev nDCG@10 is measured at: ``settings.splits``, or the student's own split."""
    from lateint.training.students import check_split_range

    if settings.splits is None:
        return [student.split]
    check_split_range(settings.splits, student, "validation.splits")
    return list(settings.splits)


def dev_record(by_split: dict[int, float]) -> dict:
    """The validation fields of a loss-log record (and of ``best.json``): the mean over the
    splits measured, and each split's value when there are several."""
    record: dict = {DEV_LOG_KEY: statistics.fmean(by_split.values())}
    if len(by_split) > 1:
        record[DEV_BY_SPLIT_KEY] = {str(L): v for L, v in by_split.items()}
    return record


def dev_ndcg(ranker, dev: DevSet, *, batch_size: int = 64) -> float:
    """Mean nDCG@10 (``ranx``) of ``ranker``'s re-ranking of the dev candidates."""
    import ranx
    import torch

    pairs = [(q, d) for q, ids in dev.candidates.items() for d in ids]
    with torch.no_grad():
        scores = ranker.score([dev.queries[q] for q, _ in pairs], [dev.docs[d] for _, d in pairs],
                              batch_size=batch_size).tolist()
    run: dict[str, dict[str, float]] = {}
    for (q, d), s in zip(pairs, scores):
        run.setdefault(q, {})[d] = float(s)
    return float(ranx.evaluate(ranx.Qrels(dev.qrels), ranx.Run(run), DEV_METRIC))


def dev_history(log_path: Path) -> list[tuple[int, float]]:
    """``(step, dev nDCG@10)`` of every validation in a loss log."""
    if not log_path.is_file():
        return []
    out = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if DEV_LOG_KEY in row:
            out.append((int(row["step"]), float(row[DEV_LOG_KEY])))
    return out


def best_of(history: list[tuple[int, float]]) -> tuple[int | None, float | None, int]:
    """The best step and value of a validation history, and how many validations followed it."""
    best_step, best_value, since = None, None, 0
    for step, value in history:
        if best_value is None or value > best_value:
            best_step, best_value, since = step, value, 0
        else:
            since += 1
    return best_step, best_value, since

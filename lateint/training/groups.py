"""Training groups: one query, one judged positive, n negatives from a first-stage run.

The inputs are plain dicts (query id -> text, query id -> judged documents, query id -> ranked
candidates) and a callable that fetches document texts, so groups can be built from any source;
:func:`groups_from_dataset` adapts a :mod:`lateint.data` dataset. Everything random is drawn from
generators seeded by ``(seed, query id, positive)``, so a group does not change when other queries
are added or removed, and the same inputs and seed always give the same groups.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lateint.errors import InputError

logger = logging.getLogger(__name__)

#: ``doc_text(ids) -> {id: text}``.
DocTextFn = Callable[[list[str]], Mapping[str, str]]


@dataclass(frozen=True)
class TrainingGroup:
    """One query with its candidate documents, the positive first.

    Attributes:
        qid: the query id.
        query: the query text.
        doc_ids: the documents' ids, positive first.
        docs: the documents' texts, aligned with ``doc_ids``.
        labels: 1.0 for the positive, 0.0 for negatives, aligned with ``doc_ids``.
        teacher_scores: the teacher's scores of the documents when they come with the data
            (a score file), aligned with ``doc_ids``; None otherwise.
    """

    qid: str
    query: str
    doc_ids: tuple[str, ...]
    docs: tuple[str, ...]
    labels: tuple[float, ...]
    teacher_scores: tuple[float, ...] | None = None

    def __len__(self) -> int:
        return len(self.doc_ids)


def _rng(seed: int, *parts: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so this is stable across runs and platforms.
    return random.Random(":".join([str(seed), *parts]))


def select_negatives(
    candidates: Sequence[tuple[str, float]],
    judged: Mapping[str, int],
    n: int,
    *,
    depth: int,
    min_relevance: int,
    rng: random.Random,
) -> list[str] | None:
    """Sample ``n`` negatives from the top ``depth`` candidates, leaving out judged positives.

    Returns None when fewer than ``n`` candidates are left (the query cannot fill a group).
    """
    pool = [doc for doc, _ in candidates[:depth] if judged.get(doc, 0) < min_relevance]
    pool = list(dict.fromkeys(pool))
    if len(pool) < n:
        return None
    return rng.sample(pool, n)


def build_groups(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    candidates: Mapping[str, Sequence[tuple[str, float]]] | None,
    doc_text: DocTextFn,
    *,
    negatives: int,
    depth: int = 100,
    min_relevance: int = 1,
    max_positives: int = 0,
    qids: Iterable[str] | None = None,
    seed: int = 0,
) -> list[TrainingGroup]:
    """Build training groups ``(query, [positive, negatives...], labels)``.

    Each judged positive (grade ``>= min_relevance``) of a query gives one group. Queries without a
    text, without a positive, or (when ``negatives > 0``) with fewer than ``negatives`` unjudged or
    non-relevant candidates in the top ``depth`` are skipped (and counted in a log message).

    Args:
        queries: query id -> text.
        qrels: query id -> document id -> relevance grade.
        candidates: query id -> ``[(doc_id, score), ...]`` best first (a first-stage run); may be
            None when ``negatives == 0`` (in-batch negatives).
        doc_text: fetches the texts of a list of document ids.
        negatives: n, negatives per group (0: the group is the positive alone).
        depth: negatives are drawn from the top ``depth`` candidates.
        min_relevance: lowest grade that counts as relevant.
        max_positives: at most this many positives per query (a seeded sample); 0 keeps all.
        qids: restrict to these queries (e.g. one fold's training queries).
        seed: the sampling seed.

    Returns:
        Groups ordered by query id, then by positive document id.

    Raises:
        InputError: negative counts, or ``doc_text`` did not return a text for a needed document.
    """
    if negatives < 0 or depth < 1:
        raise InputError(f"negatives must be >= 0 and depth >= 1, got {negatives} and {depth}.")
    if negatives > 0 and candidates is None:
        raise InputError("negatives from a run need candidates (a first-stage run).")
    wanted = sorted(set(qids) if qids is not None else set(queries))
    plan: list[tuple[str, str, list[str]]] = []
    skipped = {"no text": 0, "no positive": 0, "too few candidates": 0}
    for qid in wanted:
        if not queries.get(qid, "").strip():
            skipped["no text"] += 1
            continue
        judged = qrels.get(qid, {})
        positives = sorted(doc for doc, grade in judged.items() if grade >= min_relevance)
        if not positives:
            skipped["no positive"] += 1
            continue
        if max_positives and len(positives) > max_positives:
            positives = sorted(_rng(seed, qid, "positives").sample(positives, max_positives))
        for pos in positives:
            if negatives == 0:
                plan.append((qid, pos, []))
                continue
            negs = select_negatives(
                (candidates or {}).get(qid, []), judged, negatives,
                depth=depth, min_relevance=min_relevance, rng=_rng(seed, qid, pos),
            )
            if negs is None:
                skipped["too few candidates"] += 1
                break
            plan.append((qid, pos, negs))
    if any(skipped.values()):
        logger.info("training groups: skipped queries: %s", ", ".join(f"{k}: {v}" for k, v in skipped.items() if v))
    needed = list(dict.fromkeys(doc for _, pos, negs in plan for doc in [pos, *negs]))
    texts = dict(doc_text(needed)) if needed else {}
    # A judged positive can be absent from a partial collection (the local MS MARCO subset holds
    # only what the runs retrieved): its groups are dropped, and said so.
    lost = sorted({pos for _, pos, _ in plan if not str(texts.get(pos, "")).strip()})
    if lost:
        plan = [entry for entry in plan if entry[1] not in set(lost)]
        logger.warning("training groups: %d judged positive(s) have no text in the collection and were "
                       "left out, e.g. %s", len(lost), lost[:5])
    needed = list(dict.fromkeys(doc for _, pos, negs in plan for doc in [pos, *negs]))
    missing = [doc for doc in needed if not str(texts.get(doc, "")).strip()]
    if missing:
        raise InputError(
            f"no text for {len(missing)} document(s) needed by training groups, e.g. {missing[:5]}; "
            "doc_text must return a non-empty text for every id it is given."
        )
    return [
        TrainingGroup(
            qid=qid,
            query=queries[qid],
            doc_ids=(pos, *negs),
            docs=tuple(texts[d] for d in (pos, *negs)),
            labels=(1.0,) + (0.0,) * len(negs),
        )
        for qid, pos, negs in plan
    ]


def kfold(qids: Iterable[str], k: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Split query ids into k folds: ``[(train_qids, test_qids), ...]``, one pair per fold.

    The ids (duplicates removed) are shuffled with ``seed`` and dealt into k folds whose sizes
    differ by at most one. The test sets are disjoint and together cover every id once; each
    fold's training set is every other id. Both lists are sorted.

    Raises:
        InputError: ``k < 2`` or more folds than ids.
    """
    ids = sorted(set(qids))
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise InputError(f"k must be an integer >= 2, got {k!r}.")
    if k > len(ids):
        raise InputError(f"cannot split {len(ids)} queries into {k} folds; use k <= {len(ids)}.")
    order = list(ids)
    random.Random(f"kfold:{seed}").shuffle(order)
    folds = [sorted(order[i::k]) for i in range(k)]
    out = []
    for i, test in enumerate(folds):
        held = set(test)
        out.append(([q for q in ids if q not in held], test))
    return out


def judged_query_ids(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The queries that have judgements and a text, sorted: what training groups and
    cross-validation folds are drawn from (with :func:`kfold`), so that both agree."""
    return sorted(q for q in qrels if q in queries)


def groups_from_dataset(settings, seed: int = 0, validation=None) -> list[TrainingGroup]:
    """Training groups for :class:`~lateint.training.config.DataSettings` from ``lateint.data``.

    Loads ``settings.dataset`` with :func:`lateint.data.load_dataset`, takes the candidates of
    ``settings.run`` to ``settings.depth``, leaves out the dev queries that ``validation`` (a
    :class:`~lateint.training.config.ValidationSettings`) holds out, applies the fold split and the
    query limit, and calls :func:`build_groups`.
    """
    from lateint.data import load_dataset

    if not settings.dataset:
        raise InputError("data.dataset is not set: name the dataset to train on (an ir_datasets id).")
    ds = load_dataset(settings.dataset)
    queries = ds.queries()
    qrels = ds.qrels()
    qids = judged_query_ids(queries, qrels)
    if validation is not None and validation.holdout and validation.dataset in ("", settings.dataset):
        from lateint.training.validation import holdout_queries

        dev = set(holdout_queries(qids, validation.holdout, seed))
        qids = [q for q in qids if q not in dev]
    if settings.folds:
        qids = kfold(qids, settings.folds, seed)[settings.fold][0]
    if settings.max_queries and len(qids) > settings.max_queries:
        qids = sorted(random.Random(f"queries:{seed}").sample(qids, settings.max_queries))
    candidates = None
    if settings.negative_source == "run":
        candidates = ds.candidates(settings.run, settings.depth)
    # judged positives missing from a partial collection are left out by build_groups, with a warning
    return build_groups(
        queries,
        qrels,
        candidates,
        functools.partial(ds.doc_text, missing_ok=True),
        negatives=settings.negatives,
        depth=settings.depth,
        min_relevance=settings.min_relevance,
        max_positives=settings.max_positives,
        qids=qids,
        seed=seed,
    )

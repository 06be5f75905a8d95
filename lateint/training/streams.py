"""Training groups read as streams, in memory that does not grow with the files.

Training sets at MS MARCO scale are tens of millions of lines (39.8M docpairs in
``msmarco-passage/train/triples-small``, 478M scoreddocs in ``msmarco-passage/train/judged``, about
40M lines of public Margin-MSE teacher scores), so they are never loaded whole:

* :func:`docpair_groups`: the dataset's docpairs ``(query, positive, negative)``;
* :func:`pairs_tsv_groups`: Hofstätter et al.'s Margin-MSE teacher scores,
  ``score_pos<TAB>score_neg<TAB>qid<TAB>pid_pos<TAB>pid_neg``, which define the pairs and their
  soft labels;
* :func:`run_groups`: qrels with a run (a TREC file, the dataset's scoreddocs, or a TREC run of
  teacher scores), read query by query: one query's candidates are held at a time.

Streams yield groups of ids only (empty texts); :class:`TextLookup` fills in the texts of the
groups that are actually trained on, through the dataset's docstore and a query store.
A malformed line raises :class:`~lateint.errors.InputError` naming the file and the line number.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from lateint.data.runs import parse_run_line
from lateint.data.text_files import parse_score, text_lines
from lateint.errors import InputError
from lateint.training.groups import TrainingGroup, _rng, select_negatives

logger = logging.getLogger(__name__)

#: ``[distill] scores_format`` choices.
SCORES_FORMATS = ("pairs_tsv", "trec")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise InputError(f"{path} does not exist: name an existing file.")
    return text_lines(path, "training file")


def _float(text: str, path: Path, number: int, what: str) -> float:
    try:
        value = parse_score(text, f"{path}:{number}", what)
    except InputError:
        raise InputError(f"{path}:{number}: {what} {text!r} is not a number written in plain ASCII.") from None
    if not math.isfinite(value):
        raise InputError(f"{path}:{number}: {what} {text!r} is not a finite number.")
    return value


def _group(qid: str, doc_ids: tuple[str, ...], labels: tuple[float, ...], teacher=None) -> TrainingGroup:
    return TrainingGroup(qid=qid, query="", doc_ids=doc_ids, docs=(), labels=labels, teacher_scores=teacher)


# -- pair files -----------------------------------------------------------------------------------
def pairs_tsv_groups(path: str | os.PathLike) -> Iterator[TrainingGroup]:
    """Groups ``(positive, negative)`` with teacher scores from a Margin-MSE score file.

    Each line is ``score_pos<TAB>score_neg<TAB>qid<TAB>pid_pos<TAB>pid_neg`` (plain or ``.gz``).

    Raises:
        InputError: a line without five fields or with a score that is not a finite number.
    """
    path = Path(path)
    for number, line in _lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 5 or not all(f.strip() for f in fields):
            raise InputError(
                f"{path}:{number}: expected 5 tab-separated fields "
                f"(score_pos, score_neg, qid, pid_pos, pid_neg), got {len(fields)}: {line.strip()[:80]!r}"
            )
        s_pos = _float(fields[0].strip(), path, number, "score_pos")
        s_neg = _float(fields[1].strip(), path, number, "score_neg")
        qid, pos, neg = (f.strip() for f in fields[2:])
        yield _group(qid, (pos, neg), (1.0, 0.0), (s_pos, s_neg))


def docpair_groups(dataset) -> Iterator[TrainingGroup]:
    """Groups ``(positive, negative)`` from a dataset's docpairs (``ir_datasets`` ``docpairs_iter``)."""
    if not dataset.dataset.has_docpairs():
        raise InputError(
            f"dataset {dataset.irds_id!r} has no docpairs; data.negative_source = 'docpairs' needs a dataset "
            "with (query, positive, negative) pairs, such as msmarco-passage/train/triples-small."
        )
    with dataset._reading("docpairs"):
        for pair in dataset.dataset.docpairs_iter():
            yield _group(pair.query_id, (pair.doc_id_a, pair.doc_id_b), (1.0, 0.0))


# -- runs read query by query ---------------------------------------------------------------------
def trec_run_blocks(path: str | os.PathLike) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """``(qid, [(doc_id, score), ...])`` for each query of a TREC run file, in file order.

    The lines of a query must be consecutive (as every TREC run writer leaves them); only one
    query's lines are held at a time, and the ids of the queries already read.

    Raises:
        InputError: a line that is not ``qid Q0 doc_id rank score tag``, a query whose lines are
            not consecutive, or a document given twice for one query (which of its scores would
            count is not for the reader to guess).
    """
    path = Path(path)
    current, block, where = None, {}, {}
    finished: set[str] = set()
    for number, line in _lines(path):
        if not line.strip():
            continue
        qid, doc, _, score, _ = parse_run_line(line, f"{path}:{number}")
        if qid != current:
            if qid in finished:
                raise InputError(f"{path}:{number}: the lines of query {qid!r} are not consecutive (it appeared "
                                 f"before another query); sort the run by query, e.g. sort -s -k1,1")
            if block:
                yield current, list(block.items())
                finished.add(current)
            current, block, where = qid, {}, {}
        if doc in block:
            raise InputError(f"{path}:{number}: document {doc!r} appears twice for query {qid!r} (first at line "
                             f"{where[doc]}); give each document once per query")
        block[doc], where[doc] = score, number
    if block:
        yield current, list(block.items())


def scoreddocs_blocks(dataset) -> Iterator[tuple[str, list[tuple[str, float]]]]:
    """``(qid, [(doc_id, score), ...])`` for each query of a dataset's scoreddocs, in order."""
    dataset._require("scoreddocs")
    with dataset._reading("scoreddocs"):
        scored = dataset.dataset.scoreddocs_iter()
        finished: set[str] = set()
        for qid, rows in itertools.groupby(scored, key=lambda s: s.query_id):
            if qid in finished:
                raise InputError(f"the scoreddocs of {dataset.irds_id!r} give query {qid!r} in two separate "
                                 f"places; a streamed run needs each query's lines together")
            finished.add(qid)
            yield qid, [(s.doc_id, float(s.score)) for s in rows]


def _ranked(block: list[tuple[str, float]], depth: int | None) -> list[tuple[str, float]]:
    # the order of lateint.data.rank_run: score descending, ties by document id
    best: dict[str, float] = {}
    for doc, score in block:
        if doc not in best or score > best[doc]:
            best[doc] = score
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:depth] if depth else ranked


def run_groups(
    blocks: Iterable[tuple[str, list[tuple[str, float]]]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    negatives: int,
    depth: int,
    min_relevance: int = 1,
    max_positives: int = 0,
    qids: set[str] | None = None,
    seed: int = 0,
    teacher_scores: bool = False,
    has_doc=None,
) -> Iterator[TrainingGroup]:
    """Groups ``(positive, negatives...)`` built query by query from a run's blocks.

    Each judged positive of a query gives one group whose negatives are sampled exactly as
    :func:`~lateint.training.groups.build_groups` samples them (seeded by query and positive).

    Args:
        blocks: ``(qid, [(doc_id, score), ...])`` per query (see :func:`trec_run_blocks`).
        qrels: query id -> document id -> grade.
        negatives, depth, min_relevance, max_positives, seed: as for ``build_groups``.
        qids: train on these queries only (None: every query of the run).
        teacher_scores: the run's scores are the teacher's: each group carries its documents'
            scores, and a positive the run does not score cannot form a group.
        has_doc: ``has_doc(ids) -> set`` of the ids that have a text (positives without one are
            left out, as from a partial collection).
    """
    for qid, block in blocks:
        if qids is not None and qid not in qids:
            continue
        judged = qrels.get(qid, {})
        positives = sorted(doc for doc, grade in judged.items() if grade >= min_relevance)
        if teacher_scores:
            scored = {doc: score for doc, score in block}
            positives = [p for p in positives if p in scored]
        if has_doc is not None and positives:
            present = has_doc(positives)
            positives = [p for p in positives if p in present]
        if not positives:
            continue
        if max_positives and len(positives) > max_positives:
            positives = sorted(_rng(seed, qid, "positives").sample(positives, max_positives))
        ranked = _ranked(block, depth)
        for pos in positives:
            negs = select_negatives(ranked, judged, negatives, depth=depth, min_relevance=min_relevance,
                                    rng=_rng(seed, qid, pos))
            if negs is None:
                break
            ids = (pos, *negs)
            teacher = tuple(scored[d] for d in ids) if teacher_scores else None
            yield _group(qid, ids, (1.0,) + (0.0,) * len(negs), teacher)


# -- texts ----------------------------------------------------------------------------------------
class TextLookup:
    """Fills in the texts of id-only groups through a dataset's docstore and query store.

    Raises (when called):
        InputError: a query or document the groups name is not in the dataset.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def has_docs(self, doc_ids: list[str]) -> set[str]:
        return set(self.dataset.doc_text(doc_ids, missing_ok=True))

    def __call__(self, groups: list[TrainingGroup]) -> list[TrainingGroup]:
        queries = self.dataset.query_text([g.qid for g in groups])
        docs = self.dataset.doc_text([d for g in groups for d in g.doc_ids])
        return [dataclasses.replace(g, query=queries[g.qid], docs=tuple(docs[d] for d in g.doc_ids)) for g in groups]


# -- the training source of a config --------------------------------------------------------------
def training_qids(config, dataset) -> set[str] | None:
    """The queries a run may train on when the config leaves some out (folds, dev holdout, a query
    limit), else None (every query)."""
    import random

    from lateint.training.groups import judged_query_ids, kfold
    from lateint.training.validation import holdout_queries

    d, v = config.data, config.validation
    held = v.holdout and (not v.dataset or v.dataset == d.dataset)
    if not (d.folds or held or d.max_queries):
        return None
    qids = judged_query_ids(dataset.queries(), dataset.qrels())
    if held:
        dev = set(holdout_queries(qids, v.holdout, config.seed))
        qids = [q for q in qids if q not in dev]
    if d.folds:
        qids = kfold(qids, d.folds, config.seed)[d.fold][0]
    if d.max_queries and len(qids) > d.max_queries:
        qids = sorted(random.Random(f"queries:{config.seed}").sample(qids, d.max_queries))
    return set(qids)


def group_stream(config, dataset) -> Iterator[TrainingGroup]:
    """One epoch of a config's id-only training groups, read from its stream.

    ``docpairs`` come from the score file (``distill.scores_format = "pairs_tsv"``) or the
    dataset's docpairs; ``run`` groups are built query by query from the teacher's TREC run
    (``scores_format = "trec"``), the run file ``data.run`` or the dataset's scoreddocs.
    """
    from lateint.data.first_stage import run_file

    d, dist = config.data, config.distill
    qids = training_qids(config, dataset)
    if d.negative_source == "docpairs":
        pairs = (pairs_tsv_groups(dist.scores_file) if dist.scores_file is not None and dist.scores_format == "pairs_tsv"
                 else docpair_groups(dataset))
        return (g for g in pairs if qids is None or g.qid in qids)
    if d.negative_source != "run":
        raise InputError(f"data.negative_source={d.negative_source!r} cannot be streamed; use 'run' or 'docpairs'.")
    teacher = dist.scores_file is not None and dist.scores_format == "trec"
    if teacher:
        blocks = trec_run_blocks(dist.scores_file)
    else:
        path = run_file(dataset, d.run)  # names resolve as for every other first stage
        blocks = scoreddocs_blocks(dataset) if path is None else trec_run_blocks(path)
    lookup = TextLookup(dataset)
    return run_groups(
        blocks, dataset.qrels(), negatives=d.negatives, depth=d.depth, min_relevance=d.min_relevance,
        max_positives=d.max_positives, qids=qids, seed=config.seed, teacher_scores=teacher, has_doc=lookup.has_docs,
    )


def group_source(config):
    """What a trainer draws its groups from: a :class:`~lateint.training.batches.ShuffledGroups`
    over every group (``data.shuffle_buffer = 0``, or unset with groups from a run) or a
    :class:`~lateint.training.batches.StreamedGroups` (``> 0``, or unset with pair or score files,
    through :data:`~lateint.training.config.DEFAULT_SHUFFLE_BUFFER` groups)."""
    from lateint.data import load_dataset
    from lateint.training.batches import ShuffledGroups, StreamedGroups
    from lateint.training.config import DEFAULT_SHUFFLE_BUFFER
    from lateint.training.groups import groups_from_dataset

    d = config.data
    if d.hf_dataset:
        return _hf_source(config)
    if not d.dataset:
        raise InputError("data.dataset is not set: name the dataset to train on (an ir_datasets id).")
    from_file = config.distill.scores_file is not None
    from_run = d.negative_source in ("run", "in_batch") and not from_file
    whole = d.shuffle_buffer == 0 or (d.shuffle_buffer is None and from_run)
    if whole and from_run:
        return ShuffledGroups(groups_from_dataset(d, config.seed, config.validation), config.seed)
    dataset = load_dataset(d.dataset)
    lookup = TextLookup(dataset)
    if whole:
        groups = list(group_stream(config, dataset))
        if not groups:
            raise InputError("there are no training groups in the stream.")
        return ShuffledGroups(lookup(sorted(groups, key=lambda g: (g.qid, g.doc_ids))), config.seed)
    buffer = DEFAULT_SHUFFLE_BUFFER if d.shuffle_buffer is None else d.shuffle_buffer
    return StreamedGroups(lambda: group_stream(config, dataset), buffer, config.seed, fill=lookup)


def _hf_source(config):
    """The groups of ``data.hf_dataset``: streamed through the shuffle buffer (default
    :data:`~lateint.training.config.DEFAULT_SHUFFLE_BUFFER`), held whole with ``shuffle_buffer = 0``;
    ids are looked up in ``data.dataset``."""
    from lateint.data import load_dataset
    from lateint.training.batches import ShuffledGroups, StreamedGroups
    from lateint.training.config import DEFAULT_SHUFFLE_BUFFER
    from lateint.training.hf_source import hf_groups

    d = config.data
    layout, epoch = hf_groups(d.hf_dataset, d.hf_split, d.negatives)
    if config.loss.soft is not None and layout.scores is None and not config.distill.teacher:
        raise InputError(f"loss.soft needs teacher scores: data.hf_dataset {d.hf_dataset!r} has no scores column "
                         "(scores or label); add one or set distill.teacher.")
    fill = None
    if layout.ids:
        if not d.dataset:
            raise InputError(f"data.hf_dataset {d.hf_dataset!r} holds ids ({layout.query}, {', '.join(layout.docs)}): "
                             "set data.dataset to the dataset whose queries and documents they name.")
        fill = TextLookup(load_dataset(d.dataset))
    if d.shuffle_buffer == 0:
        groups = list(epoch())
        if not groups:
            raise InputError(f"data.hf_dataset {d.hf_dataset!r} holds no rows.")
        return ShuffledGroups(fill(groups) if fill else groups, config.seed)
    buffer = DEFAULT_SHUFFLE_BUFFER if d.shuffle_buffer is None else d.shuffle_buffer
    return StreamedGroups(epoch, buffer, config.seed, fill=fill)

"""Local files registered as ``ir_datasets`` ids over an existing collection.

Training data often comes as files of one's own: a pair file, a run, other qrels. Registered
with :func:`register_local` as an id over a collection ``ir_datasets`` already knows, they are
read through the same dataset interface (docstore, queries, qrels, docpairs, scoreddocs) as
anything else.
"""

from __future__ import annotations

from pathlib import Path

from lateint.data.irds_home import import_ir_datasets
from lateint.errors import InputError


def register_local(
    dataset_id: str,
    base: str,
    *,
    docpairs: str | Path | None = None,
    scoreddocs: str | Path | None = None,
    qrels: str | Path | None = None,
) -> str:
    """Register ``dataset_id``: the docs, queries and qrels of ``base`` with local files in place
    of (or added to) its own; returns the id.

    Args:
        dataset_id: the new id.
        base: a dataset name :func:`lateint.data.load_dataset` resolves (its docs and queries,
            and qrels unless given).
        docpairs: a TSV file ``qid<TAB>pos_id<TAB>neg_id``.
        scoreddocs: a TREC run file (``qid Q0 doc_id rank score tag``).
        qrels: a TREC qrels file (``qid 0 doc_id grade``).

    Raises:
        InputError: ``dataset_id`` is already registered, or a file does not exist.
    """
    from lateint.data.datasets import resolve_dataset_id

    ir_datasets = import_ir_datasets()
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TrecScoredDocs, TsvDocPairs
    from ir_datasets.util import LocalDownload

    if dataset_id in ir_datasets.registry:
        raise InputError(f"{dataset_id!r} is already an ir_datasets id; choose another name.")
    for path in (docpairs, scoreddocs, qrels):
        if path is not None and not Path(path).is_file():
            raise InputError(f"{path} does not exist: name an existing file.")
    source = ir_datasets.load(resolve_dataset_id(base))
    parts = []
    if docpairs is not None:
        parts.append(TsvDocPairs(LocalDownload(Path(docpairs))))
    if scoreddocs is not None:
        parts.append(TrecScoredDocs(LocalDownload(Path(scoreddocs))))
    if qrels is not None:
        parts.append(TrecQrels(LocalDownload(Path(qrels)), {}))
    # the local parts come first, so that they stand in for the base's own
    ir_datasets.registry.register(dataset_id, Dataset(*parts, source))
    return dataset_id

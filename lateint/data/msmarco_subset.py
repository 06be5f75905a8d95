"""The TREC DL 2019 passage collection as far as the local first-stage runs cover it.

The local folder holds the 43 judged TREC DL 2019 queries, their qrels, five top-100 runs and the
text of the 10,852 passages those runs retrieved, not the 8.8M-passage MS MARCO collection. It is
therefore registered with ``ir_datasets`` under ids of its own rather than passed off as
``msmarco-passage``:

* ``lateint/msmarco-passage-dl19-subset``: the passages only;
* ``lateint/msmarco-passage-dl19-subset/trec-dl-2019/judged``: passages, queries, qrels, and the
  BM25 top-100 run as scoreddocs.

The files are copied into the ``ir_datasets`` home (the docstore is built next to the passage
file, so it has to be writable) and read from there with lateint's own readers
(:mod:`lateint.data.local_files`), which handle a byte-order mark, CRLF and bad lines alike.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lateint.data.irds_home import home_lock, import_ir_datasets, ir_datasets_home, seed_file
from lateint.data.local_files import LocalDocs, LocalQrels, LocalQueries, LocalScoredDocs, docstore_name
from lateint.data.local_share import DATA_ENV, DL19_FOLDER, DL19_RUN_SUFFIX, data_root, require_file
from lateint.errors import MissingResourceError

SUBSET_ID = "lateint/msmarco-passage-dl19-subset"
SUBSET_JUDGED_ID = f"{SUBSET_ID}/trec-dl-2019/judged"
#: Public ids served by the subset when ``LATEINT_DATA`` is set.
SUBSET_ALIASES: dict[str, str] = {"msmarco-passage/trec-dl-2019/judged": SUBSET_JUDGED_ID}
#: The run that stands for the dataset's scoreddocs.
SCOREDDOCS_RUN = "bm25"

SUBSET_NOTE = (
    "TREC DL 2019 passage task, 43 judged queries with the official NIST qrels (graded 0-3); the "
    "collection is the subset of MS MARCO passages retrieved by the local first-stage runs "
    "(10,852 passages), not the full 8.8M-passage collection, so only re-ranking of those runs "
    "is meaningful; scoreddocs are the BM25 top-100 run.")

_COLLECTION = "collection.tsv"
_QUERIES = "queries.tsv"
_QRELS = "qrels.txt"
_RUNS = "runs"

_registered = False


def subset_folder() -> Path:
    """Where the subset's files live inside the ``ir_datasets`` home."""
    return ir_datasets_home() / "lateint" / "msmarco-passage-dl19-subset"


def _seed_from_share() -> None:
    """Bring the home copies up to date with ``LATEINT_DATA`` (when it is set)."""
    root = data_root()
    if root is None:
        return
    source = root / DL19_FOLDER
    target = subset_folder()
    what = "the TREC DL 2019 passage subset"
    for name in (_COLLECTION, _QUERIES, _QRELS):
        copied = seed_file(require_file(source, name, what), target / name, replace_different=True)
        if copied and name == _COLLECTION:
            # A docstore built from an older copy of the passages would be stale.
            shutil.rmtree(target / docstore_name(_COLLECTION), ignore_errors=True)
    run_files = sorted((source / _RUNS).glob(f"*{DL19_RUN_SUFFIX}"))
    if not run_files:
        raise MissingResourceError(
            f"{source / _RUNS} holds no *{DL19_RUN_SUFFIX} run files; {DATA_ENV} must point at a "
            "folder laid out as described in lateint.data.local_share")
    for run_file in run_files:
        seed_file(run_file, target / _RUNS / run_file.name, replace_different=True)


def _require_copies() -> Path:
    folder = subset_folder()
    missing = [name for name in (_COLLECTION, _QUERIES, _QRELS) if not (folder / name).is_file()]
    if missing:
        raise MissingResourceError(
            f"the TREC DL 2019 passage subset is not available: set {DATA_ENV} to the folder of "
            f"local collection files (the one holding {DL19_FOLDER}/)")
    return folder


def ensure_registered() -> None:
    """Copy the subset's files into the ``ir_datasets`` home and register its ids (once).

    Raises:
        MissingResourceError: neither ``LATEINT_DATA`` nor earlier copies provide the files.
    """
    global _registered
    with home_lock(SUBSET_ID):
        _seed_from_share()
    folder = _require_copies()
    if _registered:
        return
    ir_datasets = import_ir_datasets()
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.datasets.msmarco_passage import TREC_DL_QRELS_DEFS

    docs = LocalDocs(folder / _COLLECTION, folder, namespace=SUBSET_ID, store_path=folder / docstore_name(_COLLECTION))
    queries = LocalQueries(folder / _QUERIES, namespace=SUBSET_ID)
    qrels = LocalQrels(folder / _QRELS, TREC_DL_QRELS_DEFS)
    scoreddocs = LocalScoredDocs(folder / _RUNS / f"{SCOREDDOCS_RUN}{DL19_RUN_SUFFIX}")
    registered = set(ir_datasets.registry)
    if SUBSET_ID not in registered:
        ir_datasets.registry.register(SUBSET_ID, Dataset(docs))
    if SUBSET_JUDGED_ID not in registered:
        ir_datasets.registry.register(SUBSET_JUDGED_ID, Dataset(docs, queries, qrels, scoreddocs))
    _registered = True


def run_files() -> dict[str, Path]:
    """The subset's first-stage runs by name (``bm25``, ``tasb`` ...), as copied into the home."""
    ensure_registered()
    folder = subset_folder() / _RUNS
    return {path.name[: -len(DL19_RUN_SUFFIX)]: path for path in sorted(folder.glob(f"*{DL19_RUN_SUFFIX}"))}

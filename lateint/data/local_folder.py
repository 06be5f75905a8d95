"""A folder of TREC-style files as a dataset, for collections that have no ``ir_datasets`` id.

``--dataset path/to/folder`` (or ``load_dataset("path/to/folder")``) reads::

    path/to/folder/
        docs.tsv          doc_id<TAB>text             (or collection.tsv)
        queries.tsv       query_id<TAB>text
        qrels.txt         TREC qrels: query_id 0 doc_id relevance      (optional)
        runs/NAME.trec    first-stage runs, usable by NAME             (optional)

The folder is registered with ``ir_datasets`` under ``lateint/local/<hash of its absolute path>``;
its files are copied into the ``ir_datasets`` home, where the docstore is built (the folder itself
is only read). A copy is refreshed when the file's size changes.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from lateint.data.irds_home import home_lock, import_ir_datasets, ir_datasets_home, seed_file
from lateint.errors import InputError, MissingResourceError

LOCAL_PREFIX = "lateint/local"
DOC_FILES = ("docs.tsv", "collection.tsv")
QUERIES_FILE = "queries.tsv"
QRELS_FILE = "qrels.txt"
RUNS_FOLDER = "runs"
RUN_SUFFIX = ".trec"

_registered: set[str] = set()


def is_local_folder(name: str) -> bool:
    """Whether ``name`` is a folder holding documents or queries (and so a local dataset, not an id)."""
    folder = Path(name).expanduser()
    return folder.is_dir() and any((folder / f).is_file() for f in (*DOC_FILES, QUERIES_FILE))


def local_id(folder: Path) -> str:
    """The ``ir_datasets`` id a local folder is registered under."""
    digest = hashlib.sha256(str(folder.expanduser().resolve()).encode()).hexdigest()[:16]
    return f"{LOCAL_PREFIX}/{digest}"


def _home_copy(folder: Path) -> Path:
    return ir_datasets_home() / local_id(folder)


def _docs_file(folder: Path) -> Path:
    for name in DOC_FILES:
        if (folder / name).is_file():
            return folder / name
    raise MissingResourceError(
        f"{folder} holds no documents: a local dataset folder needs {' or '.join(DOC_FILES)} "
        f"(doc_id<TAB>text per line), {QUERIES_FILE} (query_id<TAB>text) and optionally {QRELS_FILE} (TREC qrels)")


def ensure_registered(folder: str | Path) -> str:
    """Register the folder's files with ``ir_datasets`` (once per process); returns the id.

    Raises:
        MissingResourceError: the folder lacks the documents or the queries.
    """
    folder = Path(folder).expanduser().resolve()
    docs_source = _docs_file(folder)
    if not (folder / QUERIES_FILE).is_file():
        raise MissingResourceError(f"{folder} holds no {QUERIES_FILE} (query_id<TAB>text per line); a local "
                                   "dataset folder needs its queries")
    dataset_id = local_id(folder)
    home = _home_copy(folder)
    has_qrels = (folder / QRELS_FILE).is_file()
    with home_lock(dataset_id):
        if seed_file(docs_source, home / "docs.tsv", replace_different=True):
            shutil.rmtree(home / "docs.tsv.pklz4", ignore_errors=True)  # a docstore of the old copy is stale
        seed_file(folder / QUERIES_FILE, home / QUERIES_FILE, replace_different=True)
        if has_qrels:
            seed_file(folder / QRELS_FILE, home / QRELS_FILE, replace_different=True)
    if dataset_id in _registered:
        return dataset_id
    ir_datasets = import_ir_datasets()
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import GenericDoc, GenericQuery, TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    parts = [TsvDocs(LocalDownload(home / "docs.tsv"), doc_cls=GenericDoc, namespace=dataset_id),
             TsvQueries(LocalDownload(home / QUERIES_FILE), query_cls=GenericQuery, namespace=dataset_id)]
    if has_qrels:
        parts.append(TrecQrels(LocalDownload(home / QRELS_FILE), {}))
    if dataset_id not in ir_datasets.registry:
        ir_datasets.registry.register(dataset_id, Dataset(*parts))
    _registered.add(dataset_id)
    return dataset_id


def run_files(folder: str | Path) -> dict[str, Path]:
    """The folder's first-stage runs by name: ``runs/NAME.trec`` -> ``NAME``."""
    runs = Path(folder).expanduser() / RUNS_FOLDER
    if not runs.is_dir():
        return {}
    found = {path.name[: -len(RUN_SUFFIX)]: path for path in sorted(runs.glob(f"*{RUN_SUFFIX}"))}
    if not found and any(runs.iterdir()):
        raise InputError(f"{runs} holds no *{RUN_SUFFIX} files; name first-stage runs NAME{RUN_SUFFIX}")
    return found

"""A user's own files as a dataset, for collections that have no ``ir_datasets`` id.

``--dataset NAME`` (or ``load_dataset(NAME)``) accepts three shapes of local files:

* a folder of TREC-style or BEIR files::

      path/to/folder/
          docs.tsv | collection.tsv      doc_id<TAB>text
          corpus.jsonl | docs.jsonl      {"_id" or "id", "text", "title"?}    (BEIR's corpus)
          queries.tsv | queries.jsonl    query_id<TAB>text, or {"_id" or "id", "text"}
          qrels.txt                      TREC qrels: query_id 0 doc_id relevance      (optional)
          qrels/SPLIT.tsv                BEIR qrels of a split                        (optional)
          runs/NAME.trec                 first-stage runs, usable by NAME             (optional)

* ``path/to/folder/SPLIT``, where the folder holds ``qrels/SPLIT.tsv``: that split of a BEIR
  folder, its queries being those the split judges, exactly as ``ir_datasets`` serves
  ``beir/NAME/SPLIT`` (a BEIR folder ``DIR`` of a collection gives, through ``DIR/test``, the
  documents, queries and qrels that ``beir/NAME/test`` gives);
* a JSONL file of documents (``.jsonl``): a collection without queries, for ``cache build``.

The files are registered with ``ir_datasets`` under ``lateint/local/<hash of the path>`` and read
where they are (never copied, never changed); the docstore that looks documents up by id is built
on disk in the ``ir_datasets`` home (see :class:`lateint.data.local_files.LocalDocs`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from lateint.data.irds_home import import_ir_datasets, ir_datasets_home
from lateint.data.local_files import LocalDocs, LocalQrels, LocalQueries, is_jsonl
from lateint.errors import InputError, MissingResourceError

LOCAL_PREFIX = "lateint/local"
DOC_FILES = ("docs.tsv", "collection.tsv", "corpus.jsonl", "docs.jsonl")
QUERY_FILES = ("queries.tsv", "queries.jsonl")
QRELS_FILE = "qrels.txt"
SPLIT_QRELS_FOLDER = "qrels"
SPLIT_QRELS_SUFFIX = ".tsv"
RUNS_FOLDER = "runs"
RUN_SUFFIX = ".trec"

_LAYOUT = (f"a folder with {' or '.join(DOC_FILES)} and {' or '.join(QUERY_FILES)} (optionally {QRELS_FILE} "
           f"or {SPLIT_QRELS_FOLDER}/SPLIT{SPLIT_QRELS_SUFFIX}), FOLDER/SPLIT for a BEIR split, or a .jsonl "
           f"file of documents")


@dataclass(frozen=True)
class LocalSource:
    """Where a local dataset's files are.

    Attributes:
        folder: the folder (``None`` for a bare documents file).
        docs: the documents file, if any.
        queries: the queries file, if any.
        qrels: the qrels file, if any.
        split: the BEIR split named, if any.
    """

    folder: Path | None
    docs: Path | None
    queries: Path | None
    qrels: Path | None
    split: str | None = None

    @property
    def path(self) -> Path:
        """The path the dataset was named by (``FOLDER/SPLIT`` for a split)."""
        assert self.folder is not None or self.docs is not None
        if self.folder is None:
            return self.docs  # type: ignore[return-value]
        return self.folder / self.split if self.split else self.folder


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def find_source(name: str) -> LocalSource | None:
    """The local files ``name`` names, or ``None`` when it names none (it is then an ``ir_datasets`` id)."""
    path = Path(name).expanduser()
    if path.is_file():
        return LocalSource(None, path.resolve(), None, None) if is_jsonl(path) else None
    if path.is_dir():
        folder = path.resolve()
        docs, queries = _first(folder, DOC_FILES), _first(folder, QUERY_FILES)
        if docs is None and queries is None:
            return None
        qrels = folder / QRELS_FILE
        return LocalSource(folder, docs, queries, qrels if qrels.is_file() else None)
    folder = path.parent
    split_qrels = folder / SPLIT_QRELS_FOLDER / f"{path.name}{SPLIT_QRELS_SUFFIX}"
    if folder.is_dir() and path.name and split_qrels.is_file():
        folder = folder.resolve()
        return LocalSource(folder, _first(folder, DOC_FILES), _first(folder, QUERY_FILES),
                           split_qrels.resolve(), path.name)
    return None


def is_local_folder(name: str) -> bool:
    """Whether ``name`` names local files (a folder, ``FOLDER/SPLIT`` or a ``.jsonl`` file), not an id."""
    return find_source(name) is not None


def local_id(source: LocalSource | Path) -> str:
    """The ``ir_datasets`` id local files are registered under."""
    path = source.path if isinstance(source, LocalSource) else Path(source)
    digest = hashlib.sha256(str(path.expanduser().resolve()).encode()).hexdigest()[:16]
    return f"{LOCAL_PREFIX}/{digest}"


def ensure_registered(name: str | Path) -> str:
    """Register the files ``name`` names with ``ir_datasets`` (once per process); returns the id.

    Raises:
        MissingResourceError: a folder holds no documents, or a split no queries.
    """
    source = find_source(str(name))
    if source is None:
        raise MissingResourceError(f"{name} holds no local dataset: expected {_LAYOUT}")
    if source.docs is None:
        raise MissingResourceError(f"{source.folder} holds no documents: a local dataset needs "
                                   f"{' or '.join(DOC_FILES)} (expected {_LAYOUT})")
    if source.split and source.queries is None:
        raise MissingResourceError(f"{source.folder} is not a BEIR folder: the split {source.split!r} needs "
                                   f"{' or '.join(QUERY_FILES)} beside its qrels")
    dataset_id = local_id(source)
    ir_datasets = import_ir_datasets()
    if dataset_id in ir_datasets.registry:
        return dataset_id
    from ir_datasets.datasets.base import Dataset, FilteredQueries

    # one store per documents file, shared by the folder and its splits
    store_folder = ir_datasets_home() / LOCAL_PREFIX / "stores" / local_id(source.docs).rsplit("/", 1)[-1]
    parts: list = [LocalDocs(source.docs, store_folder, namespace=dataset_id)]
    if source.queries is not None:
        queries = LocalQueries(source.queries, namespace=dataset_id)
        if source.split:
            qrels = LocalQrels(source.qrels)  # type: ignore[arg-type]
            judged = functools.cache(lambda: frozenset(qrel.query_id for qrel in qrels.qrels_iter()))
            parts += [FilteredQueries(queries, judged, mode="include"), qrels]
        else:
            parts.append(queries)
    if source.qrels is not None and not source.split:
        parts.append(LocalQrels(source.qrels))
    ir_datasets.registry.register(dataset_id, Dataset(*parts))
    return dataset_id


def run_files(name: str | Path) -> dict[str, Path]:
    """The first-stage runs of a local dataset's folder by name: ``runs/NAME.trec`` -> ``NAME``."""
    source = find_source(str(name))
    if source is None or source.folder is None:
        return {}
    runs = source.folder / RUNS_FOLDER
    if not runs.is_dir():
        return {}
    found = {path.name[: -len(RUN_SUFFIX)]: path for path in sorted(runs.glob(f"*{RUN_SUFFIX}"))}
    if not found and any(runs.iterdir()):
        raise InputError(f"{runs} holds no *{RUN_SUFFIX} files; name first-stage runs NAME{RUN_SUFFIX}")
    return found

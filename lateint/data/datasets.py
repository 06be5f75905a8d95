"""Loading a test collection by name: :func:`load_dataset` and the lazy :class:`DatasetHandle`.

Every name goes through ``ir_datasets``. With ``LATEINT_DATA`` set, the ids that the local folder
covers are served offline:

* ``msmarco-passage/trec-dl-2019/judged`` resolves to
  ``lateint/msmarco-passage-dl19-subset/trec-dl-2019/judged``, the 43 judged queries over the
  10,852 passages the local first-stage runs retrieved (not the full collection);
* ``beir/scifact`` (``/train``, ``/test``) and ``cranfield`` are the built-in ids, with the original
  downloads copied from the local folder into the ``ir_datasets`` home.

Any other id (and every id when ``LATEINT_DATA`` is unset) is plain ``ir_datasets.load(name)``,
which downloads on first access.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lateint.data import first_stage, local_folder, msmarco_subset
from lateint.data.irds_home import home_lock, import_ir_datasets, ir_datasets_home, seed_file
from lateint.data.local_share import DATA_ENV, data_root, original_file_for, require_file
from lateint.data.run_types import Qrels, RankedLists, Run
from lateint.errors import InputError, LateintError, MissingResourceError

logger = logging.getLogger(__name__)

def official_relevance_level(irds_id: str) -> int:
    """The lowest grade binary measures count as relevant for a collection.

    2 for the TREC DL passage tasks (graded 0-3, where the track's official binary measures
    treat grade 1, "related", as not relevant), 1 for everything else, the TREC DL document
    tasks included.
    """
    return 2 if "trec-dl" in irds_id and "passage" in irds_id else 1


def resolve_dataset_id(name: str) -> str:
    """The ``ir_datasets`` id that serves ``name``, preparing local files on the way.

    With ``LATEINT_DATA`` set, TREC DL 2019 judged resolves to the local subset (registered on
    first use) and the built-in ids with original files in the local folder get those files
    copied into the ``ir_datasets`` home. Every other name is returned unchanged.

    Raises:
        MissingResourceError: ``LATEINT_DATA`` is set but lacks the files this name needs.
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"a dataset name must be a non-empty string, got {name!r}")
    name = name.strip()
    if local_folder.is_local_folder(name):
        return local_folder.ensure_registered(name)
    root = data_root()
    if name == msmarco_subset.SUBSET_ID or name.startswith(msmarco_subset.SUBSET_ID + "/"):
        msmarco_subset.ensure_registered()
        return name
    if root is not None and name in msmarco_subset.SUBSET_ALIASES:
        msmarco_subset.ensure_registered()
        return msmarco_subset.SUBSET_ALIASES[name]
    original = original_file_for(name)
    if root is not None and original is not None:
        destination = ir_datasets_home() / original.home_path
        if not destination.is_file():
            with home_lock(original.home_path):
                seed_file(require_file(root, original.share_path, f"dataset {name!r}"), destination)
    return name


def docstore_lock_name(store: Any, irds_id: str) -> str:
    """The :func:`home_lock` name under which a docstore is built: keyed by where the store lives
    (datasets that share a collection share its store), else by the dataset."""
    where = getattr(store, "path", None)
    return f"store {where}" if isinstance(where, (str, Path)) else f"docs of {irds_id}"


@dataclass(eq=False)
class DatasetHandle:
    """A test collection, read lazily through ``ir_datasets`` and cached once read.

    Attributes:
        name: the name the dataset was asked for.
        irds_id: the ``ir_datasets`` id that serves it.
        official_relevance_level: lowest grade binary measures (MRR, MAP, recall) count as
            relevant: 2 on TREC DL, 1 otherwise.
        note: what the collection is, where it differs from the id's usual meaning.
    """

    name: str
    irds_id: str
    official_relevance_level: int = 1
    note: str = ""
    _dataset: Any = field(default=None, init=False, repr=False)
    _queries: dict[str, str] | None = field(default=None, init=False, repr=False)
    _qrels: Qrels | None = field(default=None, init=False, repr=False)
    _store: Any = field(default=None, init=False, repr=False)
    _query_store: Any = field(default=None, init=False, repr=False)

    @property
    def description(self) -> str:
        """Same as :attr:`note`."""
        return self.note

    @property
    def dataset(self) -> Any:
        """The underlying ``ir_datasets`` dataset object."""
        if self._dataset is None:
            ir_datasets = import_ir_datasets()
            self._dataset = ir_datasets.load(self.irds_id)
        return self._dataset

    def _require(self, part: str) -> None:
        if not getattr(self.dataset, f"has_{part}")():
            raise InputError(f"dataset {self.irds_id!r} has no {part}; pick a subset that has them "
                             f"(for BEIR, e.g. 'beir/scifact/test' rather than 'beir/scifact')")

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn a failed download or a missing file inside ``ir_datasets`` into a clear error."""
        try:
            yield
        except LateintError:
            raise
        except Exception as error:
            if not _looks_like_missing_data(error):
                raise
            if data_root() is None:
                advice = (f"ir_datasets could not obtain them ({_failure(error)}); without access to the "
                          f"dataset hosts, set {DATA_ENV} to a folder of local collection files")
            else:
                advice = (f"{DATA_ENV} is set but provides no local copy of this dataset, and ir_datasets "
                          f"could not obtain it ({_failure(error)})")
            raise MissingResourceError(f"the {what} of {self.irds_id!r} are not available: {advice}") from error

    def queries(self) -> dict[str, str]:
        """Query id -> query text, in the dataset's order."""
        if self._queries is None:
            self._require("queries")
            with self._reading("queries"):
                self._queries = {query.query_id: _text_of(query) for query in self.dataset.queries_iter()}
        return dict(self._queries)

    def qrels(self) -> Qrels:
        """Query id -> document id -> relevance grade."""
        if self._qrels is None:
            self._require("qrels")
            qrels: Qrels = {}
            with self._reading("qrels"):
                for qrel in self.dataset.qrels_iter():
                    qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
            self._qrels = qrels
        return {qid: dict(judged) for qid, judged in self._qrels.items()}

    def queries_store(self) -> Any:
        """Random access to queries by id, from a store built on disk on first use (so that
        training over millions of queries never holds them all in memory)."""
        if self._query_store is None:
            self._require("queries")
            from ir_datasets.indices import PickleLz4FullStore

            path = ir_datasets_home() / "lateint" / "query-stores" / (self.irds_id.replace("/", "__") + ".pklz4")
            with self._reading("queries"):
                store = PickleLz4FullStore(str(path), self.dataset.queries_iter, self.dataset.queries_cls(),
                                           "query_id", ["query_id"])
                with home_lock(f"store {path}"):
                    store.build()
            self._query_store = store
        return self._query_store

    def query_text(self, query_ids: Iterable[str]) -> dict[str, str]:
        """Query id -> text, looked up in :meth:`queries_store`.

        Raises:
            InputError: some ids are not queries of the dataset.
        """
        wanted = list(dict.fromkeys(query_ids))
        found = self.queries_store().get_many(wanted)
        missing = [qid for qid in wanted if qid not in found]
        if missing:
            raise InputError(f"{len(missing)} query id(s) are not in {self.irds_id!r}: {_sample(missing)}")
        return {qid: _text_of(found[qid]) for qid in wanted}

    def docs_store(self) -> Any:
        """The ``ir_datasets`` docstore (random access by document id), built on first use."""
        if self._store is None:
            self._require("docs")
            with self._reading("documents"):
                store = self.dataset.docs_store()
                build = getattr(store, "build", None)
                if callable(build):
                    with home_lock(docstore_lock_name(store, self.irds_id)):
                        build()
            self._store = store
        return self._store

    def doc_count(self) -> int:
        """Number of documents in the collection, from the dataset's metadata where it has one
        (``docs_count()``), else from its docstore (built on first use)."""
        with self._reading("documents"):
            self._require("docs")
            counted = self.dataset.docs_count()
            if counted is not None:
                return int(counted)
            return int(self.docs_store().count())

    def iter_docs(self) -> Iterator[tuple[str, str]]:
        """Every ``(doc_id, text)`` in collection order, the text being :data:`DOC_TEXT` (the same
        text :meth:`doc_text` returns, so a cache built from this stream serves re-ranking)."""
        self._require("docs")
        with self._reading("documents"):
            for doc in self.dataset.docs_iter():
                yield doc.doc_id, _text_of(doc)

    def doc_text(self, doc_ids: Iterable[str], *, missing_ok: bool = False) -> dict[str, str]:
        """Document id -> text (title and body where the collection has both).

        Args:
            doc_ids: the documents wanted.
            missing_ok: leave ids that are not in the collection out of the result instead of
                raising (for callers that handle gaps themselves, such as training groups built
                from qrels over a partial collection).

        Raises:
            InputError: some ids are not in the collection (unless ``missing_ok``).
        """
        wanted = list(dict.fromkeys(doc_ids))
        with self._reading("documents"):
            found = self.docs_store().get_many(wanted)
        missing = [doc_id for doc_id in wanted if doc_id not in found]
        if missing and missing_ok:
            return {doc_id: _text_of(found[doc_id]) for doc_id in wanted if doc_id in found}
        if missing:
            raise InputError(f"{len(missing)} document id(s) are not in {self.irds_id!r}: "
                             f"{_sample(missing)}")
        return {doc_id: _text_of(found[doc_id]) for doc_id in wanted}

    def scoreddocs(self) -> Run:
        """The dataset's own first-stage ranking (``scoreddocs``) as a run."""
        from lateint.data.runs import RunAccumulator

        self._require("scoreddocs")
        accumulator = RunAccumulator(source=f"scoreddocs of {self.irds_id}")
        with self._reading("scoreddocs"):
            for scored in self.dataset.scoreddocs_iter():
                accumulator.add(scored.query_id, scored.doc_id, float(scored.score))
        return accumulator.run()

    def candidates(self, run: str | Path | Mapping[str, Any] | None = None, depth: int | None = 100) -> RankedLists:
        """The documents to re-rank for each query, best first.

        Args:
            run: a first-stage run: ``None`` for the dataset's scoreddocs, the name of a run known
                for this dataset (see :func:`named_runs`), the path of a
                TREC run file, or a run already in memory (query id -> document id -> score).
            depth: keep this many documents per query (``None`` keeps all). A query whose
                documents all have one score (an unscored candidate list, such as MS MARCO's
                official top-1000) keeps them all, with a warning: no order says which to cut.

        Returns:
            query id -> ``[(doc_id, score), ...]`` ordered by score descending, ties by document
            id; queries the run does not cover are absent.

        Raises:
            InputError: the run names queries the dataset does not have, or depth is not positive.
        """
        from lateint.data.run_types import rank_run

        if depth is not None and (not isinstance(depth, int) or depth < 1):
            raise InputError(f"depth must be a positive integer or None, got {depth!r}")
        result = first_stage.read_first_stage(self, run)
        unscored = {qid for qid, scores in result.items()
                    if depth is not None and len(scores) > depth and len(set(scores.values())) == 1}
        if unscored:
            # MS MARCO's official top-1000 lists carry no scores (ir_datasets gives them all 0) and
            # come in random order: a cut at ``depth`` would keep an arbitrary part of each list.
            logger.warning("%d queries of the first stage of %s carry no scores to rank by (all equal): all "
                           "their candidates are kept instead of the top %d", len(unscored), self.irds_id, depth)
        return {qid: rank_run({qid: scores}, None if qid in unscored else depth)[qid]
                for qid, scores in result.items()}


def _looks_like_missing_data(error: Exception) -> bool:
    # ir_datasets reports an impossible download as RuntimeError('All download sources failed', ...)
    # and an absent local file or an unreachable host as an OSError subclass.
    if isinstance(error, OSError):
        return True
    return isinstance(error, RuntimeError) and "download" in str(error).lower()


def _failure(error: Exception) -> str:
    """A short account of a failed download: ir_datasets raises ``RuntimeError('All download
    sources failed', [(source, exception), ...])``, whose text is a long repr of every attempt."""
    args = getattr(error, "args", ())
    if isinstance(error, RuntimeError) and len(args) == 2 and isinstance(args[1], list):
        tried = []
        for attempt in args[1]:
            source, problem = attempt if isinstance(attempt, tuple) and len(attempt) == 2 else (attempt, None)
            url = getattr(source, "url", None) or str(source)
            tried.append(f"{url} ({type(problem).__name__})" if problem is not None else url)
        return "download failed from " + ", ".join(tried)
    return f"{error!s:.300}"


#: Which text of a document (or query) record lateint uses everywhere: ``ir_datasets``'
#: ``default_text()`` (title and body where the collection has both), else the ``text`` field.
#: Document caches record it, so caches built from different texts are never mixed.
DOC_TEXT = "default_text"


def _text_of(record: Any) -> str:
    default_text = getattr(record, DOC_TEXT, None)
    return default_text() if callable(default_text) else record.text


def _sample(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f" ... ({len(items) - limit} more)" if len(items) > limit else "")


def load_dataset(name: str) -> DatasetHandle:
    """A lazy handle on the test collection ``name`` (an ``ir_datasets`` id).

    With ``LATEINT_DATA`` set, ``msmarco-passage/trec-dl-2019/judged`` is served by the local
    subset ``lateint/msmarco-passage-dl19-subset/trec-dl-2019/judged``: the official 43 queries and
    qrels, but only the 10,852 passages the local first-stage runs retrieved (the handle's
    ``note`` says so), which is all that re-ranking those runs needs. ``beir/scifact`` and
    ``cranfield`` ids are served from the local original files. Without ``LATEINT_DATA`` every id is
    plain ``ir_datasets.load(name)``.

    Nothing is read until an accessor is called; an accessor whose data would have to be
    downloaded, where that download fails, raises :class:`MissingResourceError` saying to set
    ``LATEINT_DATA``. When ``LATEINT_DATA`` is set and ``IR_DATASETS_HOME`` is not, the first call
    sets ``IR_DATASETS_HOME`` to ``$LATEINT_CACHE/ir_datasets`` (see :mod:`lateint.data.irds_home`).

    Raises:
        InputError: ``ir_datasets`` knows no dataset of that name.
        MissingResourceError: ``LATEINT_DATA`` is set but lacks the files the dataset needs.
    """
    irds_id = resolve_dataset_id(name)
    ir_datasets = import_ir_datasets()
    try:
        dataset = ir_datasets.load(irds_id)
    except KeyError:
        known = list(ir_datasets.registry)
        close = difflib.get_close_matches(irds_id, known, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InputError(f"unknown dataset {name!r}: ir_datasets has no such id{hint}") from None
    note = msmarco_subset.SUBSET_NOTE if irds_id.startswith(msmarco_subset.SUBSET_ID) else ""
    handle = DatasetHandle(name=name.strip(), irds_id=irds_id,
                           official_relevance_level=official_relevance_level(irds_id), note=note)
    handle._dataset = dataset
    return handle


def named_runs(dataset: str | DatasetHandle) -> dict[str, Path]:
    """The first-stage runs available by name for ``dataset`` (a name or a handle): name -> run file."""
    return first_stage.runs_by_name(load_dataset(dataset) if isinstance(dataset, str) else dataset)


def first_stage_run(dataset: str | DatasetHandle, run: str | Path | Mapping[str, Any] | None = None) -> Run:
    """A first-stage run for ``dataset`` (a name or a handle), checked against its queries; see
    :func:`lateint.data.first_stage.read_first_stage` for what ``run`` may be."""
    return first_stage.read_first_stage(load_dataset(dataset) if isinstance(dataset, str) else dataset, run)

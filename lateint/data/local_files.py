"""Documents, queries and qrels from a user's own files, as ``ir_datasets`` components.

The formats:

* documents: TSV ``doc_id<TAB>text``, or JSONL ``{"_id" or "id", "text", "title"?}`` (BEIR's
  ``corpus.jsonl``); a document's text is ``title + " " + text`` when it has a non-empty title,
  as BEIR and ``ir_datasets`` join them, else its text;
* queries: TSV ``query_id<TAB>text``, or JSONL ``{"_id" or "id", "text"}``;
* qrels: TREC ``query_id 0 doc_id grade``, or BEIR TSV ``query-id<TAB>corpus-id<TAB>score``
  under that header.

Every file is read through :func:`lateint.data.text_files.text_lines` (UTF-8, byte-order mark
and CRLF handled, ``.gz`` read, damage reported by file and line). Documents are streamed, never
held whole: random access by id goes through an ``ir_datasets`` docstore built on disk on first
use, and building it refuses a document id given twice with different texts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

# Indexes (lateint's caches, ir_datasets' docstores) store ids at a fixed width, the longest id's,
# so one huge id would pad every entry to its length: ids longer than MAX_ID_BYTES are refused.
from lateint.cache.ids import MAX_ID_BYTES
from lateint.data.text_files import parse_int, text_lines
from lateint.errors import InputError



class LocalDoc(NamedTuple):
    """A document of a local file: BEIR's fields; ``title`` is empty where the file has none."""

    doc_id: str
    text: str
    title: str

    def default_text(self) -> str:
        """Title and text joined as BEIR and ``ir_datasets`` join them, or the text alone."""
        return f"{self.title} {self.text}" if self.title else self.text


#: Part of every local docstore's file name: the stored record's fields. ``ir_datasets`` refuses a
#: store whose records have other fields ("fields do not match"), so a store written by a version
#: of lateint with another record must not sit where this version looks for its own.
STORE_LAYOUT = "-".join(LocalDoc._fields)


def docstore_name(stem: str) -> str:
    """The file name of the docstore of ``stem`` for the current record layout."""
    return f"{stem}.{STORE_LAYOUT}.pklz4"


def check_id(value: Any, where: str, what: str = "id") -> str:
    """A document or query id as a string: non-empty, without whitespace (a TREC run could not
    hold it), at most :data:`MAX_ID_BYTES` bytes; JSON numbers are taken as their digits.

    Raises:
        InputError: anything else, naming ``where``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        raise InputError(f"{where}: {what} must be a non-empty string without whitespace, got {value!r}")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InputError(f"{where}: {what} {value[:40]!r}... is {len(value.encode('utf-8')):,} bytes long; "
                         f"ids of at most {MAX_ID_BYTES} bytes are accepted")
    return value


def json_records(path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, object)`` for every non-blank line of a JSONL file."""
    for number, line in text_lines(path, what):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: not a JSON object ({error.msg}); {what} files hold one object per line") from None
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object per line, got {type(record).__name__}")
        yield where, record


def _json_id(record: dict[str, Any], where: str, what: str) -> str:
    key = "_id" if "_id" in record else "id"
    if key not in record:
        raise InputError(f"{where}: a {what} record needs an \"_id\" (or \"id\") field; found {sorted(record)}")
    return check_id(record[key], where, f"{what} id")


def _json_text(record: dict[str, Any], field: str, where: str, required: bool = True) -> str:
    if field not in record:
        if required:
            raise InputError(f"{where}: the record has no \"{field}\" field; found {sorted(record)}")
        return ""
    value = record[field]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{where}: \"{field}\" must be a string, got {type(value).__name__}")
    return value


def _tsv_pair(line: str, where: str, what: str) -> tuple[str, str]:
    parts = line.split("\t", 1)
    if len(parts) != 2:
        raise InputError(f"{where}: expected '{what}_id<TAB>text', found no tab: {line[:80]!r}")
    return check_id(parts[0], where, f"{what} id"), parts[1]


def read_docs(path: Path) -> Iterator[tuple[str, LocalDoc]]:
    """``(where, document)`` for every document of a TSV or JSONL file, in file order."""
    if is_jsonl(path):
        for where, record in json_records(path, "documents"):
            yield where, LocalDoc(_json_id(record, where, "document"), _json_text(record, "text", where),
                                  _json_text(record, "title", where, required=False))
        return
    for number, line in text_lines(path, "documents"):
        if line.strip():
            where = f"{path}:{number}"
            doc_id, text = _tsv_pair(line, where, "doc")
            yield where, LocalDoc(doc_id, text, "")


def is_jsonl(path: Path) -> bool:
    """Whether a file is JSON lines, by its name (``.jsonl``, ``.jsonl.gz``)."""
    name = path.name.lower()
    return name.endswith(".jsonl") or name.endswith(".jsonl.gz")


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


class LocalDocs:
    """The documents of a local file as an ``ir_datasets`` docs component.

    Iterating reads the docstore (built from the file on first use, in ``store_path``), so that
    every reader sees each id once; building it refuses an id given twice with different texts.
    """

    def __init__(self, path: Path, store_folder: Path, namespace: str, *, store_path: Path | None = None) -> None:
        self._path = Path(path)
        self._store_folder = Path(store_folder)
        self._namespace = namespace
        self._fixed_store = store_path

    def store_path(self) -> Path:
        """Where the docstore of the file as it is now lives: named after the file's path, size and
        modification time, so that an edited file gets a new store instead of a stale one (unless
        the caller fixed the path, and removes a stale store itself)."""
        if self._fixed_store is not None:
            return self._fixed_store
        stat = self._path.stat()
        identity = f"{self._path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return self._store_folder / docstore_name(f"docs-{hashlib.sha256(identity.encode()).hexdigest()[:16]}")

    def docs_handler(self) -> LocalDocs:
        return self

    def docs_cls(self) -> type:
        return LocalDoc

    def docs_namespace(self) -> str:
        return self._namespace

    def docs_lang(self) -> str | None:
        return None

    def docs_count(self) -> int | None:
        store = self.docs_store()
        return store.count() if store.built() else None

    def docs_iter(self) -> Iterator[LocalDoc]:
        from lateint.data.irds_home import home_lock

        store = self.docs_store()
        with home_lock(f"store {store.path}"):  # the lock DatasetHandle.docs_store builds under
            store.build()
        return iter(store)

    def docs_store(self, field: str = "doc_id", options: Any = None) -> Any:
        return _CheckedStore(self, str(self.store_path()))

    def _unique(self, duplicates: list[tuple[str, str, bytes]]) -> Iterator[LocalDoc]:
        """The file's documents, each id once; later copies go to ``duplicates`` to be compared."""
        from lateint.cache.ids import IdSet

        seen = IdSet()  # compact: the ids' own bytes, not a Python set of a collection's ids
        for where, doc in read_docs(self._path):
            key = doc.doc_id.encode("utf-8")
            if key in seen:
                duplicates.append((doc.doc_id, where, _digest(doc.default_text())))
                continue
            seen.add(key)
            yield doc


def _store_class() -> type:
    from ir_datasets.indices import PickleLz4FullStore

    return PickleLz4FullStore


class _CheckedStore:
    """A ``PickleLz4FullStore`` whose build compares every repeated id's texts afterwards."""

    def __new__(cls, docs: LocalDocs, path: str) -> Any:
        base = _store_class()

        class CheckedStore(base):  # type: ignore[misc, valid-type]
            def build(self) -> None:
                if self.built():
                    return
                duplicates: list[tuple[str, str, bytes]] = []
                self.init_iter_fn = lambda: docs._unique(duplicates)
                super().build()
                if not duplicates:
                    return
                stored = self.get_many([doc_id for doc_id, _, _ in duplicates])
                clashes = [(doc_id, where) for doc_id, where, digest in duplicates
                           if _digest(stored[doc_id].default_text()) != digest]
                if clashes:
                    self.clear_cache()
                    doc_id, where = clashes[0]
                    more = f" ({len(clashes) - 1} more)" if len(clashes) > 1 else ""
                    raise InputError(f"{where}: document id {doc_id!r} was given before with a different text"
                                     f"{more}; each document id must name one text")

        return CheckedStore(path=path, init_iter_fn=None, data_cls=LocalDoc, lookup_field="doc_id",
                            index_fields=["doc_id"])


class LocalQueries:
    """The queries of a TSV or JSONL file as an ``ir_datasets`` queries component."""

    def __init__(self, path: Path, namespace: str) -> None:
        self._path = Path(path)
        self._namespace = namespace

    def queries_handler(self) -> LocalQueries:
        return self

    def queries_cls(self) -> type:
        from ir_datasets.formats import GenericQuery

        return GenericQuery

    def queries_namespace(self) -> str:
        return self._namespace

    def queries_lang(self) -> str | None:
        return None

    def queries_iter(self) -> Iterator[Any]:
        from ir_datasets.formats import GenericQuery

        seen: set[str] = set()  # query sets are small enough to check whole
        for where, query_id, text in self._read():
            if not text.strip():
                raise InputError(f"{where}: query {query_id!r} has an empty text; remove it or give it a text")
            if query_id in seen:
                raise InputError(f"{where}: query id {query_id!r} is given twice; each query id must be unique")
            seen.add(query_id)
            yield GenericQuery(query_id, text)

    def _read(self) -> Iterator[tuple[str, str, str]]:
        if is_jsonl(self._path):
            for where, record in json_records(self._path, "queries"):
                yield where, _json_id(record, where, "query"), _json_text(record, "text", where)
            return
        for number, line in text_lines(self._path, "queries"):
            if line.strip():
                where = f"{self._path}:{number}"
                yield (where, *_tsv_pair(line, where, "query"))


class LocalQrels:
    """TREC (``qid 0 doc_id grade``) or BEIR TSV (``query-id corpus-id score``, with its header)
    qrels as an ``ir_datasets`` qrels component; grades must be integers."""

    def __init__(self, path: Path, defs: dict[int, str] | None = None) -> None:
        self._path = Path(path)
        self._defs = defs or {}

    def qrels_handler(self) -> LocalQrels:
        return self

    def qrels_cls(self) -> type:
        from ir_datasets.formats import TrecQrel

        return TrecQrel

    def qrels_defs(self) -> dict[int, str]:
        return self._defs

    def qrels_path(self) -> str:
        return str(self._path)

    def qrels_iter(self) -> Iterator[Any]:
        from ir_datasets.formats import TrecQrel

        for number, line in text_lines(self._path, "qrels"):
            fields = line.split()
            if not fields:
                continue
            where = f"{self._path}:{number}"
            if number == 1 and len(fields) == 3 and fields[2].lower() == "score":
                continue  # BEIR's header line: query-id corpus-id score
            if len(fields) == 4:
                qid, iteration, doc_id, grade = fields
            elif len(fields) == 3:
                (qid, doc_id, grade), iteration = fields, "0"
            else:
                raise InputError(f"{where}: expected 'query_id 0 doc_id grade' (TREC) or "
                                 f"'query-id<TAB>corpus-id<TAB>score' (BEIR), got {len(fields)} fields: {line[:80]!r}")
            yield TrecQrel(check_id(qid, where, "query id"), check_id(doc_id, where, "document id"),
                           parse_int(grade, where, "relevance grade"), iteration)


class LocalScoredDocs:
    """A TREC run file (``qid Q0 doc_id rank score tag``) as an ``ir_datasets`` scoreddocs component,
    read with :func:`lateint.data.runs.parse_run_line` like every other run."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)

    def scoreddocs_handler(self) -> LocalScoredDocs:
        return self

    def scoreddocs_cls(self) -> type:
        from ir_datasets.formats import GenericScoredDoc

        return GenericScoredDoc

    def scoreddocs_path(self) -> str:
        return str(self._path)

    def scoreddocs_iter(self) -> Iterator[Any]:
        from ir_datasets.formats import GenericScoredDoc

        from lateint.data.runs import parse_run_line

        for number, line in text_lines(self._path, "run file"):
            if line.strip():
                qid, doc_id, _, score, _ = parse_run_line(line, f"{self._path}:{number}")
                yield GenericScoredDoc(qid, doc_id, score)

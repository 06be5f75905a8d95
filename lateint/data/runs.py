"""TREC run files: reading with validation, writing, and a resumable per-query writer.

A run line is ``qid Q0 docid rank score tag`` (whitespace separated). Evaluation tools order a
query's documents by score, not by the rank column, and so does everything here; documents with
equal scores are ordered by document id (ascending) so that a written run is reproducible.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from lateint.data.run_types import Run, ranking_order
from lateint.data.text_files import parse_int, parse_score, text_lines
from lateint.errors import CorruptionError, InputError, MissingResourceError

#: What to do when a run gives the same document twice for one query.
DuplicatePolicy = Literal["error", "first", "max"]
_DUPLICATE_POLICIES = ("error", "first", "max")

_FIELDS = "'qid Q0 docid rank score tag'"


class RunAccumulator:
    """Collects ``(qid, docid, score)`` triples into a run, applying a duplicate policy.

    Args:
        source: names where the triples come from, for error messages.
        on_duplicate: ``"error"`` (default) rejects a document given twice for one query,
            ``"first"`` keeps the first score, ``"max"`` keeps the highest.
    """

    def __init__(self, source: str, on_duplicate: DuplicatePolicy = "error") -> None:
        if on_duplicate not in _DUPLICATE_POLICIES:
            raise InputError(f"on_duplicate must be one of {_DUPLICATE_POLICIES}, got {on_duplicate!r}")
        self.source = source
        self.on_duplicate = on_duplicate
        self._run: Run = {}
        self._where: dict[tuple[str, str], str] = {}

    def add(self, qid: str, doc_id: str, score: float, where: str = "") -> None:
        """Add one scored document; ``where`` (e.g. ``"line 12"``) locates it in error messages."""
        scores = self._run.setdefault(qid, {})
        if doc_id in scores:
            if self.on_duplicate == "error":
                first = self._where.get((qid, doc_id), "")
                raise InputError(
                    f"{self.source}{' ' + where if where else ''}: document {doc_id!r} appears twice for "
                    f"query {qid!r}{' (first at ' + first + ')' if first else ''}; pass "
                    f"on_duplicate='first' or 'max' to accept duplicates")
            if self.on_duplicate == "max":
                scores[doc_id] = max(scores[doc_id], score)
            return
        scores[doc_id] = score
        if where and self.on_duplicate == "error":
            self._where[(qid, doc_id)] = where

    def run(self) -> Run:
        """The run collected so far.

        Raises:
            InputError: nothing was added.
        """
        if not self._run:
            raise InputError(f"{self.source} is empty: it holds no run lines")
        return self._run


def parse_run_line(line: str, where: str) -> tuple[str, str, int, float, str]:
    """Split one run line into ``(qid, docid, rank, score, tag)``.

    Raises:
        InputError: the line does not have six fields, or the rank or score is not a number.
    """
    fields = line.split()
    if len(fields) != 6:
        raise InputError(f"{where}: expected 6 whitespace-separated fields {_FIELDS}, "
                         f"got {len(fields)}: {line.strip()[:120]!r}")
    qid, _, doc_id, rank_text, score_text, tag = fields
    rank = parse_int(rank_text, where, "rank (4th field)")
    score = parse_score(score_text, where, "score (5th field)")
    if not math.isfinite(score):
        raise InputError(f"{where}: score (5th field) must be finite, got {score_text!r}")
    return qid, doc_id, rank, score, tag


def read_run(path: str | Path, on_duplicate: DuplicatePolicy = "error") -> Run:
    """Read a TREC run file into query id -> document id -> score.

    Blank lines are skipped; every other line must be a well-formed run line (read through
    :func:`lateint.data.text_files.text_lines`: UTF-8, byte-order mark and CRLF handled, ``.gz``).

    Args:
        path: the run file.
        on_duplicate: how to treat a document listed twice for one query (see
            :class:`RunAccumulator`); the default rejects it.

    Raises:
        MissingResourceError: the file does not exist.
        InputError: a line is malformed (the message names the file and line number), a document
            repeats under ``on_duplicate="error"``, or the file holds no run lines.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"run file {path} does not exist")
    accumulator = RunAccumulator(source=f"run file {path}", on_duplicate=on_duplicate)
    for number, line in text_lines(path, "run file"):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        qid, doc_id, _, score, _ = parse_run_line(line, where)
        accumulator.add(qid, doc_id, score, where=f"line {number}")
    return accumulator.run()


def check_run_queries(run: Mapping[str, object], query_ids: Iterable[str], source: str = "run") -> None:
    """Check that every query of ``run`` is one of ``query_ids``.

    Raises:
        InputError: the run has queries outside ``query_ids`` (a few are listed).
    """
    known = set(query_ids)
    unknown = sorted(qid for qid in run if qid not in known)
    if unknown:
        shown = ", ".join(repr(qid) for qid in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputError(f"{source} has {len(unknown)} query id(s) the dataset does not have: {shown}{more}; "
                         f"was it made for another dataset?")


def _check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not tag or any(ch.isspace() for ch in tag):
        raise InputError(f"a run tag must be a non-empty string without whitespace, got {tag!r}")
    return tag


def _ranked(scores: Mapping[str, float] | Sequence[tuple[str, float]], qid: str) -> list[tuple[str, float]]:
    items = list(scores.items()) if isinstance(scores, Mapping) else list(scores)
    clean: dict[str, float] = {}
    for doc_id, score in items:
        if not isinstance(doc_id, str) or not doc_id or any(ch.isspace() for ch in doc_id):
            raise InputError(f"query {qid!r}: document ids must be non-empty strings without whitespace, "
                             f"got {doc_id!r}")
        if doc_id in clean:
            raise InputError(f"query {qid!r}: document {doc_id!r} is given twice")
        score = float(score)
        if not math.isfinite(score):
            raise InputError(f"query {qid!r}: document {doc_id!r} has a non-finite score {score!r}")
        clean[doc_id] = score
    return ranking_order(clean)


def format_query_block(qid: str, scores: Mapping[str, float] | Sequence[tuple[str, float]], tag: str,
                       depth: int | None = None) -> str:
    """The run lines of one query, best first (score descending, ties by document id).

    Scores are written with ``repr`` so that reading the file back gives the same floats.
    """
    if not isinstance(qid, str) or not qid or any(ch.isspace() for ch in qid):
        raise InputError(f"query ids must be non-empty strings without whitespace, got {qid!r}")
    ranked = _ranked(scores, qid)[:depth]
    return "".join(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n"
                   for rank, (doc_id, score) in enumerate(ranked, start=1))


def write_run(run: Mapping[str, Mapping[str, float] | Sequence[tuple[str, float]]], path: str | Path,
              tag: str, depth: int | None = None) -> Path:
    """Write ``run`` as a TREC run file, replacing ``path`` atomically.

    Queries are written in sorted order of their ids; within a query documents go by score
    descending, ties by document id, ranks from 1.

    Args:
        run: query id -> document id -> score, or query id -> ``[(doc_id, score), ...]``.
        path: the file to write (its folder is created).
        tag: the run tag (last column), without whitespace.
        depth: keep this many documents per query (``None`` keeps all).

    Raises:
        InputError: the run is empty, or an id, tag or score cannot be written.
    """
    _check_tag(tag)
    if not run:
        raise InputError("cannot write an empty run")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [format_query_block(qid, run[qid], tag, depth) for qid in sorted(run)]
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(blocks)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


class ResumableRunWriter:
    """Appends a run one query at a time, so that an interrupted job can resume where it stopped.

    Each query's block of lines is appended, flushed and fsynced; only then is the query recorded
    as complete in a progress file next to the run (``<path>.progress``, one line per query:
    ``qid<TAB>byte offset where its block ends``). Reopening the same path reads the progress
    file, cuts the run back to the end of the last complete block (dropping lines a killed process
    left half-written) and reports the complete queries in :attr:`done`, which a job skips.
    Writing a query twice is refused, so a resumed run has every query exactly once.

    Use as a context manager::

        with ResumableRunWriter("runs/rerank.trec", tag="rerank") as writer:
            for qid in writer.pending(all_qids):
                writer.write(qid, score_query(qid))

    Args:
        path: the run file.
        tag: the run tag (last column).
        depth: keep this many documents per query (``None`` keeps all).

    Attributes:
        dropped_bytes: how much unconfirmed data reopening cut from the end of the run.

    Raises:
        CorruptionError: the run file exists without a progress file, or is shorter than the
            progress file says (it was changed by something else).
        InputError: another process has the same run open for writing.
    """

    def __init__(self, path: str | Path, tag: str, depth: int | None = None) -> None:
        self.path = Path(path)
        self.tag = _check_tag(tag)
        self.depth = depth
        self.progress_path = self.path.with_name(self.path.name + ".progress")
        self._done: dict[str, int] = {}
        self._end = 0
        self._run_file: IO[bytes] | None = None
        self._progress_file: IO[bytes] | None = None
        self.dropped_bytes = 0
        self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0 and not self.progress_path.exists():
            raise CorruptionError(
                f"{self.path} exists but has no progress file {self.progress_path.name}, so its "
                f"complete queries cannot be told from a partial one; move it away or write "
                f"to another path")
        self._progress_file = open(self.progress_path, "ab")
        try:
            self._lock(self._progress_file)
            committed = self._read_progress()
            end = max(committed.values(), default=0)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size < end:
                raise CorruptionError(f"{self.path} is {size} bytes but its progress file records complete "
                                      f"queries up to byte {end}; the run was changed after it was written")
            self._run_file = open(self.path, "r+b" if self.path.exists() else "w+b")
            if size > end:
                # Lines past the last recorded block come from a process that died mid-query.
                self._run_file.truncate(end)
                self._sync(self._run_file)
                self.dropped_bytes = size - end
            self._run_file.seek(end)
        except BaseException:
            self.close()
            raise
        self._done = committed
        self._end = end

    def _lock(self, file: IO[bytes]) -> None:
        """Refuse a second writer on the same run (where the platform offers advisory locks)."""
        try:
            import fcntl
        except ImportError:  # not on POSIX: no protection against two writers
            return
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"{self.path} is being written by another process") from None

    def _read_progress(self) -> dict[str, int]:
        committed: dict[str, int] = {}
        data = self.progress_path.read_bytes()
        complete, _, partial = data.rpartition(b"\n")
        if partial:
            # A progress line cut short: its query's block was never confirmed, so it is redone.
            assert self._progress_file is not None
            self._progress_file.truncate(len(complete) + 1 if complete else 0)
            self._sync(self._progress_file)
        previous = 0
        for number, raw in enumerate(complete.split(b"\n") if complete else [], start=1):
            try:
                qid, offset_text = raw.decode("utf-8").split("\t")
                offset = int(offset_text)
            except ValueError:
                raise CorruptionError(f"{self.progress_path}:{number}: expected 'qid<TAB>offset', "
                                      f"got {raw[:80]!r}") from None
            if offset < previous or qid in committed:
                raise CorruptionError(f"{self.progress_path}:{number}: query {qid!r} at offset {offset} "
                                      f"repeats a query or goes backwards")
            committed[qid] = offset
            previous = offset
        return committed

    @staticmethod
    def _sync(file: IO[bytes]) -> None:
        file.flush()
        os.fsync(file.fileno())

    @property
    def done(self) -> frozenset[str]:
        """Query ids whose block is complete in the run file."""
        return frozenset(self._done)

    def pending(self, qids: Iterable[str]) -> list[str]:
        """The ids among ``qids`` that are not complete yet, in the given order."""
        return [qid for qid in qids if qid not in self._done]

    def write(self, qid: str, scores: Mapping[str, float] | Sequence[tuple[str, float]]) -> None:
        """Append the ranking of one query and record it as complete.

        Raises:
            InputError: the query was already written (in this or an earlier process), its
                ranking is empty, or an id or score cannot be written.
        """
        if self._run_file is None or self._progress_file is None:
            raise InputError(f"the writer of {self.path} is closed")
        if qid in self._done:
            raise InputError(f"query {qid!r} is already complete in {self.path}; skip the queries in "
                             f"writer.done (or writer.pending(...)) when resuming")
        block = format_query_block(qid, scores, self.tag, self.depth)
        if not block:
            raise InputError(f"query {qid!r} has no documents to write")
        start = self._end
        try:
            self._run_file.write(block.encode("utf-8"))
            self._sync(self._run_file)
            end = os.fstat(self._run_file.fileno()).st_size
            self._progress_file.write(f"{qid}\t{end}\n".encode("utf-8"))
            self._sync(self._progress_file)
        except BaseException:
            # Leave no half-written block behind for the next query to be appended after.
            self._rollback(start)
            raise
        self._done[qid] = end
        self._end = end

    def _rollback(self, end: int) -> None:
        assert self._run_file is not None and self._progress_file is not None
        try:
            self._run_file.seek(end)
            self._run_file.truncate(end)
            self._sync(self._run_file)
            self._progress_file.truncate(self._progress_size())
            self._sync(self._progress_file)
        except OSError:
            pass  # reopening the writer repairs both files from the progress record

    def _progress_size(self) -> int:
        """Bytes of the progress file that record complete queries."""
        return sum(len(f"{qid}\t{offset}\n".encode("utf-8")) for qid, offset in self._done.items())

    def close(self) -> None:
        """Close the files; everything written is already on disk."""
        for file in (self._run_file, self._progress_file):
            if file is not None:
                file.close()
        self._run_file = self._progress_file = None

    def __enter__(self) -> ResumableRunWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

"""First-stage runs to re-rank: by name, from a TREC file, or the dataset's own scoreddocs.

Named runs exist for TREC DL 2019 passages when ``LATEINT_DATA`` is set: ``bm25``, ``bm25-rm3``,
``tasb``, ``splade-pp-ed`` and ``ada2`` (top-100 each). Where the dataset's own scoreddocs are a
known retrieval model's run (:data:`SCOREDDOCS_RUNS`), that model's name also names them, so a
config that asks for ``bm25`` works with or without the local files: on MS MARCO passage ids
``bm25`` is the official BM25 top-1000 that ``ir_datasets`` downloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lateint.data import local_folder, msmarco_subset
from lateint.data.local_share import DATA_ENV
from lateint.data.run_types import Run
from lateint.data.runs import RunAccumulator, check_run_queries, read_run
from lateint.errors import InputError

if TYPE_CHECKING:  # the dataset module builds on this one, never the other way round
    from lateint.data.datasets import DatasetHandle


#: Which run a dataset's own scoreddocs are, by ``ir_datasets`` id prefix (from the dataset
#: documentation ``ir_datasets`` ships: "scoreddocs are the top 1000 results from BM25" on every
#: MS MARCO passage subset that has them; the local DL19 subset's are the BM25 top-100).
SCOREDDOCS_RUNS: dict[str, str] = {
    "msmarco-passage/": "bm25",
    msmarco_subset.SUBSET_ID + "/": msmarco_subset.SCOREDDOCS_RUN,
}


def scoreddocs_run_name(handle: DatasetHandle) -> str | None:
    """The name of the run a dataset's scoreddocs are (e.g. ``bm25``), if it is known."""
    for prefix, name in SCOREDDOCS_RUNS.items():
        if handle.irds_id.startswith(prefix):
            return name
    return None


def runs_by_name(handle: DatasetHandle) -> dict[str, Path]:
    """The first-stage runs available by name for a dataset: name -> run file."""
    if handle.irds_id.startswith(msmarco_subset.SUBSET_ID):
        return msmarco_subset.run_files()
    if handle.irds_id.startswith(local_folder.LOCAL_PREFIX + "/"):
        return local_folder.run_files(handle.name)
    return {}


def run_file(handle: DatasetHandle, run: str | Path | None) -> Path | None:
    """The file a first-stage run names, or ``None`` for the dataset's own scoreddocs.

    ``None`` and the name of the scoreddocs (:func:`scoreddocs_run_name`, when no named run of
    that name exists) give the scoreddocs; a name of :func:`runs_by_name` gives its file (names
    win over files of the same name); anything else must be an existing file. Every reader of
    first-stage runs (re-ranking, cache builds, sweeps, evaluation, training) resolves names here.

    Raises:
        InputError: the name is neither a known run nor an existing file (the message lists the
            runs that exist and says that the dataset's scoreddocs are the default).
    """
    if run is None:
        return None
    available = runs_by_name(handle) if isinstance(run, str) else {}
    if isinstance(run, str) and run in available:
        return available[run]
    if isinstance(run, str) and run == scoreddocs_run_name(handle) and handle.dataset.has_scoreddocs():
        return None
    if Path(run).is_file():
        return Path(run)
    raise InputError(_unknown_run_message(handle, str(run), available))


def read_first_stage(handle: DatasetHandle, run: str | Path | Mapping[str, Any] | None = None) -> Run:
    """A first-stage run for a dataset, checked against its queries.

    Args:
        handle: the dataset.
        run: ``None`` for the dataset's scoreddocs; a run name from :func:`runs_by_name`, or the
            name :func:`scoreddocs_run_name` gives the scoreddocs (names win over files of the
            same name); the path of a TREC run file; or a run in memory, either query id ->
            document id -> score or query id -> ``[(doc_id, score), ...]``.

    Returns:
        query id -> document id -> score.

    Raises:
        InputError: the name is neither a known run nor an existing file, the run is empty or
            malformed, or it has queries the dataset does not have.
        MissingResourceError: a named run's files are not available.
    """
    if isinstance(run, Mapping):
        result = _from_memory(run)
        source = "the given run"
    elif run is None or isinstance(run, (str, Path)):
        path = run_file(handle, run)
        if path is None:
            result = handle.scoreddocs()
            source = f"scoreddocs of {handle.irds_id}"
        else:
            result = read_run(path)
            source = f"run file {path}"
    else:
        raise InputError(f"a run must be a name, a path or a mapping, got {type(run).__name__}")
    check_run_queries(result, handle.queries(), source=source)
    return result


def _unknown_run_message(handle: DatasetHandle, run: str, available: Mapping[str, Path]) -> str:
    """Which runs exist for the dataset, and that its own scoreddocs are the default."""
    names = ", ".join(sorted(available)) or (
        f"none; named runs exist for msmarco-passage/trec-dl-2019/judged when {DATA_ENV} is set")
    if handle.dataset.has_scoreddocs():
        named = scoreddocs_run_name(handle)
        default = (f"the default first stage is the dataset's own scoreddocs"
                   f"{f' (also called {named!r})' if named else ''}: leave the first stage unset to use them")
    else:
        default = (f"{handle.name!r} has no scoreddocs of its own to default to: make a run with "
                   f"`lateint retrieve --dataset {handle.name} --method bm25 --out RUN.trec` and name that file")
    return (f"{run!r} is neither a run known for {handle.name!r} (known: {names}) nor an existing run file; "
            f"{default}")


def _from_memory(run: Mapping[str, Any]) -> Run:
    accumulator = RunAccumulator(source="the given run")
    for qid, ranking in run.items():
        items = ranking.items() if isinstance(ranking, Mapping) else ranking
        for doc_id, score in items:
            accumulator.add(str(qid), str(doc_id), float(score))
    return accumulator.run()

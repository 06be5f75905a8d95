"""First-stage runs to re-rank: by name, from a TREC file, or the dataset's own scoreddocs.

Named runs exist for TREC DL 2019 passages when ``LATEINT_DATA`` is set: ``bm25``, ``bm25-rm3``,
``tasb``, ``splade-pp-ed`` and ``ada2`` (top-100 each).
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


def runs_by_name(handle: DatasetHandle) -> dict[str, Path]:
    """The first-stage runs available by name for a dataset: name -> run file."""
    if handle.irds_id.startswith(msmarco_subset.SUBSET_ID):
        return msmarco_subset.run_files()
    if handle.irds_id.startswith(local_folder.LOCAL_PREFIX + "/"):
        return local_folder.run_files(handle.name)
    return {}


def read_first_stage(handle: DatasetHandle, run: str | Path | Mapping[str, Any] | None = None) -> Run:
    """A first-stage run for a dataset, checked against its queries.

    Args:
        handle: the dataset.
        run: ``None`` for the dataset's scoreddocs; a run name from :func:`runs_by_name` (names win
            over files of the same name); the path of a TREC run file; or a run in memory, either
            query id -> document id -> score or query id -> ``[(doc_id, score), ...]``.

    Returns:
        query id -> document id -> score.

    Raises:
        InputError: the name is neither a known run nor an existing file, the run is empty or
            malformed, or it has queries the dataset does not have.
        MissingResourceError: a named run's files are not available.
    """
    if run is None:
        result = handle.scoreddocs()
        source = f"scoreddocs of {handle.irds_id}"
    elif isinstance(run, Mapping):
        result = _from_memory(run)
        source = "the given run"
    elif isinstance(run, (str, Path)):
        available = runs_by_name(handle)
        if isinstance(run, str) and run in available:
            path = available[run]
        elif Path(run).is_file():
            path = Path(run)
        else:
            names = ", ".join(sorted(available)) or (
                f"none; named runs exist for msmarco-passage/trec-dl-2019/judged when {DATA_ENV} is set")
            raise InputError(f"{str(run)!r} is neither a run known for {handle.name!r} (known: {names}) "
                             f"nor an existing run file")
        result = read_run(path)
        source = f"run file {path}"
    else:
        raise InputError(f"a run must be a name, a path or a mapping, got {type(run).__name__}")
    check_run_queries(result, handle.queries(), source=source)
    return result


def _from_memory(run: Mapping[str, Any]) -> Run:
    accumulator = RunAccumulator(source="the given run")
    for qid, ranking in run.items():
        items = ranking.items() if isinstance(ranking, Mapping) else ranking
        for doc_id, score in items:
            accumulator.add(str(qid), str(doc_id), float(score))
    return accumulator.run()

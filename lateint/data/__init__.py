"""Test collections and first-stage runs, read lazily through ``ir_datasets``.

Set ``LATEINT_DATA`` to a folder of local collection files to work offline (see
:mod:`lateint.data.local_share` for its layout).
"""

from lateint.data.datasets import (
    DatasetHandle,
    first_stage_run,
    load_dataset,
    named_runs,
    official_relevance_level,
    resolve_dataset_id,
)
from lateint.data.local_share import CACHE_ENV, DATA_ENV
from lateint.data.msmarco_subset import SUBSET_ID, SUBSET_JUDGED_ID
from lateint.data.run_types import Qrels, RankedLists, Run, rank_run, ranking_order
from lateint.data.runs import (
    ResumableRunWriter,
    RunAccumulator,
    check_run_queries,
    format_query_block,
    read_run,
    write_run,
)

__all__ = [
    "CACHE_ENV",
    "DATA_ENV",
    "DatasetHandle",
    "Qrels",
    "RankedLists",
    "ResumableRunWriter",
    "Run",
    "RunAccumulator",
    "SUBSET_ID",
    "SUBSET_JUDGED_ID",
    "check_run_queries",
    "first_stage_run",
    "format_query_block",
    "load_dataset",
    "named_runs",
    "official_relevance_level",
    "rank_run",
    "ranking_order",
    "read_run",
    "resolve_dataset_id",
    "write_run",
]

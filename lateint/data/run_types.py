"""Plain-dict shapes shared by the data and evaluation modules.

They are the shapes ``ranx`` and ``ir_datasets`` users already pass around, so no conversion is
needed at the boundaries.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

#: query id -> document id -> score (the order of documents is given by score, not by position).
Run = Dict[str, Dict[str, float]]
#: query id -> document id -> graded relevance.
Qrels = Dict[str, Dict[str, int]]
#: query id -> [(document id, score), ...] ordered best first.
RankedLists = Dict[str, List[Tuple[str, float]]]


def ranking_order(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Documents of one query best first: score descending, ties by document id ascending.

    The tie rule makes a ranking reproducible whatever order the scores were produced in.
    """
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def rank_run(run: Run, depth: int | None = None) -> RankedLists:
    """Order every query of ``run`` with :func:`ranking_order`, keeping the top ``depth``."""
    return {qid: ranking_order(scores)[:depth] for qid, scores in run.items()}

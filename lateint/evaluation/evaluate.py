"""Scoring runs against qrels with ``ranx``, with significance tests against a baseline."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from lateint.data.datasets import DatasetHandle
from lateint.data.run_types import Qrels, Run
from lateint.data.runs import RunAccumulator, read_run
from lateint.evaluation.metrics import parse_metrics
from lateint.evaluation.result import Comparison, EvaluationResult
from lateint.evaluation.significance import CORRECTIONS, adjust_p_values
from lateint.errors import InputError

#: A run: query id -> document id -> score, query id -> [(doc_id, score), ...], or a TREC run
#: file (or, when evaluating against a dataset, the name of one of its first-stage runs).
RunLike = Union[Mapping[str, Mapping[str, float]], Mapping[str, Sequence[tuple[str, float]]], str, Path]

STAT_TESTS = ("student", "fisher")


def evaluate(
    qrels: Mapping[str, Mapping[str, int]] | DatasetHandle,
    runs: Mapping[str, RunLike],
    metrics: Sequence[str] | None = None,
    *,
    baseline: str | None = None,
    relevance_level: int | None = None,
    stat_test: str = "student",
    correction: str = "holm",
    alpha: float = 0.05,
    n_permutations: int = 1000,
    random_seed: int = 42,
) -> EvaluationResult:
    """Score ``runs`` on ``metrics`` and test each against ``baseline``.

    Scores come from ``ranx``. The evaluated queries are those of the qrels: a query a run has
    no results for scores 0 on every metric (as ``trec_eval -c``), and run queries without
    judgements are ignored.

    Significance: each run other than the baseline is compared with it by ``ranx.compare``
    (two-sided paired Student's t-test, or Fisher's randomization test), so the raw p-values are
    ``ranx``'s. ``ranx`` applies no multiple-testing correction, so the p-values of the whole
    family (every compared run x every metric) are then adjusted, by default with Holm-Bonferroni
    (see :mod:`lateint.evaluation.significance`), and a comparison is significant when its
    adjusted p-value is at most ``alpha``. With ``correction="none"`` the verdicts are exactly
    ``ranx.compare``'s at ``max_p=alpha``.

    Args:
        qrels: query id -> document id -> grade, or a dataset handle (its qrels, its official
            relevance level, and its named first-stage runs usable by name in ``runs``).
        runs: run name -> run (see :data:`RunLike`); the names label the rows, in this order.
        metrics: metric names (see :func:`lateint.evaluation.metrics.parse_metric`); default
            nDCG@10, MRR@10, MAP, R@100.
        baseline: name of the run the others are tested against; ``None`` tests nothing.
        relevance_level: lowest grade binary measures count as relevant; default the dataset's
            official level when ``qrels`` is a dataset (2 on TREC DL), else 1.
        stat_test: ``student`` or ``fisher``.
        correction: ``holm``, ``bonferroni`` or ``none``.
        alpha: significance level.
        n_permutations: permutations of Fisher's randomization test.
        random_seed: seed of Fisher's randomization test.

    Raises:
        InputError: empty qrels or runs, unknown baseline, unknown metric or test, or a run
            that covers none of the judged queries.
    """
    import ranx

    handle = qrels if isinstance(qrels, DatasetHandle) else None
    qrels_dict = _clean_qrels(handle.qrels() if handle is not None else qrels)
    if relevance_level is None:
        relevance_level = handle.official_relevance_level if handle is not None else 1
    specs = parse_metrics(list(metrics) if metrics is not None else None, relevance_level)
    if not isinstance(runs, Mapping) or not runs:
        raise InputError("runs must be a non-empty mapping of run name -> run")
    if baseline is not None and baseline not in runs:
        raise InputError(f"baseline {baseline!r} is not one of the runs: {', '.join(map(str, runs))}")
    if stat_test not in STAT_TESTS:
        raise InputError(f"stat_test must be one of {STAT_TESTS}, got {stat_test!r}")
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")

    names = [str(name) for name in runs]
    loaded = {name: _load_run(name, run, handle) for name, run in zip(names, runs.values())}
    query_ids = sorted(qrels_dict)
    missing = {name: [qid for qid in query_ids if qid not in run] for name, run in loaded.items()}
    for name, run in loaded.items():
        if len(missing[name]) == len(query_ids):
            raise InputError(f"run {name!r} has results for none of the {len(query_ids)} judged queries; "
                             f"was it made for another dataset?")

    ranx_names = [spec.ranx_name for spec in specs]
    ranx_qrels = ranx.Qrels.from_dict(qrels_dict)
    ranx_runs = {}
    for name, run in loaded.items():
        judged_only = {qid: docs for qid, docs in run.items() if qid in qrels_dict and docs}
        ranx_run = ranx.Run.from_dict(judged_only, name=name)
        ranx_runs[name] = ranx_run.make_comparable(ranx_qrels)

    with warnings.catch_warnings():
        # ranx's compiled metrics warn about an unsigned-to-signed cast that cannot matter here.
        warnings.filterwarnings("ignore", message=".*unsafe cast.*")
        per_query: dict[str, dict[str, dict[str, float]]] = {}
        for name, ranx_run in ranx_runs.items():
            ranx.evaluate(ranx_qrels, ranx_run, ranx_names, return_mean=False, save_results_in_run=True)
            per_query[name] = {
                spec.label: {qid: float(ranx_run.scores[spec.ranx_name][qid]) for qid in query_ids} for spec in specs
            }
        others = [name for name in names if name != baseline]
        raw_p: dict[tuple[str, str], float] = {}
        if baseline is not None and others:
            report = ranx.compare(
                qrels=ranx_qrels,
                runs=[ranx_runs[baseline], *(ranx_runs[name] for name in others)],
                metrics=ranx_names,
                stat_test=stat_test,
                n_permutations=n_permutations,
                max_p=alpha,
                random_seed=random_seed,
            )
            for name in others:
                for spec in specs:
                    raw_p[(name, spec.label)] = float(report.comparisons[baseline, name][spec.ranx_name]["p_value"])

    means = {name: {label: _mean(scores.values()) for label, scores in per_query[name].items()} for name in names}
    comparisons: dict[str, dict[str, Comparison]] = {}
    if raw_p:
        keys = list(raw_p)
        adjusted = dict(zip(keys, adjust_p_values([raw_p[key] for key in keys], correction)))
        for (name, label), p_value in raw_p.items():
            comparisons.setdefault(name, {})[label] = Comparison(
                p_value=p_value,
                p_adjusted=adjusted[(name, label)],
                significant=adjusted[(name, label)] <= alpha,
                difference=means[name][label] - means[baseline][label],
            )
    return EvaluationResult(
        metrics=specs,
        run_names=names,
        means=means,
        per_query=per_query,
        baseline=baseline,
        comparisons=comparisons,
        stat_test=stat_test,
        correction=correction,
        alpha=alpha,
        relevance_level=relevance_level,
        query_ids=query_ids,
        missing_queries=missing,
    )


def _mean(values: Any) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


def _clean_qrels(qrels: Mapping[str, Mapping[str, int]]) -> Qrels:
    if not isinstance(qrels, Mapping):
        raise InputError(f"qrels must be a mapping of query id -> document id -> grade, got {type(qrels).__name__}")
    clean: Qrels = {}
    for qid, judged in qrels.items():
        if not isinstance(judged, Mapping):
            raise InputError(f"qrels of query {qid!r} must map document ids to grades")
        if judged:
            try:
                clean[str(qid)] = {str(doc_id): int(grade) for doc_id, grade in judged.items()}
            except (TypeError, ValueError):
                raise InputError(f"qrels of query {qid!r} hold a grade that is not an integer") from None
    if not clean:
        raise InputError("qrels are empty: there is nothing to evaluate against")
    return clean


def _load_run(name: str, run: RunLike, handle: DatasetHandle | None) -> Run:
    if isinstance(run, (str, Path)):
        if handle is not None:
            from lateint.data.first_stage import read_first_stage

            return read_first_stage(handle, run)
        return read_run(run)
    if not isinstance(run, Mapping):
        raise InputError(f"run {name!r} must be a mapping or a run file path, got {type(run).__name__}")
    accumulator = RunAccumulator(source=f"run {name!r}")
    for qid, ranking in run.items():
        items = ranking.items() if isinstance(ranking, Mapping) else ranking
        for doc_id, score in items:
            score = float(score)
            if not math.isfinite(score):
                raise InputError(f"run {name!r}, query {qid!r}: document {doc_id!r} has a non-finite score")
            accumulator.add(str(qid), str(doc_id), score)
    return accumulator.run()

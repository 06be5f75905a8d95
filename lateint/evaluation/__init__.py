"""Evaluation of runs with ``ranx``: mean and per-query scores, significance against a baseline
with a multiple-testing correction, and tables in Markdown, LaTeX and JSON."""

from lateint.evaluation.evaluate import STAT_TESTS, RunLike, evaluate
from lateint.evaluation.metrics import DEFAULT_METRICS, MetricSpec, parse_metric, parse_metrics
from lateint.evaluation.result import BETTER_MARK, WORSE_MARK, Comparison, EvaluationResult
from lateint.evaluation.significance import CORRECTIONS, adjust_p_values

__all__ = [
    "BETTER_MARK",
    "CORRECTIONS",
    "Comparison",
    "DEFAULT_METRICS",
    "EvaluationResult",
    "MetricSpec",
    "RunLike",
    "STAT_TESTS",
    "WORSE_MARK",
    "adjust_p_values",
    "evaluate",
    "parse_metric",
    "parse_metrics",
]

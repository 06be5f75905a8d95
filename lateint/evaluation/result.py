"""The outcome of :func:`lateint.evaluation.evaluate`, renderable as Markdown, LaTeX or JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from lateint.evaluation.metrics import MetricSpec
from lateint.errors import InputError

#: Marks a run significantly better / worse than the baseline on a metric.
BETTER_MARK = "↑"
WORSE_MARK = "↓"
_LATEX_MARKS = {BETTER_MARK: r"$^{\uparrow}$", WORSE_MARK: r"$^{\downarrow}$"}
_TEST_NAMES = {"student": "two-sided paired Student's t-test", "fisher": "Fisher's randomization test"}


@dataclass(frozen=True)
class Comparison:
    """One run against the baseline on one metric.

    Attributes:
        p_value: the test's p-value as ``ranx.compare`` reports it (NaN when both score vectors
            are identical).
        p_adjusted: the p-value after the multiple-testing correction over all runs x metrics.
        significant: ``p_adjusted <= alpha``.
        difference: the run's mean minus the baseline's.
    """

    p_value: float
    p_adjusted: float
    significant: bool
    difference: float

    @property
    def mark(self) -> str:
        """:data:`BETTER_MARK`, :data:`WORSE_MARK`, or ``""`` when not significant."""
        if not self.significant or self.difference == 0:
            return ""
        return BETTER_MARK if self.difference > 0 else WORSE_MARK


@dataclass
class EvaluationResult:
    """Mean and per-query scores of several runs, with significance against a baseline.

    Attributes:
        metrics: the metrics, in column order.
        run_names: the runs, in row order.
        means: run -> metric label -> mean over the evaluated queries.
        per_query: run -> metric label -> query id -> score.
        baseline: the run the others were tested against, if any.
        comparisons: run -> metric label -> :class:`Comparison` (runs other than the baseline).
        stat_test: ``student`` or ``fisher``.
        correction: ``holm``, ``bonferroni`` or ``none``.
        alpha: significance level applied to the corrected p-values.
        relevance_level: the default lowest relevant grade of binary measures.
        query_ids: the evaluated queries (those of the qrels).
        missing_queries: run -> evaluated queries the run has no results for (they score 0).
    """

    metrics: list[MetricSpec]
    run_names: list[str]
    means: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]]
    baseline: str | None = None
    comparisons: dict[str, dict[str, Comparison]] = field(default_factory=dict)
    stat_test: str = "student"
    correction: str = "holm"
    alpha: float = 0.05
    relevance_level: int = 1
    query_ids: list[str] = field(default_factory=list)
    missing_queries: dict[str, list[str]] = field(default_factory=dict)

    @property
    def metric_labels(self) -> list[str]:
        """The metric column names."""
        return [spec.label for spec in self.metrics]

    def mean(self, run: str, metric: str) -> float:
        """Mean score of ``run`` on the metric labelled ``metric``."""
        self._check(run, metric)
        return self.means[run][metric]

    def query_scores(self, metric: str) -> dict[str, dict[str, float]]:
        """Query id -> run -> score on one metric, for per-query plots.

        Raises:
            InputError: the metric was not evaluated.
        """
        if metric not in self.metric_labels:
            raise InputError(f"metric {metric!r} was not evaluated; evaluated: {', '.join(self.metric_labels)}")
        return {qid: {run: self.per_query[run][metric][qid] for run in self.run_names} for qid in self.query_ids}

    def mark(self, run: str, metric: str) -> str:
        """The significance mark of ``run`` on ``metric`` (``""`` for the baseline or no test)."""
        self._check(run, metric)
        comparison = self.comparisons.get(run, {}).get(metric)
        return comparison.mark if comparison is not None else ""

    def _check(self, run: str, metric: str) -> None:
        if run not in self.means:
            raise InputError(f"no run named {run!r}; runs: {', '.join(self.run_names)}")
        if metric not in self.metric_labels:
            raise InputError(f"metric {metric!r} was not evaluated; evaluated: {', '.join(self.metric_labels)}")

    # Rendering ------------------------------------------------------------------------------

    def legend(self) -> str:
        """One paragraph saying how the table was computed."""
        parts = [f"{len(self.query_ids)} queries."]
        binary = sorted({spec.relevance_level for spec in self.metrics if spec.relevance_level is not None})
        if binary:
            levels = " / ".join(str(level) for level in binary)
            parts.append(f"Binary measures count relevance >= {levels} as relevant.")
        if self.baseline is not None and self.comparisons:
            tests = sum(len(by_metric) for by_metric in self.comparisons.values())
            corrected = {"holm": f", Holm-Bonferroni correction over {tests} tests",
                         "bonferroni": f", Bonferroni correction over {tests} tests",
                         "none": ", no multiple-testing correction"}[self.correction]
            parts.append(f"{BETTER_MARK}/{WORSE_MARK}: significantly better/worse than {self.baseline} "
                         f"({_TEST_NAMES.get(self.stat_test, self.stat_test)}{corrected}, p <= {self.alpha:g}).")
        missing = {run: len(qids) for run, qids in self.missing_queries.items() if qids}
        if missing:
            listed = ", ".join(f"{run}: {count}" for run, count in missing.items())
            parts.append(f"Queries without results score 0 ({listed}).")
        return " ".join(parts)

    def _row_name(self, run: str) -> str:
        return f"{run} (baseline)" if run == self.baseline else run

    def to_markdown(self, digits: int = 4) -> str:
        """A Markdown table, one row per run, followed by the legend."""
        header = "| Run | " + " | ".join(self.metric_labels) + " |"
        rule = "|---|" + "---:|" * len(self.metrics)
        rows = [
            "| " + self._row_name(run) + " | "
            + " | ".join(f"{self.means[run][label]:.{digits}f}{self.mark(run, label)}" for label in self.metric_labels)
            + " |"
            for run in self.run_names
        ]
        return "\n".join([header, rule, *rows, "", self.legend()]) + "\n"

    def to_latex(self, digits: int = 4, caption: str | None = None, label: str = "tab:results") -> str:
        """A ``booktabs`` table (``\\usepackage{booktabs}``), the best mean of each column in bold."""
        best = {
            metric: max(round(self.means[run][metric], digits) for run in self.run_names)
            for metric in self.metric_labels
        }
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\caption{" + _latex_escape(caption if caption is not None else self.legend()) + "}",
            r"\label{" + label + "}",
            r"\begin{tabular}{l" + "r" * len(self.metrics) + "}",
            r"\toprule",
            "Run & " + " & ".join(_latex_escape(m) for m in self.metric_labels) + r" \\",
            r"\midrule",
        ]
        for run in self.run_names:
            cells = []
            for metric in self.metric_labels:
                value = f"{self.means[run][metric]:.{digits}f}"
                if round(self.means[run][metric], digits) == best[metric]:
                    value = r"\textbf{" + value + "}"
                cells.append(value + _LATEX_MARKS.get(self.mark(run, metric), ""))
            lines.append(_latex_escape(self._row_name(run)) + " & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"

    def to_dict(self, per_query: bool = False) -> dict[str, Any]:
        """Everything as plain JSON-compatible values (NaN p-values become ``None``)."""
        result: dict[str, Any] = {
            "metrics": [
                {"label": s.label, "ranx": s.ranx_name, "relevance_level": s.relevance_level} for s in self.metrics
            ],
            "runs": list(self.run_names),
            "baseline": self.baseline,
            "stat_test": self.stat_test,
            "correction": self.correction,
            "alpha": self.alpha,
            "relevance_level": self.relevance_level,
            "num_queries": len(self.query_ids),
            "means": {run: dict(self.means[run]) for run in self.run_names},
            "comparisons": {
                run: {
                    metric: {
                        "p_value": _finite_or_none(c.p_value),
                        "p_adjusted": _finite_or_none(c.p_adjusted),
                        "significant": bool(c.significant),
                        "difference": c.difference,
                        "mark": c.mark,
                    }
                    for metric, c in by_metric.items()
                }
                for run, by_metric in self.comparisons.items()
            },
            "missing_queries": {run: list(qids) for run, qids in self.missing_queries.items()},
        }
        if per_query:
            result["per_query"] = {run: {m: dict(s) for m, s in by_metric.items()}
                                   for run, by_metric in self.per_query.items()}
        return result

    def to_json(self, per_query: bool = False, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(per_query=per_query), indent=indent, ensure_ascii=False)

    def render(self, format: str = "markdown", digits: int = 4) -> str:
        """The result as ``markdown``, ``latex`` or ``json``."""
        if format == "markdown":
            return self.to_markdown(digits)
        if format == "latex":
            return self.to_latex(digits)
        if format == "json":
            return self.to_json() + "\n"
        raise InputError(f"format must be markdown, latex or json, got {format!r}")

    def __str__(self) -> str:
        return self.to_markdown()


def _finite_or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


_LATEX_CHARS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                BETTER_MARK: r"$\uparrow$", WORSE_MARK: r"$\downarrow$", "≥": r"$\geq$", "≤": r"$\leq$"}


def _latex_escape(text: str) -> str:
    # Character by character, so that no escape sequence is itself escaped again.
    return "".join(_LATEX_CHARS.get(ch, ch) for ch in text.replace(">=", "≥").replace("<=", "≤"))

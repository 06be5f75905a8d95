"""Metric names as people write them (``nDCG@10``, ``MRR@10``, ``MAP``, ``R@100``) and as ``ranx``
computes them.

Binary measures (reciprocal rank, average precision, recall, precision, R-precision, bpref) need
a grade from which a judged document counts as relevant; ``ranx`` reads it from a ``-l<level>``
suffix (``map-l2``) and :func:`parse_metric` adds that suffix from the collection's level (2 on
TREC DL). Graded measures (nDCG) use the grades themselves, with linear gains as ``trec_eval``'s
``ndcg_cut``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lateint.errors import InputError

#: What :func:`lateint.evaluation.evaluate` reports when no metrics are named.
DEFAULT_METRICS: tuple[str, ...] = ("nDCG@10", "MRR@10", "MAP", "R@100")


@dataclass(frozen=True)
class _Measure:
    ranx_name: str
    label: str
    binary: bool


_MEASURES: dict[str, _Measure] = {
    "ndcg": _Measure("ndcg", "nDCG", False),
    "ndcg_burges": _Measure("ndcg_burges", "nDCG-Burges", False),
    "mrr": _Measure("mrr", "MRR", True),
    "rr": _Measure("mrr", "MRR", True),
    "map": _Measure("map", "MAP", True),
    "ap": _Measure("map", "MAP", True),
    "r": _Measure("recall", "R", True),
    "recall": _Measure("recall", "R", True),
    "p": _Measure("precision", "P", True),
    "precision": _Measure("precision", "P", True),
    "r-precision": _Measure("r-precision", "R-Prec", True),
    "rprec": _Measure("r-precision", "R-Prec", True),
    "bpref": _Measure("bpref", "bpref", True),
}

_PATTERN = re.compile(r"^(?P<name>[a-z_\-]+?)(?:@(?P<cutoff>\d+))?(?:-l(?P<level>-?\d+))?$")


@dataclass(frozen=True)
class MetricSpec:
    """One metric, resolved.

    Attributes:
        label: the name shown in tables (``nDCG@10``, ``MAP``; ``MAP-l1`` when the level was named
            explicitly).
        ranx_name: the name ``ranx`` computes it under (``ndcg@10``, ``map-l2``).
        relevance_level: lowest grade counted as relevant, for binary measures; ``None`` for
            graded ones.
    """

    label: str
    ranx_name: str
    relevance_level: int | None


def parse_metric(name: str, relevance_level: int = 1) -> MetricSpec:
    """Resolve a metric name such as ``nDCG@10``, ``MRR@10``, ``MAP``, ``R@100`` or ``map@100-l1``.

    Args:
        name: the metric; case does not matter; ``-l<level>`` names the relevance level
            explicitly, otherwise binary measures use ``relevance_level``.
        relevance_level: lowest grade binary measures count as relevant.

    Raises:
        InputError: unknown measure, malformed name, or a level on a graded measure.
    """
    if not isinstance(name, str):
        raise InputError(f"a metric name must be a string, got {name!r}")
    match = _PATTERN.match(name.strip().lower())
    measure = _MEASURES.get(match.group("name")) if match else None
    if match is None or measure is None:
        known = ", ".join(sorted({m.label for m in _MEASURES.values()}))
        raise InputError(f"unknown metric {name!r}; use one of {known}, optionally with @k and -l<level> "
                         f"(e.g. nDCG@10, MRR@10, MAP, R@100, map-l2)")
    cutoff = match.group("cutoff")
    if cutoff is not None and int(cutoff) < 1:
        raise InputError(f"metric {name!r}: the cutoff after @ must be at least 1")
    explicit_level = match.group("level")
    if explicit_level is not None and not measure.binary:
        raise InputError(f"metric {name!r}: {measure.label} uses graded relevance and takes no -l level")
    if not isinstance(relevance_level, int) or relevance_level < 1:
        raise InputError(f"relevance_level must be an integer >= 1, got {relevance_level!r}")
    at = f"@{cutoff}" if cutoff is not None else ""
    if not measure.binary:
        return MetricSpec(f"{measure.label}{at}", f"{measure.ranx_name}{at}", None)
    level = int(explicit_level) if explicit_level is not None else relevance_level
    if level < 1:
        raise InputError(f"metric {name!r}: the relevance level must be at least 1")
    label = f"{measure.label}{at}" + (f"-l{level}" if explicit_level is not None else "")
    # ranx's own default level is 1, so the suffix is only needed above it.
    ranx_name = f"{measure.ranx_name}{at}" + (f"-l{level}" if level != 1 else "")
    return MetricSpec(label, ranx_name, level)


def parse_metrics(names: list[str] | tuple[str, ...] | None, relevance_level: int = 1) -> list[MetricSpec]:
    """Resolve several metric names (``None`` gives :data:`DEFAULT_METRICS`).

    Raises:
        InputError: a name is unknown, the list is empty, or two names mean the same metric.
    """
    if names is None:
        names = DEFAULT_METRICS
    if isinstance(names, str):
        names = [names]
    specs = [parse_metric(name, relevance_level) for name in names]
    if not specs:
        raise InputError("name at least one metric")
    by_ranx: dict[str, str] = {}
    by_label: dict[str, str] = {}
    for spec in specs:
        earlier = by_ranx.get(spec.ranx_name) or by_label.get(spec.label)
        if earlier is not None:
            raise InputError(f"metrics {earlier!r} and {spec.label!r} are the same measure; name it once")
        by_ranx[spec.ranx_name] = by_label[spec.label] = spec.label
    return specs

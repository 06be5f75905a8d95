"""Sweep configuration: small dataclasses read from a TOML file.

A sweep file has the sections ``[sweep]`` (name, seed, batch_size, dtype), ``[[models]]`` (path, name, optional
num_layers, lengths, splits, group, quantization and dtype), ``[points]`` (splits: a list or ``"all"``,
storage options, and ``[[points.heads]]`` tables with ``head`` and its options), ``[data]``
(dataset, first_stage, depth, max_queries) and ``[evaluation]`` (metrics, primary metric,
correction, stat_test). See ``lateint/sweep/default.toml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lateint.errors import ConfigError
from lateint.precision import check_dtype
from lateint.toml_files import apply_overrides, build_dataclass, read_toml, to_toml_text

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")


#: ``[[models]] splits`` words: the split a trained checkpoint was saved at, or every split its head runs.
OWN_SPLIT = "own"
ALL_SPLITS = "all"


@dataclass
class ModelSpec:
    """A model swept over: where it is and how it is cut.

    Attributes:
        path: a model folder or hub id.
        name: its label in the table (default: the folder's name).
        num_layers: use its first T layers.
        max_query_length, max_doc_length: side lengths.
        trained: a trained lateint checkpoint: its own head is kept (``[[points.heads]]`` do not
            apply) and it is evaluated at the split it was trained at, unless ``splits`` says otherwise.
        splits: ``"own"`` (the checkpoint's split), ``"all"`` (every split its head runs: a dial
            checkpoint) or a list; None: ``"own"`` for trained models, ``points.splits`` otherwise.
        group: models of one group are one line of the Pareto plot and are compared with the
            group's L = 0 point (e.g. the per-L models of one recipe); empty: a group per model.
        quantization: the CPU arithmetic of its Linear layers (``none``, ``int8``,
            ``int8-except-ffn-output``; see ``RankerConfig.quantization``); None: as the checkpoint
            was saved (fp32 for any other checkpoint). The same path at two quantizations is two
            ``[[models]]`` entries with different names.
        dtype: the precision it runs in (``fp32``, ``bf16``, ``fp16``, ``auto``; see
            :mod:`lateint.precision`); None: the sweep's ``dtype``. The same path in two precisions
            is two ``[[models]]`` entries with different names.
    """

    path: str
    name: str = ""
    num_layers: int | None = None
    max_query_length: int | None = None
    max_doc_length: int | None = None
    trained: bool = False
    splits: list[int] | str | None = None
    group: str = ""
    quantization: str | None = None
    dtype: str | None = None

    def label(self) -> str:
        return self.name or str(self.path).rstrip("/").split("/")[-1]


@dataclass
class HeadSpec:
    """A head and its options (``pooling``, ``crossing``, ``maxsim_dim`` ...)."""

    head: str = "cls"
    options: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        if self.head == "twin":
            return f"twin-{self.options.get('pooling', 'mean')}-{self.options.get('crossing', 'cosine')}"
        return self.head


@dataclass
class PointsSpec:
    """Which points: splits (``"all"`` = 0..T), heads and storage options."""

    splits: list[int] | str = "all"
    heads: list[HeadSpec] = field(default_factory=lambda: [HeadSpec()])
    storage: list[str] = field(default_factory=lambda: ["fp16"])


@dataclass
class DataSpec:
    """What is re-ranked."""

    dataset: str = "msmarco-passage/trec-dl-2019/judged"
    first_stage: str | None = "bm25"
    depth: int = 100
    max_queries: int | None = None


@dataclass
class EvaluationSpec:
    """How runs are compared."""

    metrics: list[str] = field(default_factory=lambda: ["nDCG@10", "MRR@10", "MAP", "R@100"])
    primary: str = "nDCG@10"
    correction: str = "holm"
    stat_test: str = "student"
    alpha: float = 0.05


@dataclass
class SweepConfig:
    """A whole sweep."""

    name: str = "sweep"
    seed: int = 0
    models: list[ModelSpec] = field(default_factory=list)
    points: PointsSpec = field(default_factory=PointsSpec)
    data: DataSpec = field(default_factory=DataSpec)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    batch_size: int = 128
    #: The precision every model runs in unless its ``[[models]]`` entry says otherwise.
    dtype: str = "fp32"

    def model_dtype(self, model: ModelSpec) -> str:
        """The ``dtype`` setting ``model`` runs with (possibly ``auto``)."""
        return model.dtype if model.dtype is not None else self.dtype

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepConfig":
        """The config :meth:`to_dict` wrote, with keys added since then at their defaults.

        Raises:
            TypeError: a key this version does not know.
        """
        points = dict(data.get("points", {}))
        points["heads"] = [HeadSpec(**h) for h in points.get("heads", [])]
        return cls(**{**data, "models": [ModelSpec(**m) for m in data.get("models", [])],
                      "points": PointsSpec(**points), "data": DataSpec(**data.get("data", {})),
                      "evaluation": EvaluationSpec(**data.get("evaluation", {}))})


def _build(cls, data: Any, where: str):
    return build_dataclass(cls, data, f"sweep config [{where}]")


def _head(data: Any) -> HeadSpec:
    if not isinstance(data, dict) or "head" not in data:
        raise ConfigError(f"each [[points.heads]] entry needs a 'head' key, got {data!r}.")
    options = {k: v for k, v in data.items() if k != "head"}
    return HeadSpec(data["head"], options)


def parse_sweep_config(raw: dict[str, Any]) -> SweepConfig:
    """A :class:`SweepConfig` from parsed TOML, with every key checked."""
    known = {"sweep", "models", "points", "data", "evaluation"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; valid sections are {sorted(known)}.")
    top = raw.get("sweep", {})
    bad = set(top) - {"name", "seed", "batch_size", "dtype"}
    if bad:
        raise ConfigError(f"unknown key(s) {sorted(bad)} in [sweep]; valid keys are ['batch_size', 'dtype', 'name', 'seed'].")
    models = [_build(ModelSpec, m, "models") for m in raw.get("models", [])]
    if not models:
        raise ConfigError("a sweep needs at least one [[models]] entry with a 'path'.")
    for m in models:
        if isinstance(m.splits, str) and m.splits not in (OWN_SPLIT, ALL_SPLITS):
            raise ConfigError(f"models.splits of {m.label()!r} is {m.splits!r}; use \"own\", \"all\" or a list of splits.")
        if m.splits == OWN_SPLIT and not m.trained:
            raise ConfigError(f"models.splits = \"own\" of {m.label()!r} needs trained = true (a lateint checkpoint).")
    labels = [m.label() for m in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"[[models]] labels must differ (they name the points), got {labels}; set name.")
    points_raw = dict(raw.get("points", {}))
    heads = [_head(h) for h in points_raw.pop("heads", [{"head": "cls"}])]
    points = _build(PointsSpec, points_raw, "points")
    points.heads = heads
    config = SweepConfig(
        name=top.get("name", "sweep"), seed=top.get("seed", 0), batch_size=top.get("batch_size", 128),
        dtype=top.get("dtype", "fp32"),
        models=models, points=points,
        data=_build(DataSpec, raw.get("data", {}), "data"),
        evaluation=_build(EvaluationSpec, raw.get("evaluation", {}), "evaluation"),
    )
    validate_sweep_config(config)
    return config


def _int(value: Any, where: str, low: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where} must be an integer >= {low}, got {value!r}.")


def validate_sweep_config(config: SweepConfig) -> None:
    """Check every value before anything runs, so that no sweep fails after hours of work.

    Raises:
        ConfigError: naming the key, the value and what is accepted.
    """
    from lateint.config import HEADS
    from lateint.evaluation.evaluate import STAT_TESTS
    from lateint.evaluation.metrics import parse_metrics
    from lateint.evaluation.significance import CORRECTIONS
    from lateint.modeling.linear_kernels import QUANTIZATIONS
    from lateint.modeling.representations import STORAGES

    _int(config.seed, "[sweep] seed", 0)
    _int(config.batch_size, "[sweep] batch_size", 1)
    check_dtype(config.dtype, "[sweep] dtype")
    for m in config.models:
        if not isinstance(m.path, str) or not m.path:
            raise ConfigError(f"[[models]] path must be a non-empty string, got {m.path!r}.")
        _int(m.num_layers, f"[[models]] {m.label()}: num_layers", 1, optional=True)
        _int(m.max_query_length, f"[[models]] {m.label()}: max_query_length", 3, optional=True)
        _int(m.max_doc_length, f"[[models]] {m.label()}: max_doc_length", 3, optional=True)
        if isinstance(m.splits, list):
            for split in m.splits:
                _int(split, f"[[models]] {m.label()}: each of splits", 0)
        if m.quantization is not None and m.quantization not in QUANTIZATIONS:
            raise ConfigError(f"[[models]] {m.label()}: quantization={m.quantization!r} is unknown; "
                              f"use one of {', '.join(QUANTIZATIONS)}.")
        if m.dtype is not None:
            check_dtype(m.dtype, f"[[models]] {m.label()}: dtype")
        if (m.quantization or "none") != "none" and config.model_dtype(m) != "fp32":
            raise ConfigError(f"[[models]] {m.label()}: quantization={m.quantization!r} runs in fp32; set dtype = "
                              f"\"fp32\" for this model (it is {config.model_dtype(m)!r}).")
    points = config.points
    if isinstance(points.splits, str):
        if points.splits != "all":
            raise ConfigError(f'points.splits must be a list of integers or "all", got {points.splits!r}.')
    elif not isinstance(points.splits, list) or not points.splits:
        raise ConfigError(f'points.splits must be a non-empty list of integers or "all", got {points.splits!r}.')
    else:
        for split in points.splits:
            _int(split, "each of points.splits", 0)
    if not isinstance(points.storage, list) or not points.storage:
        raise ConfigError(f'points.storage must be a list such as ["fp16"], got {points.storage!r}.')
    for storage in points.storage:
        if storage not in STORAGES:
            raise ConfigError(f"points.storage has {storage!r}; use {', '.join(STORAGES)}.")
    for head in points.heads:
        if head.head not in HEADS:
            raise ConfigError(f"[[points.heads]] head={head.head!r} is unknown; use one of {', '.join(HEADS)}.")
    data = config.data
    if not isinstance(data.dataset, str) or not data.dataset:
        raise ConfigError(f"[data] dataset must be a dataset id or folder, got {data.dataset!r}.")
    _int(data.depth, "[data] depth", 1)
    _int(data.max_queries, "[data] max_queries", 1, optional=True)
    e = config.evaluation
    if not isinstance(e.metrics, list) or not e.metrics:
        raise ConfigError(f'[evaluation] metrics must be a non-empty list such as ["nDCG@10"], got {e.metrics!r}.')
    try:
        parse_metrics(e.metrics)
    except Exception as exc:  # the metric parser's own message names the bad metric
        raise ConfigError(f"[evaluation] metrics: {exc}") from None
    if e.primary not in e.metrics:
        raise ConfigError(
            f"[evaluation] primary={e.primary!r} is not among metrics {e.metrics}; add it to metrics or pick one of them."
        )
    if e.correction not in CORRECTIONS:
        raise ConfigError(f"[evaluation] correction={e.correction!r} is unknown; use one of {', '.join(CORRECTIONS)}.")
    if e.stat_test not in STAT_TESTS:
        raise ConfigError(f"[evaluation] stat_test={e.stat_test!r} is unknown; use one of {', '.join(STAT_TESTS)}.")
    if isinstance(e.alpha, bool) or not isinstance(e.alpha, (int, float)) or not 0 < e.alpha < 1:
        raise ConfigError(f"[evaluation] alpha must be a number between 0 and 1, got {e.alpha!r}.")


#: The sweep file's sections and their keys (``--set`` finds a bare key's section here).
SECTION_KEYS = {"": {"sweep", "models", "points", "data", "evaluation"},
                "sweep": {"name", "seed", "batch_size", "dtype"},
                "points": {f.name for f in dataclasses.fields(PointsSpec)},
                "data": {f.name for f in dataclasses.fields(DataSpec)},
                "evaluation": {f.name for f in dataclasses.fields(EvaluationSpec)}}


def load_sweep_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> SweepConfig:
    """Read a sweep TOML file (the built-in default when ``path`` is None), with ``overrides``
    (``--set KEY=VALUE``, e.g. ``data.max_queries=5``, ``models.0.dtype=bf16``; see
    :func:`lateint.toml_files.apply_overrides`) put in before anything is checked."""
    raw = read_toml(path if path is not None else DEFAULT_CONFIG, "sweep config")
    return parse_sweep_config(apply_overrides(raw, overrides, SECTION_KEYS))


def sweep_config_toml(config: SweepConfig) -> str:
    """The sweep config as TOML, every setting written (defaults too); it loads back to ``config``."""
    tables: list[tuple[str, dict[str, Any]]] = [
        ("[sweep]", {"name": config.name, "seed": config.seed, "batch_size": config.batch_size, "dtype": config.dtype})]
    tables += [("[[models]]", dataclasses.asdict(m)) for m in config.models]
    tables.append(("[points]", {"splits": config.points.splits, "storage": config.points.storage}))
    tables += [("[[points.heads]]", {"head": h.head, **h.options}) for h in config.points.heads]
    tables += [("[data]", dataclasses.asdict(config.data)), ("[evaluation]", dataclasses.asdict(config.evaluation))]
    return to_toml_text({}, tables)

"""Running a sweep: for each point, cache, re-rank, time and size; then evaluate and report.

Every finished point is recorded in ``points/<point>.json`` and its run in ``runs/<point>.trec``;
an interrupted sweep resumes the point it was in (its run file and cache resume themselves) and
skips finished ones. Evaluation and reports are recomputed from the recorded points at the end.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lateint.errors import ConfigError
from lateint.records import RecordStore
from lateint.sweep.config import ALL_SPLITS, OWN_SPLIT, HeadSpec, ModelSpec, SweepConfig, validate_sweep_config

#: The record store of finished points, in the sweep's folder.
POINTS_FOLDER = "points"


@dataclass(frozen=True)
class SweepPoint:
    """One configuration measured by a sweep."""

    model: ModelSpec
    head: HeadSpec
    split: int
    storage: str

    @property
    def group(self) -> str:
        """Points of one group differ only in their split; L = 0 is the group's baseline."""
        if self.model.group:
            return f"{self.model.group}-{self.storage}"
        return f"{self.model.label()}-{self.head.label()}-{self.storage}"

    @property
    def point_id(self) -> str:
        return f"{self.model.label()}-{self.head.label()}-L{self.split}-{self.storage}"


def _environment(config: SweepConfig) -> dict[str, Any]:
    import transformers

    return {"seed": config.seed, "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}


def _check_out_dir(out: Path, config: SweepConfig) -> None:
    """Refuse to mix two different sweeps in one folder (resuming the same one is fine)."""
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.json"
    current = config.to_dict()
    if saved.exists():
        try:  # a folder saved before a key existed holds that key at its default
            previous = SweepConfig.from_dict(json.loads(saved.read_text())).to_dict()
        except TypeError:  # a key this version does not know: another sweep's folder
            previous = None
        if json.loads(json.dumps(previous)) != json.loads(json.dumps(current)):
            raise ConfigError(
                f"{out} holds results of a different sweep configuration; use a new --out folder "
                "(or delete this one) to run this configuration.")
    else:
        saved.write_text(json.dumps(current, indent=2))


def _candidates(config: SweepConfig, dataset):
    candidates = dataset.candidates(config.data.first_stage, config.data.depth)
    if config.data.max_queries:
        keep = sorted(candidates)[: config.data.max_queries]
        candidates = {q: candidates[q] for q in keep}
    return candidates


def run_sweep(config: SweepConfig, out: str | Path, *, progress: bool = True, log=print,
              device: str | None = None) -> dict[str, Any]:
    """Run (or resume) a sweep into ``out``; returns the results dict also written to
    ``out/results.json``, with ``out/table.md`` and ``out/pareto.png`` beside it. ``device``:
    where the models run (default CPU)."""
    from lateint.data import load_dataset
    from lateint.pipeline.rerank_run import rerank_dataset

    validate_sweep_config(config)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; a sweep writes a folder (results.json, table.md, runs/): give a folder path.")
    _check_out_dir(out, config)
    torch.manual_seed(config.seed)
    dataset = load_dataset(config.data.dataset)
    candidates = _candidates(config, dataset)
    store = RecordStore(out / POINTS_FOLDER)
    started = time.perf_counter()
    env = _environment(config)
    for model in config.models:
        for head in ([TRAINED_HEAD] if model.trained else config.points.heads):
            base = None
            T = None
            if model.trained:
                base = _load(model, head, None, config.seed, device, config.model_dtype(model))
                T = base.num_layers
            for point in _points(config, model, head, base):
                if point.point_id in store:
                    log(f"[{point.point_id}] done earlier, skipped")
                    continue
                if base is None:
                    base = _load(model, head, point.split, config.seed, device, config.model_dtype(model))
                    T = base.num_layers
                if point.split > T:
                    raise ConfigError(f"split {point.split} is out of range for {model.label()} (T = {T}).")
                if base.config.head.name == "cls" and point.split == T:
                    log(f"[{point.point_id}] skipped: the cls head needs at least one joint layer")
                    continue
                # A view of the same weights; a trained checkpoint keeps its own layout at its own split.
                ranker = base.at(point.split)
                log(f"[{point.point_id}] re-ranking {len(candidates)} queries")
                report = rerank_dataset(ranker, dataset, candidates, out / "runs" / f"{point.point_id}.trec",
                                        tag=point.point_id, cache_root=out / "caches" / model.label(), storage=point.storage,
                                        batch_size=config.batch_size, progress=progress)
                record = {"point": point.point_id, "group": point.group, "model": asdict(model), "head": asdict(head),
                          "split": point.split, "num_layers": T, "storage": point.storage, "dtype": ranker.config.dtype,
                          "layout": ranker.config.sides.layout, "ranker": ranker.config.to_dict(),
                          "environment": env, **report.to_dict()}
                store.put(point.point_id, record)
                log(f"[{point.point_id}] {report.mean_latency_ms:.1f} ms/query, "
                    f"{report.cache_bytes_per_doc:,.0f} bytes/doc, cache built in {report.cache_build_seconds:.0f} s")
    from lateint.sweep.report import evaluate_sweep, write_report

    results = evaluate_sweep(config, out, dataset, candidates)
    results["environment"] = env
    results["seconds_this_run"] = time.perf_counter() - started
    # Saved before anything is drawn: a failing plot must not lose the evaluated sweep.
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_report(results, out)
    return results


#: The head of a trained checkpoint: its own, as saved.
TRAINED_HEAD = HeadSpec(head="trained")


def _load(model: ModelSpec, head: HeadSpec, split: int | None, seed: int, device: str | None, dtype: str):
    from lateint import SplitRanker

    if model.trained:  # the checkpoint's own head and split
        return SplitRanker.from_pretrained(model.path, num_layers=model.num_layers,
                                           max_query_length=model.max_query_length,
                                           max_doc_length=model.max_doc_length, seed=seed, device=device,
                                           quantization=model.quantization, dtype=dtype)
    return SplitRanker.from_pretrained(
        model.path, split=split, head=head.head, num_layers=model.num_layers,
        max_query_length=model.max_query_length, max_doc_length=model.max_doc_length,
        seed=seed, device=device, quantization=model.quantization, dtype=dtype, **head.options)


def _points(config: SweepConfig, model: ModelSpec, head: HeadSpec, ranker=None) -> list[SweepPoint]:
    """The points of one model and head; ``ranker`` is the loaded checkpoint of a trained model."""
    splits = model.splits if model.splits is not None else (OWN_SPLIT if model.trained else config.points.splits)
    if splits == OWN_SPLIT:
        splits = [ranker.split]
    elif splits == ALL_SPLITS:
        if ranker is not None:
            top = ranker.num_layers - (1 if ranker.config.head.name == "cls" else 0)
            splits = list(range(top + 1))
        else:
            layers = model.num_layers or _layers_of(model.path)
            splits = list(range(layers + 1))
    return [SweepPoint(model, head, int(s), storage) for s in splits for storage in config.points.storage]


def _layers_of(path: str) -> int:
    from lateint import checkpoints

    return int(checkpoints.inspect(path).config.get("num_hidden_layers"))

"""k-fold cross-validation over queries: :func:`cross_validate`.

Collections with few judged queries and no training split (Robust04, TREC DL) are how neural
re-rankers are often evaluated: the queries are split into k folds, a model is trained on k − 1
of them and re-ranks the first-stage candidates of the held-out fold, and the k held-out runs are
merged into one test run that covers every query once and was never trained on.

Every part resumes: a finished fold is recorded (``folds/fold<k>.json`` in a
:class:`~lateint.records.RecordStore`, as a sweep records its points) and skipped, an unfinished
fold's training resumes from its checkpoints and its re-ranking query by query, and the merge and
evaluation are redone from the fold runs. Rerunning the same call after an
interruption loses and duplicates nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lateint.errors import ConfigError, InputError
from lateint.precision import resolve_dtype
from lateint.records import RecordStore
from lateint.training.config import TrainConfig
from lateint.training.groups import judged_query_ids, kfold

logger = logging.getLogger(__name__)

RECORD_FILE = "crossval.json"
#: The record store of finished folds, in the cross-validation's folder.
FOLDS_FOLDER = "folds"


@dataclass
class FoldRecord:
    """One fold: what it trained on, what it re-ranked, and how long that took.

    Attributes:
        fold: the fold's index.
        train_qids: queries with at least one training group (all outside the fold).
        test_qids: the fold's held-out queries.
        train: the fold's :class:`~lateint.training.trainer.TrainResult` as a dict.
        runs: split -> the fold's TREC run of its held-out queries.
        median_latency_ms: split -> median per-query re-rank time of the queries scored in
            this call (None where every query was already in the run).
        latencies_ms: split -> the per-query re-rank times behind that median.
        dtype: the precision the fold's test runs were scored in.
    """

    fold: int
    train_qids: list[str]
    test_qids: list[str]
    train: dict[str, Any]
    runs: dict[int, str]
    median_latency_ms: dict[int, float | None] = field(default_factory=dict)
    latencies_ms: dict[int, list[float]] = field(default_factory=dict)
    dtype: str = "fp32"


@dataclass
class CrossValidation:
    """The result of :func:`cross_validate`.

    Attributes:
        folder: where everything was written.
        runs: split -> the merged test run (every query of every fold, once).
        folds: one record per fold.
        evaluation: the merged runs against the first stage, or None when not evaluated.
        seed: the config's seed, which also drew the folds.
        dtype: the precision the test runs were scored in (the config's ``dtype``, resolved).
    """

    folder: Path
    runs: dict[int, Path]
    folds: list[FoldRecord]
    evaluation: Any = None
    seed: int = 0
    dtype: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "seed": self.seed,
            "dtype": self.dtype,
            "runs": {str(k): str(v) for k, v in self.runs.items()},
            "folds": [dataclasses.asdict(f) for f in self.folds],
            "evaluation": self.evaluation.to_dict() if self.evaluation is not None else None,
        }


def evaluated_splits(config: TrainConfig, max_split: int) -> list[int]:
    """The splits a cross-validated model is tested at: the config's split, or in dial mode every
    split the dial trains (``dial.splits``, else all the head can run, up to ``max_split``)."""
    if not config.dial.enabled:
        return [config.split]
    if config.dial.splits is not None:
        return sorted(set(config.dial.splits))
    return list(range(0, max_split + 1))


def cross_validate(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    depth: int | None = None,
    storage: str = "fp32",
    evaluate_runs: bool = True,
    keep_caches: bool = False,
    progress: bool = True,
    folds: Sequence[int] | None = None,
    max_test_queries: int = 0,
) -> CrossValidation:
    """Train and test ``config`` by k-fold cross-validation over the queries of ``config.data``.

    Args:
        config: the training config; ``data.folds = k >= 2`` sets the number of folds (its
            ``data.fold`` is ignored: every fold is run) and ``data.run`` the first stage whose
            candidates are re-ranked. The folds are drawn with ``config.seed``, exactly as the
            trainer draws them for ``data.fold``.
        out: the folder for the folds' models, runs and the merged runs (default:
            ``config.output``).
        depth: candidates re-ranked per held-out query (default: ``data.depth``).
        storage: document cache precision for the re-ranking (``fp32``, ``fp16``, ``int8``).
        evaluate_runs: evaluate the merged runs (and the first stage) with ``ranx`` against the
            dataset's qrels, at its official relevance level, with paired t-tests against the
            first stage.
        keep_caches: keep the document caches built to re-rank each fold (deleted by default
            once the fold's run is complete).
        progress: show progress bars.
        folds: run only these folds (a long cross-validation split across jobs, or a quick
            check); the merged runs then cover their held-out queries only. None runs every fold.
        max_test_queries: re-rank only the first this many held-out queries of each fold (a quick
            check); 0 re-ranks them all.

    Returns:
        A :class:`CrossValidation`; it is also written to ``<out>/crossval.json``, the merged runs
        to ``<out>/crossval-L<split>.trec`` and the evaluation to ``<out>/evaluation.md``.

    Raises:
        ConfigError: ``data.folds`` is not set, or no dataset is named.
    """
    from lateint.data import load_dataset, read_run, write_run
    from lateint.evaluation import evaluate
    from lateint.pipeline.rerank_run import rerank_dataset
    from lateint.ranker import SplitRanker
    from lateint.training.trainer import Trainer

    config.validate()
    data = config.data
    if data.folds < 2:
        raise ConfigError("cross-validation needs data.folds = k >= 2 (the number of folds of the queries).")
    if not data.dataset:
        raise ConfigError("cross-validation needs data.dataset: the dataset whose queries are split into folds.")
    folder = Path(out if out is not None else config.output)
    folder.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(data.dataset)
    queries, qrels = ds.queries(), ds.qrels()
    qids = judged_query_ids(queries, qrels)
    all_folds = kfold(qids, data.folds, config.seed)
    chosen = list(range(data.folds)) if folds is None else sorted(set(folds))
    if any(not 0 <= f < data.folds for f in chosen):
        raise ConfigError(f"folds {chosen} must be in 0..{data.folds - 1}.")
    candidates = ds.candidates(data.run, depth or data.depth)

    store = RecordStore(folder / FOLDS_FOLDER)
    dtype = resolve_dtype(config.dtype)  # the test runs are scored where the model loads: the CPU
    records: list[FoldRecord] = []
    splits: list[int] | None = None
    for fold in chosen:
        train_fold_qids, test_qids = all_folds[fold]
        if max_test_queries:
            test_qids = test_qids[:max_test_queries]
        done = store.get(f"fold{fold}")
        if done is not None:
            by_split = ("runs", "median_latency_ms", "latencies_ms")
            record = FoldRecord(**{**done, **{k: {int(L): v for L, v in done.get(k, {}).items()} for k in by_split}})
            if record.dtype != dtype:
                raise ConfigError(f"fold {fold} in {folder} was scored in {record.dtype}, this config asks for {dtype}; "
                                  "use a new output folder for another precision.")
            records.append(record)
            splits = splits or sorted(record.runs)
            logger.info("cross-validation: fold %d was finished earlier", fold + 1)
            continue
        fold_dir = folder / f"fold{fold}"
        fold_config = dataclasses.replace(config, output=str(fold_dir), data=dataclasses.replace(data, fold=fold))
        logger.info("cross-validation: fold %d of %d (%d held-out queries)", fold + 1, data.folds, len(test_qids))
        trainer = Trainer(fold_config)
        result = trainer.train(resume=True)
        groups = trainer.groups
        train_qids = sorted({g.qid for g in groups}) if groups is not None else train_fold_qids
        ranker = SplitRanker.from_pretrained(result.model_path, dtype=dtype)
        del trainer
        if splits is None:
            splits = evaluated_splits(config, ranker.max_split)
        held_out = {q: candidates[q] for q in test_qids if q in candidates}
        runs, latency, latencies = {}, {}, {}
        for L in splits:
            at_L = ranker.at(L)
            run_path = fold_dir / f"test-L{L}.trec"
            caches = fold_dir / f"test-L{L}.caches"
            report = rerank_dataset(at_L, ds, held_out, run_path, tag=f"crossval-fold{fold}-L{L}", storage=storage,
                                    cache_root=caches, progress=progress)
            if not keep_caches:
                shutil.rmtree(caches, ignore_errors=True)
            runs[L] = str(run_path)
            latency[L] = report.median_latency_ms if report.latencies_ms else None
            latencies[L] = list(report.latencies_ms)
        record = FoldRecord(fold, train_qids, list(test_qids), result.to_dict(), runs, latency, latencies, dtype)
        store.put(f"fold{fold}", dataclasses.asdict(record))
        records.append(record)

    merged_paths: dict[int, Path] = {}
    for L in splits or []:
        merged: dict[str, dict[str, float]] = {}
        for rec in records:
            part = read_run(rec.runs[L])
            overlap = merged.keys() & part.keys()
            if overlap:  # folds are disjoint by construction; a clash means a corrupted fold run
                raise InputError(f"fold runs overlap on {len(overlap)} queries, e.g. {sorted(overlap)[:3]}; "
                                  f"delete {folder} and rerun.")
            merged.update(part)
        merged_paths[L] = write_run(merged, folder / f"crossval-L{L}.trec", f"crossval-L{L}")

    evaluation = None
    if evaluate_runs and merged_paths:
        judged = {q for rec in records for q in rec.test_qids}  # every judged query when every fold ran
        first_stage = {q: dict(ranked) for q, ranked in candidates.items() if q in judged}
        named = {"first stage": first_stage, **{f"L={L}": str(p) for L, p in merged_paths.items()}}
        evaluation = evaluate(ds, named, baseline="first stage")
        (folder / "evaluation.md").write_text(evaluation.to_markdown() + "\n", encoding="utf-8")
        if config.tracker_names:
            from lateint.training.tracking import log_test_table

            log_test_table(config.tracker_names, f"{folder.name or 'lateint'}-test", str(folder), evaluation)
    outcome = CrossValidation(folder, merged_paths, records, evaluation, config.seed, dtype)
    (folder / RECORD_FILE).write_text(json.dumps(outcome.to_dict(), indent=2), encoding="utf-8")
    return outcome

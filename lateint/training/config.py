"""Configuration of a training run, as small dataclasses composed into one :class:`TrainConfig`.

A run is described by a TOML file: top-level keys are :class:`TrainConfig` fields, and the tables
``[optim]``, ``[data]``, ``[loss]``, ``[distill]``, ``[dial]``, ``[checkpoint]``, ``[validation]``
and ``[head_options]`` fill the sub-settings. Unknown keys are errors, so a typo never silently falls
back to a default. The config is saved next to the results (``train_config.toml``), and that file
loads back to an equal config.

Example::

    model = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    split = 3
    steps = 2000
    batch_size = 8
    output = "runs/minilm-L3"

    [data]
    dataset = "msmarco-passage/train/judged"
    negatives = 7

    [loss]
    hard = "listwise_ce"
    soft = "margin_mse"

    [distill]
    teacher = "cross-encoder/ms-marco-MiniLM-L-12-v2"
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

from lateint.errors import ConfigError
from lateint.precision import check_dtype
from lateint.toml_files import build_dataclass, toml_value
from lateint.training.losses.registry import HARD_LABEL_LOSSES, SOFT_LABEL_LOSSES
from lateint.training.streams import SCORES_FORMATS

CONFIG_FILE_NAME = "train_config.toml"
SCHEDULES = ("linear", "constant")
NEGATIVE_SOURCES = ("run", "in_batch", "docpairs")
STUDENT_SELECTIONS = ("every_other", "first_k")
AMP_MODES = ("no", "bf16", "fp16")
#: accelerate trackers a run can log to.
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")


@dataclass
class OptimSettings:
    """AdamW with linear warmup and (optionally) linear decay to 0.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay (not applied to biases and LayerNorm weights).
        warmup_ratio: fraction of the steps spent warming up linearly from 0.
        warmup_steps: warmup in steps; overrides ``warmup_ratio`` when set.
        schedule: ``linear`` (decay to 0 at the last step) or ``constant`` after warmup.
        grad_accum: micro-batches per optimizer step.
        max_grad_norm: clip the global gradient norm to this; 0 disables clipping.
        betas, eps: AdamW's.
        head_lr: peak learning rate of the newly initialised weights (the head and the
            intermediate-loss projections); None uses ``lr``. A fresh head on a pretrained
            encoder usually wants a larger one (e.g. 1e-3).
    """

    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None
    schedule: str = "linear"
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    head_lr: float | None = None


#: Groups held by the shuffle buffer of a streamed training source when ``data.shuffle_buffer`` is
#: unset: a few tens of MB of id-only groups, however long the pair or score file.
DEFAULT_SHUFFLE_BUFFER = 100_000


@dataclass
class DataSettings:
    """Where training groups come from and how they are formed.

    A group is one query with one judged positive and ``negatives`` negatives. With
    ``negative_source = "run"`` the negatives are sampled (with the run's seed) from the top
    ``depth`` documents of a first-stage run, leaving out documents judged relevant; with
    ``"in_batch"`` a group holds the positive only and the other groups' positives in the batch
    serve as negatives; with ``"docpairs"`` each of the dataset's docpairs (query, positive,
    negative) is a group, streamed (no qrels or run needed; ``negatives`` must be 1).

    Runs are read query by query, never whole. ``shuffle_buffer = 0`` gathers every group (ids
    and texts) and shuffles each epoch fully, for collections that fit in memory; ``> 0`` streams
    the groups through a shuffle buffer of that many groups and looks texts up only for the groups
    trained on, so memory does not grow with the size of the pair or run file. Left unset, pair
    files, score files and docpairs stream through :data:`DEFAULT_SHUFFLE_BUFFER` groups, and
    groups from a run (with qrels: one group per judged positive, few enough to hold) keep the
    full shuffle.

    Attributes:
        dataset: a dataset id for :func:`lateint.data.load_dataset` (used by the command line).
        run: the first-stage run (see :meth:`lateint.data.DatasetHandle.candidates`); None for the
            dataset's own scoreddocs.
        depth: how many top documents of the run negatives are drawn from.
        negatives: n, negatives per group (group size n + 1); 0 with ``in_batch``.
        negative_source: ``run`` or ``in_batch``.
        min_relevance: lowest grade counted as a positive.
        max_positives: at most this many groups (positives) per query; 0 keeps all.
        max_queries: train on at most this many queries (after the fold split); 0 keeps all.
        folds: k > 1 splits the queries into k folds (see :func:`lateint.training.groups.kfold`)
            and trains on all but fold ``fold``; 0 uses every query.
        fold: which fold is held out.
        shuffle_buffer: 0 to hold every group in memory, else the size of the streaming shuffle
            buffer in groups; None (unset) for the default of the data source (see above).
        hf_dataset: train on the groups of a Hugging Face dataset instead (a file, folder or hub
            id for ``datasets.load_dataset``, streamed; see :mod:`lateint.training.hf_source` for
            the column conventions); its ids, if it holds ids, are looked up in ``dataset``.
        hf_split: the split of ``hf_dataset``.
        max_query_length, max_doc_length: side lengths in tokens, special tokens included.
    """

    dataset: str = ""
    run: str | None = None
    depth: int = 100
    negatives: int = 3
    negative_source: str = "run"
    min_relevance: int = 1
    max_positives: int = 0
    max_queries: int = 0
    folds: int = 0
    fold: int = 0
    shuffle_buffer: int | None = None
    hf_dataset: str | None = None
    hf_split: str = "train"
    max_query_length: int = 32
    max_doc_length: int = 224


@dataclass
class LossSettings:
    """Which losses make the objective and how they are weighted.

    ``total = hard_weight · hard + soft_weight · soft + intermediate_weight · intermediate
    + mimicry_weight · mimicry``, each term present only when enabled.

    Attributes:
        hard: a hard-label ranking loss (``listwise_ce``, ``bce``, ``ranknet``, ``hinge``), or
            None (``"none"`` in TOML) for no hard term.
        soft: a teacher-score loss (``kl``, ``mse``, ``margin_mse``) or None; needs a teacher.
        hard_weight, soft_weight: weights of those terms.
        temperature: τ of the ``kl`` soft loss.
        hinge_margin: margin of the ``hinge`` loss.
        hard_scale: the student's scores are multiplied by this in the hard loss. None: 20 for a
            twin head with cosine crossing (scores in [-1, 1] give a softmax too flat to learn
            from; 20 is sentence-transformers' ranking-loss scale), else 1.
        intermediate: TinyBERT embedding/hidden/attention losses against the teacher's layers.
        intermediate_weight: weight of the intermediate term.
        layer_map: ``M + 1`` teacher layer indices (0 = embeddings) for student layers ``0..M``;
            None maps a student made from the teacher's layers to those layers, else uniformly.
        intermediate_embedding, intermediate_hidden, intermediate_attention: which parts to use.
        mimicry: DeFormer's upper-layer mimicry (student and teacher of equal depth and width).
        mimicry_weight: weight of the mimicry term.
    """

    hard: str | None = "listwise_ce"
    soft: str | None = None
    hard_weight: float = 1.0
    soft_weight: float = 1.0
    temperature: float = 1.0
    hinge_margin: float = 1.0
    hard_scale: float | None = None
    intermediate: bool = False
    intermediate_weight: float = 1.0
    layer_map: list[int] | None = None
    intermediate_embedding: bool = True
    intermediate_hidden: bool = True
    intermediate_attention: bool = True
    mimicry: bool = False
    mimicry_weight: float = 1.0


@dataclass
class DistillSettings:
    """The teacher.

    Attributes:
        teacher: a model folder or hub id, or None for no teacher.
        teacher_split: the split the teacher runs at (0: a cross-encoder).
        teacher_layout: the teacher's layout; None for the default of its split.
        scores_cache: file of cached teacher scores; None for ``teacher_scores.json`` in the
            output folder.
        batch_size: pairs per batch when scoring with the teacher.
        scores_file: teacher scores given as a file instead of a teacher model (for the soft
            loss); None to score with ``teacher``.
        scores_format: ``pairs_tsv``: Hofstätter et al.'s Margin-MSE scores,
            ``score_pos<TAB>score_neg<TAB>qid<TAB>pid_pos<TAB>pid_neg``, which also define the
            training pairs (with ``data.negative_source = "docpairs"``); ``trec``: a TREC run of
            teacher scores, which is then the run the groups' candidates come from.
    """

    teacher: str | None = None
    teacher_split: int = 0
    teacher_layout: str | None = None
    scores_cache: str | None = None
    batch_size: int = 64
    scores_file: str | None = None
    scores_format: str = "pairs_tsv"


#: how a dial run uses its splits each step (``[dial] mode``)
DIAL_MODES = ("uniform", "sandwich")
#: the losses with which, in the sandwich mode, the lowest split's pass teaches the others (``[dial] inplace_distillation``)
INPLACE_DISTILLATIONS = ("margin_mse", "kl")


@dataclass
class DialSettings:
    """Dial training, so that one checkpoint serves every split.

    Attributes:
        enabled: turn dial training on.
        splits: the splits to train; None for every split the head allows.
        weights: sampling weights, one per split (``uniform`` mode); None for uniform.
        mode: ``uniform``: one split per step, drawn from ``splits``; ``sandwich`` (the sandwich rule of
            slimmable networks): every step trains both ends of ``splits`` and ``random_splits`` splits
            drawn from those between them, each on the same batch.
        random_splits: in ``sandwich`` mode, how many splits between the ends each step also trains.
        inplace_distillation: in ``sandwich`` mode, the loss with which the lowest split's pass (L = 0, the
            most interaction) teaches the other splits over the same batch, its scores detached (in-place
            distillation): ``margin_mse`` or ``kl`` (with ``loss.temperature``); None trains every split on
            the run's own loss alone.
        inplace_weight: the in-place distillation term's weight, beside the run's own loss.
    """

    enabled: bool = False
    splits: list[int] | None = None
    weights: list[float] | None = None
    mode: str = "uniform"
    random_splits: int = 1
    inplace_distillation: str | None = "margin_mse"
    inplace_weight: float = 1.0


@dataclass
class CheckpointSettings:
    """Periodic checkpoints, from which a rerun resumes.

    Attributes:
        every: save every this many optimizer steps; 0 saves only at the end.
        folder: where checkpoints go; None for ``checkpoints`` in the output folder.
        keep_last: keep this many most recent checkpoints (older ones are deleted).
    """

    every: int = 0
    folder: str | None = None
    keep_last: int = 2


@dataclass
class ValidationSettings:
    """nDCG@10 on dev queries every ``every`` steps; the best model is kept in ``best/``.

    Attributes:
        every: validate every this many optimizer steps (and at the end); 0 turns validation off.
        dataset: the dev queries' dataset; empty for ``data.dataset`` with ``holdout``.
        holdout: the fraction of ``data.dataset``'s judged queries held out of training as dev
            queries (a seeded sample).
        run: the dev first stage; None for ``data.run`` on the training dataset and the
            scoreddocs of another dataset.
        depth: candidates re-ranked per dev query.
        max_queries: validate on at most this many dev queries (a seeded sample); 0 keeps all.
        patience: stop training after this many validations without a new best; 0 never stops early.
        batch_size: pairs per batch when scoring the dev candidates.
        splits: measure at each of these splits and track their mean (a dial model serves them
            all, so its best checkpoint should not be chosen at one); None measures at ``split``.
    """

    every: int = 0
    dataset: str = ""
    holdout: float = 0.0
    run: str | None = None
    depth: int = 100
    max_queries: int = 0
    patience: int = 0
    batch_size: int = 64
    splits: list[int] | None = None


@dataclass
class TrainConfig:
    """A whole training run.

    Attributes:
        model: the student's starting point (a folder or hub id), or, with ``student_layers``,
            the model whose layers the student keeps.
        split: L, the split the student trains at (the evaluation split in dial mode).
        head: head kind for a new head; None keeps the checkpoint's.
        layout: None for the default layout of the split.
        head_options: other head settings (``pooling``, ``crossing``, ``maxsim_dim`` ...).
        num_layers: use the first T layers of ``model`` (also k of ``student_layers = "first_k"``).
        student_layers: keep only some of ``model``'s layers: ``"every_other"``, ``"first_k"``
            (needs ``num_layers``) or explicit 0-based indices; None keeps them all.
        seed: seed of everything random (weights not in the checkpoint, sampling, dropout).
        steps: optimizer steps.
        batch_size: groups per micro-batch (per process).
        device: ``cpu``, ``cuda`` or None (a GPU when there is one).
        amp: ``no``, ``bf16`` or ``fp16`` (CUDA only): mixed-precision training (autocast); bf16
            also works on the CPU.
        dtype: the precision the model is scored in outside training steps: dev validation and
            cross-validation test runs (``fp32``, ``bf16``, ``fp16`` or ``auto``, see
            :mod:`lateint.precision`). Training itself keeps fp32 weights; ``amp`` decides its arithmetic.
        output: the run's folder (final model, logs, config, checkpoints).
        progress: show a progress bar.
        report_to: experiment trackers that also receive the loss log, through accelerate:
            ``tensorboard`` (written under the output folder), ``wandb``, ``mlflow``, ``trackio``.
        trackers: the older name of ``report_to``, still accepted.
    """

    model: str = ""
    split: int = 0
    head: str | None = None
    layout: str | None = None
    head_options: dict[str, Any] = field(default_factory=dict)
    num_layers: int | None = None
    student_layers: Union[str, list[int], None] = None
    seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    device: str | None = None
    amp: str = "no"
    dtype: str = "fp32"
    output: str = "runs/train"
    progress: bool = True
    report_to: list[str] = field(default_factory=list)
    trackers: list[str] = field(default_factory=list)
    optim: OptimSettings = field(default_factory=OptimSettings)
    data: DataSettings = field(default_factory=DataSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    distill: DistillSettings = field(default_factory=DistillSettings)
    dial: DialSettings = field(default_factory=DialSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)

    # -- dict / TOML ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Build from a nested dict (the TOML structure), checking keys and value types.

        Raises:
            ConfigError: an unknown key (naming it and the valid ones) or a value of the wrong type.
        """
        config = build_dataclass(cls, data, source)
        config.validate()
        return config

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> "TrainConfig":
        """Read a TOML file, with ``overrides`` (``--set KEY=VALUE``, see
        :func:`lateint.toml_files.apply_overrides`) put in before anything is checked.

        Raises:
            MissingResourceError: the file does not exist.
            ConfigError: invalid TOML, unknown keys, wrong types or inconsistent settings.
        """
        from lateint.toml_files import apply_overrides, dataclass_tables, read_toml

        raw = apply_overrides(read_toml(path, "training config"), overrides, dataclass_tables(cls))
        return cls.from_dict(raw, source=str(path) + (" with --set" if overrides else ""))

    def to_toml(self) -> str:
        """This config as TOML text that :meth:`load` reads back to an equal config.

        Unset (None) values are left out: they are the defaults.
        """
        top, tables = [], []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                lines = []
                for sub in dataclasses.fields(value):
                    v = getattr(value, sub.name)
                    if v is None and sub.default is not None:
                        v = "none"  # switched off where the default is on (e.g. loss.hard)
                    if v is not None:
                        lines.append(f"{sub.name} = {toml_value(v)}")
                tables.append(f"[{f.name}]\n" + "\n".join(lines))
            elif isinstance(value, dict):
                lines = [f"{k} = {toml_value(v)}" for k, v in value.items() if v is not None]
                tables.append(f"[{f.name}]\n" + "\n".join(lines))
            elif value is not None:
                top.append(f"{f.name} = {toml_value(value)}")
        return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``train_config.toml`` into ``folder``; returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CONFIG_FILE_NAME
        path.write_text(self.to_toml(), encoding="utf-8")
        return path

    # -- checks ---------------------------------------------------------------------------------
    @property
    def tracker_names(self) -> list[str]:
        """The trackers the run reports to (``report_to``, or its older name ``trackers``)."""
        return list(self.report_to or self.trackers)

    def validate(self) -> None:
        """Check the settings that can be checked without loading the model.

        Checks that need the model's depth (the split's range, layer indices) happen when the
        trainer loads it.

        Raises:
            ConfigError: naming the setting and the accepted values.
        """
        if not self.model:
            raise ConfigError("model is required: a model folder or hub id to start the student from.")
        _positive_int(self.steps, "steps")
        _positive_int(self.batch_size, "batch_size")
        if isinstance(self.split, bool) or not isinstance(self.split, int) or self.split < 0:
            raise ConfigError(f"split={self.split!r} must be an integer >= 0 (0 is a cross-encoder).")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp={self.amp!r} is unknown; use one of {', '.join(AMP_MODES)}.")
        check_dtype(self.dtype, "dtype")
        if self.device is not None and not str(self.device).startswith(("cpu", "cuda")):
            raise ConfigError(f"device={self.device!r} must be 'cpu', 'cuda' or left unset.")
        if self.amp == "fp16" and self.device == "cpu":
            raise ConfigError("amp='fp16' needs a CUDA device; on the CPU use amp='bf16' (CPUs with bf16 "
                              "instructions run it several times faster than fp32) or amp='no'.")
        sel = self.student_layers
        if isinstance(sel, str):
            if sel not in STUDENT_SELECTIONS:
                raise ConfigError(
                    f"student_layers={sel!r} is unknown; use {', '.join(map(repr, STUDENT_SELECTIONS))} "
                    "or a list of 0-based layer indices."
                )
            if sel == "first_k" and not self.num_layers:
                raise ConfigError("student_layers='first_k' needs num_layers (k).")
        elif sel is not None and (not sel or any(isinstance(i, bool) or not isinstance(i, int) for i in sel)):
            raise ConfigError(f"student_layers={sel!r} must be a non-empty list of 0-based layer indices.")
        o = self.optim
        # Every number is checked finite and in range: a NaN passes any comparison unnoticed.
        _real(o.lr, "optim.lr", above=0)
        if o.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule={o.schedule!r} is unknown; use one of {', '.join(SCHEDULES)}.")
        _real(o.warmup_ratio, "optim.warmup_ratio", at_least=0, below=1)
        if o.warmup_steps is not None and o.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps={o.warmup_steps} must be >= 0.")
        _positive_int(o.grad_accum, "optim.grad_accum")
        _real(o.max_grad_norm, "optim.max_grad_norm", at_least=0, hint="0 disables clipping")
        _real(o.weight_decay, "optim.weight_decay", at_least=0)
        _real(o.eps, "optim.eps", above=0, hint="AdamW divides by sqrt(v) + eps")
        if not isinstance(o.betas, (list, tuple)) or len(o.betas) != 2:
            raise ConfigError(f"optim.betas={o.betas!r} must be two numbers in [0, 1), e.g. [0.9, 0.999].")
        for i, beta in enumerate(o.betas):
            _real(beta, f"optim.betas[{i}]", at_least=0, below=1, hint="AdamW's moving-average decay rates")
        if o.head_lr is not None:
            _real(o.head_lr, "optim.head_lr", above=0, hint="leave it out to use optim.lr")
        d = self.data
        if d.negative_source not in NEGATIVE_SOURCES:
            raise ConfigError(
                f"data.negative_source={d.negative_source!r} is unknown; use one of {', '.join(NEGATIVE_SOURCES)}."
            )
        if d.negative_source == "run" and d.negatives < 1:
            raise ConfigError("data.negatives must be >= 1 with negatives from a run.")
        if d.negative_source == "in_batch" and d.negatives != 0:
            raise ConfigError("data.negatives must be 0 with in-batch negatives (the batch provides them).")
        if d.negative_source == "docpairs" and d.negatives != 1:
            raise ConfigError("data.negatives must be 1 with docpairs (each pair holds one negative).")
        if d.hf_dataset is not None and not d.hf_dataset.strip():
            raise ConfigError("data.hf_dataset is empty: name a file, folder or hub id, or leave it unset.")
        if not d.hf_split.strip():
            raise ConfigError("data.hf_split is empty: name a split of data.hf_dataset (default 'train').")
        if d.shuffle_buffer is not None and (isinstance(d.shuffle_buffer, bool) or d.shuffle_buffer < 0):
            raise ConfigError(f"data.shuffle_buffer={d.shuffle_buffer} must be 0 (hold every group) or a "
                              "positive number of groups.")
        _positive_int(d.depth, "data.depth")
        for name in ("max_queries", "max_positives"):
            value = getattr(d, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"data.{name}={value!r} must be an integer >= 0 (0 keeps all).")
        if d.folds == 1 or d.folds < 0:
            raise ConfigError(f"data.folds={d.folds} must be 0 (no folds) or at least 2.")
        if d.folds and not 0 <= d.fold < d.folds:
            raise ConfigError(f"data.fold={d.fold} must be in 0..{d.folds - 1}.")
        loss = self.loss
        if loss.hard is not None and loss.hard not in HARD_LABEL_LOSSES:
            raise ConfigError(f"loss.hard={loss.hard!r} is unknown; use one of {', '.join(HARD_LABEL_LOSSES)}.")
        if loss.soft is not None and loss.soft not in SOFT_LABEL_LOSSES:
            raise ConfigError(f"loss.soft={loss.soft!r} is unknown; use one of {', '.join(SOFT_LABEL_LOSSES)}.")
        if loss.hard is None and loss.soft is None and not loss.intermediate and not loss.mimicry:
            raise ConfigError("the objective is empty: set loss.hard, loss.soft, loss.intermediate or loss.mimicry.")
        _real(loss.temperature, "loss.temperature", above=0, hint="a negative one would invert the teacher's ranking")
        if loss.hard_scale is not None:
            _real(loss.hard_scale, "loss.hard_scale", above=0, hint="a negative scale would invert the ranking; "
                  "leave it out for the default")
        _real(loss.hinge_margin, "loss.hinge_margin", at_least=0)
        for name in ("hard_weight", "soft_weight", "intermediate_weight", "mimicry_weight"):
            _real(getattr(loss, name), f"loss.{name}", at_least=0, hint="a negative weight would maximise the loss")
        dist = self.distill
        if dist.scores_format not in SCORES_FORMATS:
            raise ConfigError(f"distill.scores_format={dist.scores_format!r} is unknown; use one of "
                              f"{', '.join(SCORES_FORMATS)}.")
        if dist.scores_file is not None:
            if loss.soft is None:
                raise ConfigError("distill.scores_file gives teacher scores: set loss.soft to use them.")
            if dist.scores_format == "pairs_tsv" and d.negative_source != "docpairs":
                raise ConfigError("distill.scores_format = 'pairs_tsv' defines the training pairs: set "
                                  "data.negative_source = 'docpairs' (and data.negatives = 1).")
            if dist.scores_format == "trec" and (d.negative_source != "run" or d.run is not None):
                raise ConfigError("distill.scores_format = 'trec' makes the scores file the run the negatives "
                                  "come from: set data.negative_source = 'run' and leave data.run unset.")
        # an hf_dataset may bring teacher scores in a column; that it does is checked when it is opened
        needs_teacher = ((loss.soft is not None and dist.scores_file is None and not d.hf_dataset)
                         or loss.intermediate or loss.mimicry)
        if needs_teacher and not self.distill.teacher:
            raise ConfigError("loss.soft (without distill.scores_file), loss.intermediate and loss.mimicry need a "
                              "teacher: set distill.teacher.")
        if d.negative_source == "in_batch" and needs_teacher:
            raise ConfigError(
                "in-batch negatives work with hard-label losses only (the teacher has no score for "
                "cross pairs); use negatives from a run for distillation."
            )
        if loss.intermediate and not (
            loss.intermediate_embedding or loss.intermediate_hidden or loss.intermediate_attention
        ):
            raise ConfigError("loss.intermediate is on but all of its parts are off.")
        dial = self.dial
        if dial.enabled and dial.weights is not None:
            if dial.splits is None or len(dial.weights) != len(dial.splits):
                raise ConfigError("dial.weights needs dial.splits, one weight per split.")
            for i, w in enumerate(dial.weights):
                _real(w, f"dial.weights[{i}]", at_least=0)
            if not sum(dial.weights) > 0:
                raise ConfigError("dial.weights must be non-negative with a positive sum.")
        if dial.enabled and dial.splits is not None and not dial.splits:
            raise ConfigError("dial.splits is empty.")
        if dial.mode not in DIAL_MODES:
            raise ConfigError(f"dial.mode={dial.mode!r} is unknown; use one of {', '.join(DIAL_MODES)}.")
        if dial.mode == "sandwich":
            if not dial.enabled:
                raise ConfigError("dial.mode = 'sandwich' needs dial.enabled = true.")
            if dial.weights is not None:
                raise ConfigError("dial.weights draws one split per step (mode 'uniform'); the sandwich mode trains "
                                  "both ends and draws its random_splits uniformly: drop dial.weights.")
            if not isinstance(dial.random_splits, int) or isinstance(dial.random_splits, bool) or dial.random_splits < 0:
                raise ConfigError(f"dial.random_splits={dial.random_splits!r} must be an integer >= 0 (splits drawn "
                                  "between the two ends each step).")
            if dial.inplace_distillation is not None and dial.inplace_distillation not in INPLACE_DISTILLATIONS:
                raise ConfigError(f"dial.inplace_distillation={dial.inplace_distillation!r} is unknown; use one of "
                                  f"{', '.join(INPLACE_DISTILLATIONS)}.")
            if not isinstance(dial.inplace_weight, (int, float)) or not dial.inplace_weight > 0:
                raise ConfigError(f"dial.inplace_weight={dial.inplace_weight!r} must be > 0 (or turn the term off "
                                  "with dial.inplace_distillation unset).")
        if self.checkpoint.every < 0:
            raise ConfigError("checkpoint.every must be >= 0 (0 saves only at the end).")
        _positive_int(self.checkpoint.keep_last, "checkpoint.keep_last")
        _positive_int(self.distill.batch_size, "distill.batch_size")
        for key, names in (("report_to", self.report_to), ("trackers", self.trackers)):
            bad = [t for t in names if t not in TRACKERS]
            if bad:
                raise ConfigError(f"{key} {bad} are unknown; use any of {', '.join(TRACKERS)}.")
        if self.report_to and self.trackers and list(self.report_to) != list(self.trackers):
            raise ConfigError(f"report_to {self.report_to} and trackers {self.trackers} disagree; "
                              "trackers is the older name of report_to: give only report_to.")
        v = self.validation
        if v.every < 0:
            raise ConfigError("validation.every must be >= 0 (0 turns validation off).")
        _real(v.holdout, "validation.holdout", at_least=0, below=1)
        if v.every and not v.dataset and not v.holdout:
            raise ConfigError("validation needs dev queries: set validation.holdout (a fraction of data.dataset's "
                              "queries) or validation.dataset.")
        if v.holdout and d.folds:
            raise ConfigError("validation.holdout and data.folds both take queries out of training; use one.")
        _positive_int(v.depth, "validation.depth")
        _positive_int(v.batch_size, "validation.batch_size")
        if v.patience < 0 or v.max_queries < 0:
            raise ConfigError("validation.patience and validation.max_queries must be >= 0.")
        if v.splits is not None and (not v.splits or len(set(v.splits)) != len(v.splits)):
            raise ConfigError(f"validation.splits={v.splits} must list distinct splits; leave it out to "
                              "validate at the config's split.")


# -- helpers -----------------------------------------------------------------------------------
def _real(value: Any, name: str, *, above: float | None = None, at_least: float | None = None,
          below: float | None = None, hint: str = "") -> None:
    """:class:`ConfigError` naming ``name`` unless ``value`` is a finite number in the range."""
    bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
              f"< {below:g}" if below is not None else ""]
    wanted = " and ".join(b for b in bounds if b)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = ((above is None or value > above) and (at_least is None or value >= at_least)
              and (below is None or value < below))
    if not ok:
        raise ConfigError(f"{name}={value!r} must be a finite number {wanted}{f' ({hint})' if hint else ''}.")


def _positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer.")

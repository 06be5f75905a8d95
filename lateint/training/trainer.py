"""The training loop: :class:`Trainer` (``Trainer(config).train() -> TrainResult``).

One optimizer step runs ``grad_accum`` micro-batches of ``batch_size`` groups (per process). The
pieces the loop puts together live in their own modules: the objective in
:mod:`lateint.training.losses.objective`, groups and their collation in
:mod:`lateint.training.batches` (and :mod:`lateint.training.streams` for data read as streams),
the student and teacher in :mod:`lateint.training.students`, checkpoints in
:mod:`lateint.training.checkpointing` and dev-set validation in :mod:`lateint.training.validation`.
Device placement, multi-GPU data parallelism, mixed precision and trackers go through
``accelerate``.

Everything random is derived from the config's seed, and a checkpoint holds all the state the
loop has (weights, optimizer, scheduler, RNG, step, the position in the stream of groups), so a
run interrupted and resumed from its last checkpoint ends with the same weights as one that ran
straight through.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lateint.cache.files import WriterLock
from lateint.cache.shards import launcher_world
from lateint.errors import ConfigError, InputError
from lateint.modes import evaluating
from lateint.precision import resolve_dtype, torch_dtype
from lateint.ranker import SplitRanker
from lateint.training.batches import PairBatch, ShuffledGroups, StreamedGroups, collate
from lateint.training.checkpointing import (
    Checkpoints,
    read_state,
    restore_rng,
    truncate_log,
    warn_changed_settings,
)
from lateint.training.config import TrainConfig
from lateint.training.curves import plot_loss_curve
from lateint.training.groups import TrainingGroup
from lateint.training.losses.objective import StudentObjective
from lateint.training.losses.registry import get_loss
from lateint.training.states import CapturedForward, capture_forward
from lateint.training.students import (
    check_mimicry_pair,
    dial_choices,
    intermediate_module,
    load_student,
    load_teacher,
    sandwich_splits,
    split_for_step,
)
from lateint.training.teacher import TeacherScores, cached_teacher_scores
from lateint.training import tracking
from lateint.training.validation import (DEV_LOG_KEY, best_of, dev_history, dev_ndcg, dev_record, dev_set,
                                         validation_splits)

logger = logging.getLogger(__name__)

LOSS_LOG_FILE = "loss_log.jsonl"
RESULT_FILE = "train_result.json"
LOSS_CURVE_FILE = "loss_curve.png"
#: The model after the last step, and the model of the best dev nDCG@10, in the output folder.
FINAL_FOLDER = "final"
BEST_FOLDER = "best"
BEST_RECORD = "best.json"


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        output: the run's folder.
        model_path: the final model (load with :meth:`SplitRanker.from_pretrained`).
        steps: optimizer steps done in total.
        resumed_from: the step the run resumed from (0 for a fresh start).
        final_loss: the mean total loss of the last step.
        seeds: every seed the run used.
        loss_log: the JSONL loss curve.
        config_path: the saved config.
        seconds: training time, summed over resumed parts.
        groups: number of training groups (None when they are streamed).
        best_path: the model of the best dev nDCG@10 (None without validation).
        best_step: the step of that model.
        best_dev_ndcg: its dev nDCG@10.
        stopped_early: training stopped before ``steps`` because dev nDCG@10 stopped improving.
    """

    output: Path
    model_path: Path
    steps: int
    resumed_from: int
    final_loss: float | None
    seeds: dict[str, int]
    loss_log: Path
    config_path: Path
    seconds: float
    groups: int | None
    best_path: Path | None = None
    best_step: int | None = None
    best_dev_ndcg: float | None = None
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def _lr_lambda(steps: int, warmup: int, schedule: str):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


def _optimizer(objective: StudentObjective, student: SplitRanker, optim) -> torch.optim.Optimizer:
    # New weights (the head, intermediate projections) may learn faster than the encoder.
    encoder_ids = {id(p) for p in student.encoder.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for p in objective.parameters():
        groups.setdefault((id(p) in encoder_ids, p.ndim >= 2), []).append(p)
    param_groups = [
        {"params": params, "weight_decay": optim.weight_decay if decays else 0.0,
         "lr": optim.lr if is_encoder or optim.head_lr is None else optim.head_lr}
        for (is_encoder, decays), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps)


class Trainer:
    """Trains a split ranker as a :class:`TrainConfig` says.

    Args:
        config: the run's settings.
        groups: the training groups; None builds them from ``config.data`` through
            :mod:`lateint.data` (:func:`~lateint.training.streams.group_source`).
    """

    def __init__(self, config: TrainConfig, groups: Sequence[TrainingGroup] | None = None):
        config.validate()
        tracking.check_installed(config.tracker_names)  # before any work, not after loading models
        self.config = config
        self._source: ShuffledGroups | StreamedGroups | None = (
            ShuffledGroups(groups, config.seed) if groups is not None else None
        )
        self.output = Path(config.output)
        folder = Path(config.checkpoint.folder) if config.checkpoint.folder else self.output / "checkpoints"
        self.checkpoints = Checkpoints(folder, config.checkpoint.keep_last)
        self._ready = False

    # -- setup -----------------------------------------------------------------------------------
    @property
    def seeds(self) -> dict[str, int]:
        """The seeds of each random part of the run (all derived from ``config.seed``)."""
        s = self.config.seed
        return {"seed": s, "head_init": s, "projection_init": s + 1, "dropout": s + 2, "data": s, "sampling": s}

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoints.folder

    @property
    def source(self) -> ShuffledGroups | StreamedGroups:
        """Where the training groups come from."""
        if self._source is None:
            from lateint.training.streams import group_source

            self._source = group_source(self.config)
        return self._source

    @property
    def groups(self) -> list[TrainingGroup] | None:
        """Every training group, or None when they are streamed."""
        source = self.source
        return source.groups if isinstance(source, ShuffledGroups) else None

    def setup(self, *, resume_from: Path | None = None) -> None:
        """Load the student (from ``resume_from`` if given), the teacher, the teacher scores, the
        dev set, the optimizer and the scheduler. Called by :meth:`train`; idempotent."""
        if self._ready:
            return
        from accelerate import Accelerator

        c = self.config
        groups = self.groups
        if groups is not None:
            if not groups:
                raise InputError("there are no training groups (no query has a positive and enough negatives).")
            sizes = {len(g) for g in groups}
            if len(sizes) != 1:
                raise InputError(f"training groups must all have the same size, got sizes {sorted(sizes)}.")
            if c.data.negative_source == "in_batch" and sizes.pop() != 1:
                raise InputError("with in-batch negatives each group must hold its positive only.")
        cuda = torch.cuda.is_available() and c.device != "cpu"
        if c.device and c.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but no CUDA device is available.")
        amp = c.amp
        if amp == "fp16" and not cuda:
            logger.warning("amp=fp16 needs CUDA; training in fp32 on the CPU (amp=bf16 works there)")
            amp = "no"
        trackers = c.tracker_names or None
        self.accelerator = acc = Accelerator(cpu=not cuda, mixed_precision=amp, log_with=trackers,
                                             project_dir=str(self.output) if trackers else None)
        student, self._kept = load_student(c, resume_from)
        self.teacher = load_teacher(c)
        if self.teacher is not None:
            self.teacher.to(acc.device)  # the teacher scores on the training device
        intermediate = None
        if c.loss.intermediate:
            intermediate = intermediate_module(c, student, self.teacher, self._kept, self.seeds["projection_init"])
        if c.loss.mimicry:
            check_mimicry_pair(student, self.teacher)
        self.dial_splits, self.dial_weights = dial_choices(c.dial, student)
        self.validation_splits = validation_splits(c.validation, student)
        if resume_from is not None and intermediate is not None:
            intermediate.load_state_dict(read_state(resume_from)["intermediate"])
        self.teacher_scores: TeacherScores | None = None
        data_scores = groups is not None and all(g.teacher_scores is not None for g in groups)
        if c.loss.soft is not None and c.distill.scores_file is None and groups is not None and not data_scores:
            cache_path = Path(c.distill.scores_cache) if c.distill.scores_cache else self.output / "teacher_scores.json"
            # Only the main process computes and writes the cache; the others read what it wrote.
            if acc.is_main_process:
                self.teacher_scores = cached_teacher_scores(
                    self.teacher, groups, cache_path, batch_size=c.distill.batch_size, progress=c.progress
                )
            acc.wait_for_everyone()
            if not acc.is_main_process:
                self.teacher_scores = cached_teacher_scores(
                    self.teacher, groups, cache_path, batch_size=c.distill.batch_size, write=False
                )
        self.dev = dev_set(c)
        inplace = None
        if c.dial.enabled and c.dial.mode == "sandwich" and c.dial.inplace_distillation is not None:
            options = {"temperature": c.loss.temperature} if c.dial.inplace_distillation == "kl" else {}
            inplace = get_loss(c.dial.inplace_distillation, **options)
        objective = StudentObjective(student, c.loss, intermediate, inplace, c.dial.inplace_weight)
        optimizer = _optimizer(objective, student, c.optim)
        o = c.optim
        warmup = o.warmup_steps if o.warmup_steps is not None else int(o.warmup_ratio * c.steps)
        # The scheduler is stepped once per optimizer step by hand (not prepared by accelerate,
        # which would step it once per process).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(c.steps, warmup, o.schedule))
        self.objective, self.optimizer = acc.prepare(objective, optimizer)
        self._ready = True

    # -- batches ---------------------------------------------------------------------------------
    @property
    def student(self) -> SplitRanker:
        return self.accelerator.unwrap_model(self.objective).student

    def _group_teacher_scores(self, groups: Sequence[TrainingGroup]):
        """A function giving each group's teacher scores, or None when the objective needs none."""
        if self.config.loss.soft is None:
            return None
        if self.config.distill.scores_file is not None or all(g.teacher_scores is not None for g in groups):
            return lambda g: g.teacher_scores  # scores that came with the data
        if self.teacher_scores is not None:
            return self.teacher_scores.group_scores
        # streamed groups: the teacher scores each batch on the training device as it comes
        pairs = [(g.query, d) for g in groups for d in g.docs]
        with torch.no_grad():
            values = self.teacher.score([q for q, _ in pairs], [d for _, d in pairs],
                                        batch_size=self.config.distill.batch_size).tolist()
        by_group = {id(g): values[i * len(g): (i + 1) * len(g)] for i, g in enumerate(groups)}
        return lambda g: by_group[id(g)]

    def collate(self, groups: Sequence[TrainingGroup], split: int | None = None) -> PairBatch:
        """Tokenize groups into a :class:`PairBatch` with the layout of the student at ``split``
        (default: its own)."""
        groups = list(groups)
        student = self.student if split is None or split == self.student.split else self.student.at(split)
        return collate(student, groups, in_batch=self.config.data.negative_source == "in_batch",
                       teacher_scores=self._group_teacher_scores(groups))

    def _teacher_states(self, batch: PairBatch) -> CapturedForward | None:
        if not (self.config.loss.intermediate or self.config.loss.mimicry):
            return None
        s_sep = self.student.config.sides.layout == "separate"
        t_sep = self.teacher.config.sides.layout == "separate"
        if s_sep != t_sep:
            raise ConfigError(
                "intermediate losses compare student and teacher token by token, so both need the same "
                f"side format; the student's layout is {self.student.config.sides.layout!r} and the "
                f"teacher's {self.teacher.config.sides.layout!r}. Use layout='offset' (or 'restart') for "
                "the student, or distill.teacher_layout='separate'."
            )
        attentions = self.config.loss.intermediate and self.config.loss.intermediate_attention
        with torch.no_grad(), self.accelerator.autocast():
            return capture_forward(self.teacher, batch.q_sides, batch.d_sides, attentions=attentions)

    @contextlib.contextmanager
    def _at_split(self, split: int | None = None):
        """A view of the student in eval mode at ``split`` (default: its own split and layout);
        the training mode is restored after."""
        student = self.student
        view = student if split is None or split == student.split else student.at(split)
        with evaluating(self.accelerator.unwrap_model(self.objective)):
            yield view

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, groups: Sequence[TrainingGroup] | None = None, split: int | None = None) -> dict[str, float]:
        """The objective's terms on ``groups`` (default: the training groups) in eval mode, no dropout.

        Runs at ``split`` (default: the config's split) and restores the student's split after.
        """
        self.setup()
        groups = list(groups) if groups is not None else self.groups
        if groups is None:
            raise InputError("the training groups are streamed: pass the groups to evaluate.")
        if self.teacher_scores is not None:
            self.teacher_scores.fill(self.teacher, groups, batch_size=self.config.distill.batch_size)
        objective = self.accelerator.unwrap_model(self.objective)
        sums: dict[str, float] = {}
        count = 0
        with self._at_split(split), torch.no_grad():
            B = self.config.batch_size
            for start in range(0, len(groups), B):
                batch = self.collate(groups[start : start + B])
                total, terms = objective(batch, self._teacher_states(batch))
                k = len(batch.groups)
                for name, value in {"loss": total, **terms}.items():
                    sums[name] = sums.get(name, 0.0) + float(value) * k
                count += k
        return {k: v / count for k, v in sums.items()}

    def validate(self) -> float:
        """nDCG@10 of the student (eval mode) on the dev set: at the config's split, or the mean
        over ``validation.splits``."""
        return dev_record(self.validate_splits())[DEV_LOG_KEY]

    def validate_splits(self) -> dict[int, float]:
        """Dev nDCG@10 at each validation split (``validation.splits``, or the config's split)."""
        self.setup()
        if self.dev is None:
            raise ConfigError("validation is off: set validation.every and the dev queries.")
        values = {}
        dtype = resolve_dtype(self.config.dtype, self.student.device)
        for split in self.validation_splits:
            with self._at_split(split) as student:
                if dtype != "fp32":  # scored in a copy: the trained weights stay fp32
                    student = copy.deepcopy(student).to(torch_dtype(dtype))
                values[split] = dev_ndcg(student, self.dev, batch_size=self.config.validation.batch_size)
        return values

    # -- checkpoints --------------------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        """The most recent complete checkpoint folder, or None."""
        return self.checkpoints.latest()

    def _save_checkpoint(self, step: int, position: int, seconds: float) -> Path:
        acc = self.accelerator
        folder = self.checkpoints.folder / f"step-{step:08d}"
        acc.wait_for_everyone()
        if acc.is_main_process:
            objective = acc.unwrap_model(self.objective)
            state = {
                "position": position,
                "seconds": seconds,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": acc.scaler.state_dict() if getattr(acc, "scaler", None) is not None else None,
                "intermediate": objective.intermediate.state_dict() if objective.intermediate is not None else None,
                "config": self.config.to_dict(),
            }
            with self._at_split() as student:
                self.checkpoints.save(step, student, state, self._kept)
        acc.wait_for_everyone()
        return folder

    def _restore_state(self, folder: Path) -> dict[str, Any]:
        state = read_state(folder)
        warn_changed_settings(folder, state["config"], self.config.to_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None and getattr(self.accelerator, "scaler", None) is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        restore_rng(state)
        return state

    def _save_best(self, step: int, dev: dict) -> None:
        with self._at_split() as student:
            student.save_pretrained(self.output / BEST_FOLDER)
        record = {"step": step, DEV_LOG_KEY: dev[DEV_LOG_KEY], "split": self.config.split,
                  **{k: v for k, v in dev.items() if k != DEV_LOG_KEY}}
        (self.output / BEST_RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")

    # -- the loop ---------------------------------------------------------------------------------
    def train(self, *, resume: bool = True, stop_at: int | None = None) -> TrainResult:
        """Train for ``config.steps`` optimizer steps (fewer when validation stops it early);
        returns a :class:`TrainResult`.

        Args:
            resume: continue from the latest checkpoint in the checkpoint folder when there is one;
                False starts over (deleting the earlier checkpoints and loss log).
            stop_at: stop after this step without finishing (as an interruption would); the
                final model is not written. Useful to split a run across jobs.

        Raises:
            InputError: another run (in this or another process) is training into the same output
                or checkpoint folder.
        """
        self.output.mkdir(parents=True, exist_ok=True)
        locks = []
        try:
            if launcher_world()[0] == 0:  # one lock per run: the main process of a launched group holds it
                for folder in dict.fromkeys([self.output, self.checkpoints.folder]):
                    folder.mkdir(parents=True, exist_ok=True)
                    locks.append(WriterLock(folder, holder="`lateint train`", advice="wait for it to finish, or "
                                            "train into another output folder"))
            return self._train(resume=resume, stop_at=stop_at)
        finally:
            for lock in locks:
                lock.release()

    def _train(self, *, resume: bool, stop_at: int | None) -> TrainResult:
        c = self.config
        log_path = self.output / LOSS_LOG_FILE
        if not resume:
            self.checkpoints.clear()
        ckpt = self.latest_checkpoint() if resume else None
        self.setup(resume_from=ckpt)
        acc = self.accelerator
        main = acc.is_main_process  # the only process that touches the loss log and best/
        config_path = c.save(self.output) if main else self.output / "train_config.toml"
        start, position, seconds_before = 0, 0, 0.0
        if ckpt is not None:
            state = self._restore_state(ckpt)
            start, position, seconds_before = state["step"], state["position"], state["seconds"]
            if main:
                truncate_log(log_path, start)
            logger.info("resuming from %s (step %d)", ckpt, start)
        else:
            if main:
                log_path.unlink(missing_ok=True)
                (self.output / BEST_RECORD).unlink(missing_ok=True)
            torch.manual_seed(self.seeds["dropout"])
        acc.wait_for_everyone()
        trackers = c.tracker_names
        if trackers:
            acc.init_trackers(self.output.name or "lateint", config=_scalars(c.to_dict()))
        # The best dev score so far, and how many validations since it, from the log kept.
        history = dev_history(log_path) if ckpt is not None else []
        best_step, best_value, since_best = best_of(history)
        # a run that stopped early resumes as finished
        stopped_early = bool(c.validation.patience) and since_best >= c.validation.patience
        end = start if stopped_early else (c.steps if stop_at is None else min(c.steps, stop_at))
        world, rank = acc.num_processes, acc.process_index
        B, accum = c.batch_size, c.optim.grad_accum
        every = c.validation.every
        objective = self.objective
        objective.train()
        sandwich = c.dial.enabled and c.dial.mode == "sandwich"
        bar = _progress_bar(c.steps, start, c.progress and main)
        last_loss = None
        t0 = time.perf_counter()
        done = start
        with open(log_path, "a", encoding="utf-8") if main else contextlib.nullcontext() as log:
            for step in range(start, end):
                if sandwich:
                    splits = sandwich_splits(step, self.dial_splits, c.dial.random_splits, self.seeds["sampling"])
                else:
                    splits = [split_for_step(step, self.dial_splits, self.dial_weights, self.seeds["sampling"])]
                totals: dict[str, float] = {}
                for micro in range(accum):
                    groups = self.source.take(position + rank * B, B)
                    position += B * world
                    # a sandwich step: every split on the same groups, the lowest first (its scores teach the others);
                    # each pass is backpropagated at once, so only one pass's graph is held
                    taught = None
                    for i, split in enumerate(splits):
                        batch = self.collate(groups, split)
                        teacher_out = self._teacher_states(batch)
                        last = micro == accum - 1 and i == len(splits) - 1
                        sync = acc.no_sync(objective) if not last and world > 1 else contextlib.nullcontext()
                        with sync:
                            total, terms = objective(batch, teacher_out, split=split,
                                                     inplace_teacher=taught if i > 0 else None)
                            acc.backward(total / accum)
                        if i == 0 and acc.unwrap_model(objective).inplace_loss is not None:
                            taught = acc.unwrap_model(objective).last_scores
                        values = {"loss": total.detach(), **terms}
                        if sandwich:
                            values[f"loss_L{split}"] = total.detach()
                        for name, value in values.items():
                            totals[name] = totals.get(name, 0.0) + float(value) / accum
                if world > 1:
                    # every process logs the same figures: the mean over all processes' groups
                    names = list(totals)
                    means = acc.reduce(torch.tensor([totals[k] for k in names], device=acc.device), reduction="mean")
                    totals = dict(zip(names, means.tolist()))
                if c.optim.max_grad_norm > 0:
                    acc.clip_grad_norm_(objective.parameters(), c.optim.max_grad_norm)
                lr = self.scheduler.get_last_lr()[0]
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                last_loss = totals["loss"]
                if not math.isfinite(last_loss):
                    raise FloatingPointError(f"the loss became {last_loss} at step {step + 1}; lower optim.lr.")
                done = step + 1
                # a sandwich step trains several splits: its loss is their sum, each split's under loss_L<split>
                record = {"step": done, **totals, "lr": lr, **({} if sandwich else {"split": splits[0]})}
                if every and (done % every == 0 or done == c.steps):
                    # every process measures (the dev set is small), so all agree on stopping
                    dev = dev_record(self.validate_splits())
                    value = dev[DEV_LOG_KEY]
                    record.update(dev)
                    if best_value is None or value > best_value:
                        best_step, best_value, since_best = done, value, 0
                        if main:
                            self._save_best(done, dev)
                    else:
                        since_best += 1
                    stopped_early = bool(c.validation.patience) and since_best >= c.validation.patience
                elapsed = seconds_before + time.perf_counter() - t0
                record["seconds"] = round(elapsed, 4)
                if main:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if trackers:
                    tracking.log(acc, {k: v for k, v in record.items() if k != "step"}, step=done)
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", L="+".join(map(str, splits)))
                ckpt_every = c.checkpoint.every
                if ckpt_every and done % ckpt_every == 0 and done < c.steps and not stopped_early:
                    self._save_checkpoint(done, position, elapsed)
                if stopped_early:
                    logger.info("dev nDCG@10 has not improved for %d validations: stopping at step %d",
                                since_best, done)
                    break
        bar.close()
        seconds = seconds_before + time.perf_counter() - t0
        model_path = self.output / FINAL_FOLDER
        finished = done >= c.steps or stopped_early
        if finished:
            latest = self.latest_checkpoint()
            if latest is None or latest.name != f"step-{done:08d}":
                self._save_checkpoint(done, position, seconds)
            if main:
                with self._at_split() as student:
                    student.save_pretrained(model_path)
        if trackers:
            acc.end_training()
        result = TrainResult(
            output=self.output, model_path=model_path, steps=done, resumed_from=start, final_loss=last_loss,
            seeds=self.seeds, loss_log=log_path, config_path=config_path, seconds=seconds,
            groups=len(self.groups) if self.groups is not None else None,
            best_path=self.output / BEST_FOLDER if best_step is not None else None,
            best_step=best_step, best_dev_ndcg=best_value, stopped_early=stopped_early,
        )
        if main and finished:
            (self.output / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
            if log_path.is_file() and log_path.stat().st_size:
                plot_loss_curve(log_path, self.output / LOSS_CURVE_FILE)
        return result


def _scalars(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A config flattened to the scalar values trackers accept (``optim.lr`` ...)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_scalars(value, name + "."))
        elif isinstance(value, (int, float, str, bool)):
            out[name] = value
        elif value is not None:
            out[name] = str(value)
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="training", unit="step")

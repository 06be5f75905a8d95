"""The training loop: :class:`Trainer` (``Trainer(config).train() -> TrainResult``).

One optimizer step runs ``grad_accum`` micro-batches of ``batch_size`` groups (per process); the
objective combines a hard-label loss, a teacher-score loss, TinyBERT's intermediate-layer losses
and DeFormer's mimicry as :class:`~lateint.training.config.LossSettings` says. Device placement,
multi-GPU data parallelism and mixed precision go through ``accelerate``.

Everything random is derived from the config's seed, and a checkpoint holds all the state the
loop has (weights, optimizer, scheduler, RNG, step, the position in the stream of groups), so a
run interrupted and resumed from its last checkpoint ends with the same weights as one that ran
straight through.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lateint.errors import ConfigError, InputError
from lateint.modeling.heads import PairHead
from lateint.ranker import SplitRanker
from lateint.training.config import TrainConfig
from lateint.training.curves import plot_loss_curve
from lateint.training.groups import TrainingGroup, groups_from_dataset
from lateint.training.losses import IntermediateDistillation, get_loss, upper_layer_mimicry
from lateint.training.states import CapturedForward, capture_forward, pair_batches
from lateint.training.students import kept_layer_map, select_layers, student_from_teacher
from lateint.training.teacher import TeacherScores, cached_teacher_scores

logger = logging.getLogger(__name__)

LOSS_LOG_FILE = "loss_log.jsonl"
RESULT_FILE = "train_result.json"
LOSS_CURVE_FILE = "loss_curve.png"
MODEL_FOLDER = "model"
STATE_FILE = "trainer_state.pt"
COMPLETE_MARKER = "complete"


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
        groups: number of training groups.
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
    groups: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


@dataclass
class PairBatch:
    """A micro-batch of groups flattened into aligned pairs.

    ``B`` groups of ``n`` candidates give ``B · n`` pairs (row-major); scores reshape to ``[B, n]``.
    """

    q_sides: list
    d_sides: list
    shape: tuple[int, int]
    labels: torch.Tensor
    mask: torch.Tensor | None = None
    teacher_scores: torch.Tensor | None = None
    groups: list[TrainingGroup] = field(default_factory=list)


class StudentObjective(nn.Module):
    """The student and the trainable parts of the loss, as one module (what the optimizer and
    ``accelerate`` see), whose forward returns the weighted total and its terms."""

    def __init__(self, student: SplitRanker, config: TrainConfig, intermediate: IntermediateDistillation | None):
        super().__init__()
        self.student = student
        self.intermediate = intermediate
        self.settings = config.loss
        s = config.loss
        self.hard_fn = None
        head = student.config.head
        cosine_twin = head.kind == "twin" and head.crossing == "cosine"
        self.hard_scale = s.hard_scale if s.hard_scale is not None else (20.0 if cosine_twin else 1.0)
        if s.hard is not None:
            self.hard_fn = get_loss(s.hard, margin=s.hinge_margin) if s.hard == "hinge" else get_loss(s.hard)
        self.soft_fn = None
        if s.soft is not None:
            self.soft_fn = get_loss(s.soft, temperature=s.temperature) if s.soft == "kl" else get_loss(s.soft)

    @property
    def needs_states(self) -> bool:
        return self.settings.intermediate or self.settings.mimicry

    def forward(self, batch: PairBatch, teacher_out: CapturedForward | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.settings
        student = self.student
        captured = None
        if self.needs_states:
            attentions = s.intermediate and s.intermediate_attention
            captured = capture_forward(student, batch.q_sides, batch.d_sides, attentions=attentions)
            flat = captured.scores
        else:
            qb, db = pair_batches(student, batch.q_sides, batch.d_sides)
            flat = student(qb, db)
        scores = flat.float().view(*batch.shape)
        device = scores.device
        labels = batch.labels.to(device)
        mask = batch.mask.to(device) if batch.mask is not None else None
        parts: list[torch.Tensor] = []
        terms: dict[str, torch.Tensor] = {}
        if self.hard_fn is not None and s.hard_weight > 0:
            hard = self.hard_fn(scores * self.hard_scale, labels, mask)
            parts.append(s.hard_weight * hard)
            terms["hard"] = hard.detach()
        if self.soft_fn is not None and s.soft_weight > 0:
            soft = self.soft_fn(scores, batch.teacher_scores.to(device), mask)
            parts.append(s.soft_weight * soft)
            terms["soft"] = soft.detach()
        if captured is not None:
            assert teacher_out is not None
            hidden = [h.float() for h in captured.hidden]
            t_hidden = [h.float() for h in teacher_out.hidden]
            if s.intermediate:
                inner = self.intermediate(
                    hidden, t_hidden, captured.attentions, teacher_out.attentions, captured.mask
                )
                value = torch.stack(list(inner.values())).sum()
                parts.append(s.intermediate_weight * value)
                terms["intermediate"] = value.detach()
                terms.update({k: v.detach() for k, v in inner.items()})
            if s.mimicry:
                mim = upper_layer_mimicry(hidden, t_hidden, student.split, captured.mask)
                parts.append(s.mimicry_weight * mim)
                terms["mimicry"] = mim.detach()
        if not parts:
            raise ConfigError("every loss term has weight 0; give at least one a positive weight.")
        return torch.stack(parts).sum(), terms


def _lr_lambda(steps: int, warmup: int, schedule: str):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


class Trainer:
    """Trains a split ranker as a :class:`TrainConfig` says.

    Args:
        config: the run's settings.
        groups: the training groups; None builds them from ``config.data`` through
            :mod:`lateint.data` (:func:`~lateint.training.groups.groups_from_dataset`).
    """

    def __init__(self, config: TrainConfig, groups: Sequence[TrainingGroup] | None = None):
        config.validate()
        self.config = config
        self._groups = list(groups) if groups is not None else None
        self.output = Path(config.output)
        self.checkpoint_dir = Path(config.checkpoint.folder) if config.checkpoint.folder else self.output / "checkpoints"
        self._ready = False

    # -- setup -----------------------------------------------------------------------------------
    @property
    def seeds(self) -> dict[str, int]:
        """The seeds of each random part of the run (all derived from ``config.seed``)."""
        s = self.config.seed
        return {"seed": s, "head_init": s, "projection_init": s + 1, "dropout": s + 2, "data": s, "sampling": s}

    @property
    def groups(self) -> list[TrainingGroup]:
        if self._groups is None:
            self._groups = groups_from_dataset(self.config.data, self.config.seed)
        return self._groups

    def setup(self, *, resume_from: Path | None = None) -> None:
        """Load the student (from ``resume_from`` if given), the teacher, the teacher scores, the
        optimizer and the scheduler. Called by :meth:`train`; idempotent."""
        if self._ready:
            return
        from accelerate import Accelerator

        c = self.config
        groups = self.groups
        if not groups:
            raise InputError("there are no training groups (no query has a positive and enough negatives).")
        sizes = {len(g) for g in groups}
        if len(sizes) != 1:
            raise InputError(f"training groups must all have the same size, got sizes {sorted(sizes)}.")
        self.group_size = sizes.pop()
        if c.data.negative_source == "in_batch" and self.group_size != 1:
            raise InputError("with in-batch negatives each group must hold its positive only.")
        cuda = torch.cuda.is_available() and c.device != "cpu"
        if c.device and c.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but no CUDA device is available.")
        amp = c.amp
        if amp != "no" and not cuda:
            logger.warning("amp=%s needs CUDA; training in fp32 on the CPU", amp)
            amp = "no"
        self.accelerator = Accelerator(cpu=not cuda, mixed_precision=amp)
        device = self.accelerator.device

        student, self._kept = self._load_student(resume_from)
        self.teacher = self._load_teacher()
        intermediate = None
        if c.loss.intermediate:
            intermediate = self._intermediate_module(student)
        if c.loss.mimicry:
            t = self.teacher
            if t.num_layers != student.num_layers or t.encoder.hidden_size != student.encoder.hidden_size:
                raise ConfigError(
                    "loss.mimicry compares the student's and teacher's upper layers one to one: they need the "
                    f"same depth and width (student T={student.num_layers}, H={student.encoder.hidden_size}; "
                    f"teacher T={t.num_layers}, H={t.encoder.hidden_size})."
                )
        self.dial_splits, self.dial_weights = self._dial_choices(student)
        if resume_from is not None and intermediate is not None:
            state = torch.load(resume_from / STATE_FILE, map_location="cpu", weights_only=False)
            intermediate.load_state_dict(state["intermediate"])
        self.teacher_scores: TeacherScores | None = None
        if c.loss.soft is not None:
            cache_path = Path(c.distill.scores_cache) if c.distill.scores_cache else self.output / "teacher_scores.json"
            self.teacher_scores = cached_teacher_scores(
                self.teacher, groups, cache_path, batch_size=c.distill.batch_size, progress=c.progress
            )
        if self.teacher is not None:
            self.teacher.to(device)
            self.teacher.eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        objective = StudentObjective(student, c, intermediate)
        o = c.optim
        # New weights (the head, intermediate projections) may learn faster than the encoder.
        encoder_ids = {id(p) for p in student.encoder.parameters()}
        groups: dict[tuple[bool, bool], list] = {}
        for p in objective.parameters():
            groups.setdefault((id(p) in encoder_ids, p.ndim >= 2), []).append(p)
        param_groups = [
            {"params": params, "weight_decay": o.weight_decay if decays else 0.0,
             "lr": o.lr if is_encoder or o.head_lr is None else o.head_lr}
            for (is_encoder, decays), params in sorted(groups.items())
        ]
        optimizer = torch.optim.AdamW(param_groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps)
        warmup = o.warmup_steps if o.warmup_steps is not None else int(o.warmup_ratio * c.steps)
        # The scheduler is stepped once per optimizer step by hand (not prepared by accelerate,
        # which would step it once per process).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(c.steps, warmup, o.schedule))
        self.objective, self.optimizer = self.accelerator.prepare(objective, optimizer)
        self._ready = True

    def _load_student(self, resume_from: Path | None) -> tuple[SplitRanker, list[int] | None]:
        c = self.config
        lengths = dict(max_query_length=c.data.max_query_length, max_doc_length=c.data.max_doc_length)
        if resume_from is not None:
            student = SplitRanker.from_pretrained(resume_from / MODEL_FOLDER, split=c.split, layout=c.layout, **lengths)
            kept_file = resume_from / "kept_layers.json"
            kept = json.loads(kept_file.read_text()) if kept_file.is_file() else None
            return student, kept
        if c.student_layers is None:
            student = SplitRanker.from_pretrained(
                c.model, split=c.split, head=c.head, layout=c.layout, num_layers=c.num_layers,
                seed=c.seed, **lengths, **c.head_options,
            )
            return student, None
        first_k = c.student_layers == "first_k"
        base = SplitRanker.from_pretrained(
            c.model, split=0, head=c.head,
            num_layers=None if first_k else c.num_layers, seed=c.seed, **lengths, **c.head_options,
        )
        kept = select_layers(base.num_layers, c.student_layers, c.num_layers if first_k else None)
        if c.split > len(kept):
            raise ConfigError(f"split={c.split} is out of range: the student keeps {len(kept)} layers.")
        student = student_from_teacher(base, kept, split=c.split, layout=c.layout)
        return student, kept

    def _load_teacher(self) -> SplitRanker | None:
        c = self.config
        if not c.distill.teacher:
            return None
        return SplitRanker.from_pretrained(
            c.distill.teacher, split=c.distill.teacher_split, layout=c.distill.teacher_layout,
            max_query_length=c.data.max_query_length, max_doc_length=c.data.max_doc_length, seed=c.seed,
        )

    def _intermediate_module(self, student: SplitRanker) -> IntermediateDistillation:
        c, t = self.config, self.teacher
        layer_map = c.loss.layer_map
        if layer_map is None and self._kept is not None and c.distill.teacher == c.model:
            layer_map = kept_layer_map(self._kept)
        s_heads = student.encoder.layers[0].attention.self.num_attention_heads
        t_heads = t.encoder.layers[0].attention.self.num_attention_heads
        torch.manual_seed(self.seeds["projection_init"])
        return IntermediateDistillation(
            student.encoder.hidden_size, t.encoder.hidden_size, student.num_layers, t.num_layers,
            layer_map=layer_map, average_heads=s_heads != t_heads,
            embedding=c.loss.intermediate_embedding, hidden=c.loss.intermediate_hidden,
            attention=c.loss.intermediate_attention,
        )

    def _dial_choices(self, student: SplitRanker) -> tuple[list[int], list[float] | None]:
        d, T = self.config.dial, student.num_layers
        if not d.enabled:
            return [student.split], None
        top = T if isinstance(student.head, PairHead) else T - 1
        splits = list(d.splits) if d.splits is not None else list(range(0, top + 1))
        bad = [L for L in splits if not 0 <= L <= top]
        if bad:
            raise ConfigError(
                f"dial.splits {bad} are out of range: this student (T={T}, head={student.config.head.kind}) "
                f"runs splits 0..{top}."
            )
        return splits, list(d.weights) if d.weights is not None else None

    # -- data ------------------------------------------------------------------------------------
    def _stream_indices(self, position: int, count: int) -> list[int]:
        """Groups ``position .. position + count - 1`` of the endless stream of shuffled epochs."""
        n = len(self.groups)
        out = []
        for k in range(position, position + count):
            epoch, offset = divmod(k, n)
            order = self._epoch_order(epoch)
            out.append(order[offset])
        return out

    def _epoch_order(self, epoch: int) -> list[int]:
        cache = getattr(self, "_orders", None)
        if cache is None or cache[0] != epoch:
            order = list(range(len(self.groups)))
            random.Random(f"epoch:{self.seeds['sampling']}:{epoch}").shuffle(order)
            self._orders = cache = (epoch, order)
        return cache[1]

    def _split_for_step(self, step: int) -> int:
        if len(self.dial_splits) == 1:
            return self.dial_splits[0]
        # Drawn from the step number alone, so resuming and every process agree.
        return random.Random(f"dial:{self.seeds['sampling']}:{step}").choices(self.dial_splits, self.dial_weights)[0]

    def collate(self, groups: Sequence[TrainingGroup]) -> PairBatch:
        """Tokenize groups into a :class:`PairBatch` with the student's current layout."""
        student = self.student
        if self.config.data.negative_source == "in_batch":
            B = len(groups)
            q_sides = student.query_sides([g.query for g in groups])
            d_sides = student.doc_sides([g.docs[0] for g in groups])
            qs = [q_sides[i] for i in range(B) for _ in range(B)]
            ds = [d_sides[j] for _ in range(B) for j in range(B)]
            labels = torch.eye(B)
            # Another group's positive for the same query is not a negative.
            same = torch.tensor([[gi.qid == gj.qid for gj in groups] for gi in groups])
            mask = ~same | torch.eye(B, dtype=torch.bool)
            return PairBatch(qs, ds, (B, B), labels, mask.float(), None, list(groups))
        B, n = len(groups), self.group_size
        queries = student.query_sides([g.query for g in groups])
        docs = student.doc_sides([d for g in groups for d in g.docs])
        qs = [queries[i] for i in range(B) for _ in range(n)]
        labels = torch.tensor([list(g.labels) for g in groups], dtype=torch.float32)
        teacher = None
        if self.teacher_scores is not None:
            teacher = torch.tensor([self.teacher_scores.group_scores(g) for g in groups], dtype=torch.float32)
        return PairBatch(qs, docs, (B, n), labels, None, teacher, list(groups))

    @property
    def student(self) -> SplitRanker:
        return self.accelerator.unwrap_model(self.objective).student

    def _teacher_states(self, batch: PairBatch) -> CapturedForward | None:
        if not (self.config.loss.intermediate or self.config.loss.mimicry):
            return None
        s_sep = self.student.config.split.layout == "separate"
        t_sep = self.teacher.config.split.layout == "separate"
        if s_sep != t_sep:
            raise ConfigError(
                "intermediate losses compare student and teacher token by token, so both need the same "
                f"side format; the student's layout is {self.student.config.split.layout!r} and the "
                f"teacher's {self.teacher.config.split.layout!r}. Use layout='offset' (or 'restart') for "
                "the student, or distill.teacher_layout='separate'."
            )
        attentions = self.config.loss.intermediate and self.config.loss.intermediate_attention
        with torch.no_grad(), self.accelerator.autocast():
            return capture_forward(self.teacher, batch.q_sides, batch.d_sides, attentions=attentions)

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, groups: Sequence[TrainingGroup] | None = None, split: int | None = None) -> dict[str, float]:
        """The objective's terms on ``groups`` (default: the training groups) in eval mode, no dropout.

        Runs at ``split`` (default: the config's split) and restores the student's split after.
        """
        self.setup()
        groups = list(groups) if groups is not None else self.groups
        if self.teacher_scores is not None:
            self.teacher_scores.fill(self.teacher, groups, batch_size=self.config.distill.batch_size)
        objective = self.accelerator.unwrap_model(self.objective)
        student = self.student
        old = (student.split, student.config.split.layout)
        student.set_split(self.config.split if split is None else split, self.config.layout if split is None else None)
        was_training = objective.training
        objective.eval()
        sums: dict[str, float] = {}
        count = 0
        try:
            with torch.no_grad():
                B = self.config.batch_size
                for start in range(0, len(groups), B):
                    batch = self.collate(groups[start : start + B])
                    total, terms = objective(batch, self._teacher_states(batch))
                    k = len(batch.groups)
                    for name, value in {"loss": total, **terms}.items():
                        sums[name] = sums.get(name, 0.0) + float(value) * k
                    count += k
        finally:
            objective.train(was_training)
            student.set_split(*old)
        return {k: v / count for k, v in sums.items()}

    # -- checkpoints --------------------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        """The most recent complete checkpoint folder, or None."""
        if not self.checkpoint_dir.is_dir():
            return None
        done = sorted(p for p in self.checkpoint_dir.glob("step-*") if (p / COMPLETE_MARKER).is_file())
        return done[-1] if done else None

    def _save_checkpoint(self, step: int, position: int, seconds: float) -> Path:
        acc = self.accelerator
        folder = self.checkpoint_dir / f"step-{step:08d}"
        acc.wait_for_everyone()
        if acc.is_main_process:
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            student = self.student
            current = (student.split, student.config.split.layout)
            student.set_split(self.config.split, self.config.layout)
            student.save_pretrained(folder / MODEL_FOLDER)
            student.set_split(*current)
            objective = acc.unwrap_model(self.objective)
            state = {
                "step": step,
                "position": position,
                "seconds": seconds,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "scaler": acc.scaler.state_dict() if getattr(acc, "scaler", None) is not None else None,
                "intermediate": objective.intermediate.state_dict() if objective.intermediate is not None else None,
                "config": self.config.to_dict(),
            }
            torch.save(state, folder / STATE_FILE)
            if self._kept is not None:
                (folder / "kept_layers.json").write_text(json.dumps(self._kept))
            (folder / COMPLETE_MARKER).write_text(str(step))
            old = sorted(p for p in self.checkpoint_dir.glob("step-*") if (p / COMPLETE_MARKER).is_file())
            for stale in old[: -self.config.checkpoint.keep_last]:
                shutil.rmtree(stale, ignore_errors=True)
        acc.wait_for_everyone()
        return folder

    def _restore_state(self, folder: Path) -> dict[str, Any]:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
        ignore = {"progress", "output", "steps", "checkpoint"}
        old = {k: v for k, v in state["config"].items() if k not in ignore}
        new = {k: v for k, v in self.config.to_dict().items() if k not in ignore}
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            logger.warning("resuming from %s with changed settings: %s", folder, ", ".join(changed))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None and getattr(self.accelerator, "scaler", None) is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return state

    # -- the loop ---------------------------------------------------------------------------------
    def train(self, *, resume: bool = True, stop_at: int | None = None) -> TrainResult:
        """Train for ``config.steps`` optimizer steps; returns a :class:`TrainResult`.

        Args:
            resume: continue from the latest checkpoint in the checkpoint folder when there is one;
                False starts over (deleting the earlier checkpoints and loss log).
            stop_at: stop after this step without finishing (as an interruption would); the
                final model is not written. Useful to split a run across jobs.
        """
        c = self.config
        self.output.mkdir(parents=True, exist_ok=True)
        log_path = self.output / LOSS_LOG_FILE
        if not resume:
            if self.checkpoint_dir.is_dir():
                for p in self.checkpoint_dir.glob("step-*"):
                    shutil.rmtree(p, ignore_errors=True)
        ckpt = self.latest_checkpoint() if resume else None
        self.setup(resume_from=ckpt)
        acc = self.accelerator
        main = acc.is_main_process  # the only process that touches the loss log
        config_path = c.save(self.output) if main else self.output / "train_config.toml"
        start, position, seconds_before = 0, 0, 0.0
        if ckpt is not None:
            state = self._restore_state(ckpt)
            start, position, seconds_before = state["step"], state["position"], state["seconds"]
            if main:
                _truncate_log(log_path, start)
            logger.info("resuming from %s (step %d)", ckpt, start)
        else:
            if main:
                log_path.unlink(missing_ok=True)
            torch.manual_seed(self.seeds["dropout"])
        end = c.steps if stop_at is None else min(c.steps, stop_at)
        world, rank = acc.num_processes, acc.process_index
        B, accum = c.batch_size, c.optim.grad_accum
        objective = self.objective
        objective.train()
        if self.teacher is not None:
            self.teacher.eval()
        bar = _progress_bar(c.steps, start, c.progress and acc.is_main_process)
        last_loss = None
        t0 = time.perf_counter()
        step = start
        with open(log_path, "a", encoding="utf-8") if main else contextlib.nullcontext() as log:
            for step in range(start, end):
                split = self._split_for_step(step)
                if split != self.student.split:
                    self.student.set_split(split, c.layout if split == c.split else None)
                totals: dict[str, float] = {}
                for micro in range(accum):
                    idx = self._stream_indices(position + rank * B, B)
                    position += B * world
                    batch = self.collate([self.groups[i] for i in idx])
                    teacher_out = self._teacher_states(batch)
                    sync = acc.no_sync(objective) if micro < accum - 1 and world > 1 else contextlib.nullcontext()
                    with sync:
                        total, terms = objective(batch, teacher_out)
                        acc.backward(total / accum)
                    for name, value in {"loss": total.detach(), **terms}.items():
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
                elapsed = seconds_before + time.perf_counter() - t0
                if main:
                    record = {"step": step + 1, **totals, "lr": lr, "split": split, "seconds": round(elapsed, 4)}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}", L=split)
                every = c.checkpoint.every
                if every and (step + 1) % every == 0 and step + 1 < c.steps:
                    self._save_checkpoint(step + 1, position, elapsed)
        bar.close()
        done = end if end > start else start
        seconds = seconds_before + time.perf_counter() - t0
        model_path = self.output / MODEL_FOLDER
        if done >= c.steps:
            if self.latest_checkpoint() is None or self.latest_checkpoint().name != f"step-{done:08d}":
                self._save_checkpoint(done, position, seconds)
            if acc.is_main_process:
                student = self.student
                student.set_split(c.split, c.layout)
                student.save_pretrained(model_path)
        result = TrainResult(
            output=self.output, model_path=model_path, steps=done, resumed_from=start, final_loss=last_loss,
            seeds=self.seeds, loss_log=log_path, config_path=config_path, seconds=seconds, groups=len(self.groups),
        )
        if main and done >= c.steps:
            (self.output / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
            if log_path.is_file() and log_path.stat().st_size:
                plot_loss_curve(log_path, self.output / LOSS_CURVE_FILE)
        return result


def _truncate_log(path: Path, step: int) -> None:
    """Drop loss-log lines after ``step`` (they are redone after resuming)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError):
            continue
    path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")


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

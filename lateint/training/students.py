"""Student and teacher loading, and students made from a teacher's layers.

A shallower student starts from a subset of the teacher's transformer layers (every other layer,
the first k, or explicit ones) with the teacher's embeddings and head; the copied layers keep the
teacher's weights exactly, and the matching teacher layers are the natural targets of
intermediate-layer distillation (:func:`kept_layer_map`).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from pathlib import Path

from lateint.errors import ConfigError
from lateint.modeling.split_encoder import keep_layers
from lateint.ranker import SplitRanker

#: Written next to a checkpoint's model: the teacher layers a cut-down student kept.
KEPT_LAYERS_FILE = "kept_layers.json"


def select_layers(num_layers: int, selection: str | Sequence[int], k: int | None = None) -> list[int]:
    """0-based indices of the teacher layers a student keeps.

    Args:
        num_layers: the teacher's T.
        selection: ``"every_other"`` keeps every second layer counting down from the last, so
            the top layer (the one the head was trained on) is always kept: T = 6 keeps
            ``[1, 3, 5]``, T = 5 keeps ``[0, 2, 4]``. ``"first_k"`` keeps ``0..k-1``. A list keeps
            those indices (strictly increasing).
        k: the number of layers of ``"first_k"``.

    Raises:
        ConfigError: unknown selection, missing or out-of-range k, bad indices.
    """
    if isinstance(selection, str):
        if selection == "every_other":
            if num_layers < 2:
                raise ConfigError(f"every_other needs at least 2 teacher layers, the teacher has {num_layers}.")
            return list(range(num_layers - 1, -1, -2))[::-1]
        if selection == "first_k":
            if k is None or isinstance(k, bool) or not 1 <= k <= num_layers:
                raise ConfigError(f"first_k needs k in 1..{num_layers} (num_layers), got {k!r}.")
            return list(range(k))
        raise ConfigError(
            f"student layer selection {selection!r} is unknown; use 'every_other', 'first_k' or a list of indices."
        )
    indices = [int(i) for i in selection]
    if not indices:
        raise ConfigError("the list of student layers is empty.")
    if any(not 0 <= i < num_layers for i in indices):
        raise ConfigError(f"student layer indices {indices} must be in 0..{num_layers - 1} (0-based).")
    if any(b <= a for a, b in zip(indices, indices[1:])):
        raise ConfigError(f"student layer indices {indices} must be strictly increasing.")
    return indices


def kept_layer_map(indices: Sequence[int]) -> list[int]:
    """The intermediate-distillation layer map of a student made of teacher layers ``indices``.

    Student layer ``m`` (1-based, 0 the embeddings) learns from the teacher layer it was copied
    from: ``[0] + [i + 1 for i in indices]``.
    """
    return [0] + [int(i) + 1 for i in indices]


def student_from_teacher(
    teacher: SplitRanker,
    selection: str | Sequence[int],
    *,
    k: int | None = None,
    split: int | None = None,
    layout: str | None = None,
) -> SplitRanker:
    """A copy of ``teacher`` that keeps only some of its transformer layers.

    The teacher is left untouched; the student owns copies of the embeddings, the kept layers and
    the head.

    Args:
        teacher: the ranker whose layers are kept.
        selection: see :func:`select_layers`.
        k: k of ``"first_k"``.
        split: the student's split; default the teacher's, capped at the student's depth minus one
            for a ``cls`` head (which needs a joint layer) and at its depth otherwise.
        layout: the student's layout; default by split.

    Raises:
        ConfigError: a bad selection, or a split the student's depth or head cannot run.
    """
    indices = select_layers(teacher.num_layers, selection, k)
    student = copy.deepcopy(teacher)
    keep_layers(student.encoder.backbone, indices)
    student.config.encoder.num_layers = M = len(indices)
    if split is None:
        limit = M - 1 if student.config.head.name == "cls" else M
        split = min(teacher.split, limit)
    if split > M:
        raise ConfigError(f"split={split} is out of range: the student has {M} layers.")
    return student.at(split, layout)


# -- loading the models of a run ----------------------------------------------------------------
def load_student(config, resume_from: Path | None = None, model_folder: str = "model") -> tuple[SplitRanker, list[int] | None]:
    """The student a :class:`~lateint.training.config.TrainConfig` describes, and the teacher
    layers it kept (None when it was not cut from a deeper model).

    Args:
        config: the run's config.
        resume_from: a checkpoint folder to load the student from instead.
        model_folder: the checkpoint's model subfolder.
    """
    c = config
    lengths = dict(max_query_length=c.data.max_query_length, max_doc_length=c.data.max_doc_length)
    if resume_from is not None:
        student = SplitRanker.from_pretrained(resume_from / model_folder, split=c.split, layout=c.layout, **lengths)
        kept_file = resume_from / KEPT_LAYERS_FILE
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
    return student_from_teacher(base, kept, split=c.split, layout=c.layout), kept


def load_teacher(config) -> SplitRanker | None:
    """The run's teacher (``distill.teacher``) at its split, frozen; None without one."""
    c = config
    if not c.distill.teacher:
        return None
    teacher = SplitRanker.from_pretrained(
        c.distill.teacher, split=c.distill.teacher_split, layout=c.distill.teacher_layout,
        max_query_length=c.data.max_query_length, max_doc_length=c.data.max_doc_length, seed=c.seed,
    )
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def check_mimicry_pair(student: SplitRanker, teacher: SplitRanker) -> None:
    """DeFormer's mimicry compares upper layers one to one: same depth and width, or ConfigError."""
    if teacher.num_layers != student.num_layers or teacher.encoder.hidden_size != student.encoder.hidden_size:
        raise ConfigError(
            "loss.mimicry compares the student's and teacher's upper layers one to one: they need the "
            f"same depth and width (student T={student.num_layers}, H={student.encoder.hidden_size}; "
            f"teacher T={teacher.num_layers}, H={teacher.encoder.hidden_size})."
        )


def intermediate_module(config, student: SplitRanker, teacher: SplitRanker, kept: list[int] | None, seed: int):
    """TinyBERT's intermediate-layer module for this student and teacher (its projections seeded
    with ``seed``); a student cut from the teacher learns each layer from the one it was copied from."""
    import torch

    from lateint.training.losses import IntermediateDistillation

    loss = config.loss
    layer_map = loss.layer_map
    if layer_map is None and kept is not None and config.distill.teacher == config.model:
        layer_map = kept_layer_map(kept)
    s_heads, t_heads = student.encoder.num_heads, teacher.encoder.num_heads
    torch.manual_seed(seed)
    return IntermediateDistillation(
        student.encoder.hidden_size, teacher.encoder.hidden_size, student.num_layers, teacher.num_layers,
        layer_map=layer_map, average_heads=s_heads != t_heads,
        embedding=loss.intermediate_embedding, hidden=loss.intermediate_hidden,
        attention=loss.intermediate_attention,
    )


# -- dial training: which split each step trains ------------------------------------------------
def dial_choices(dial, student: SplitRanker) -> tuple[list[int], list[float] | None]:
    """The splits a dial run samples from and their weights (one split without dial training)."""
    if not dial.enabled:
        return [student.split], None
    top = student.max_split
    splits = list(dial.splits) if dial.splits is not None else list(range(0, top + 1))
    check_split_range(splits, student, "dial.splits")
    return splits, list(dial.weights) if dial.weights is not None else None


def sandwich_splits(step: int, splits: Sequence[int], random_splits: int, seed: int) -> list[int]:
    """The splits a sandwich step trains, the lowest first (it teaches the others): both ends of ``splits``
    and ``random_splits`` of those between them, drawn from the step number alone (resuming and every process
    agree)."""
    ends = sorted({min(splits), max(splits)})
    between = sorted(set(splits) - set(ends))
    drawn = random.Random(f"sandwich:{seed}:{step}").sample(between, min(random_splits, len(between)))
    return ends + sorted(drawn)


def check_split_range(splits: Sequence[int], student: SplitRanker, key: str) -> None:
    """Raise a one-line ``ConfigError`` naming ``key`` when a split is one ``student`` cannot run."""
    bad = [L for L in splits if not 0 <= L <= student.max_split]
    if bad:
        raise ConfigError(
            f"{key} {bad} are out of range: this student (T={student.num_layers}, "
            f"head={student.config.head.name}) runs splits 0..{student.max_split}."
        )


def split_for_step(step: int, splits: Sequence[int], weights: Sequence[float] | None, seed: int) -> int:
    """The split trained at ``step``, drawn from the step number alone so that resuming and every
    process agree."""
    if len(splits) == 1:
        return splits[0]
    return random.Random(f"dial:{seed}:{step}").choices(list(splits), weights)[0]

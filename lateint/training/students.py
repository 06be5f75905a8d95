"""Students made from a teacher's layers.

A shallower student starts from a subset of the teacher's transformer layers (every other layer,
the first k, or explicit ones) with the teacher's embeddings and head; the copied layers keep the
teacher's weights exactly, and the matching teacher layers are the natural targets of
intermediate-layer distillation (:func:`kept_layer_map`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from lateint.errors import ConfigError
from lateint.ranker import SplitRanker


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
    backbone = student.encoder.backbone
    kept = [backbone.encoder.layer[i] for i in indices]
    for position, layer in enumerate(kept):
        # transformers numbers layers for its key/value caches; keep the numbering consistent.
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    backbone.encoder.layer = nn.ModuleList(kept)
    backbone.config.num_hidden_layers = len(kept)
    student.config.encoder.num_layers = len(kept)
    M = len(kept)
    if split is None:
        limit = M - 1 if student.config.head.kind == "cls" else M
        split = min(teacher.split, limit)
    if split > M:
        raise ConfigError(f"split={split} is out of range: the student has {M} layers.")
    student.set_split(split, layout)
    return student

"""Batches: the endless stream of training groups, and its collation into aligned pairs.

The trainer asks for groups by their position in an endless stream of epochs (``take(start,
count)``), so a checkpoint only has to remember one number to resume exactly where it stopped,
and every process of a data-parallel run can take its own share of the same stream.

* :class:`ShuffledGroups`: groups held in memory, each epoch a seeded permutation of all of them;
* :class:`StreamedGroups`: groups read from a stream (a pair file, a run read query by query),
  shuffled within a bounded buffer; memory does not grow with the stream's length.

:func:`collate` tokenizes groups into a :class:`PairBatch`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from lateint.errors import InputError
from lateint.training.groups import TrainingGroup


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


class ShuffledGroups:
    """Groups in memory; epoch ``e`` is a permutation of them seeded by ``(seed, e)``.

    Args:
        groups: the training groups.
        seed: the sampling seed.
    """

    def __init__(self, groups: Sequence[TrainingGroup], seed: int):
        self.groups = list(groups)
        self.seed = seed
        self._order: tuple[int, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.groups)

    def _epoch_order(self, epoch: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            order = list(range(len(self.groups)))
            random.Random(f"epoch:{self.seed}:{epoch}").shuffle(order)
            self._order = (epoch, order)
        return self._order[1]

    def take(self, start: int, count: int) -> list[TrainingGroup]:
        """Groups ``start .. start + count - 1`` of the endless stream of shuffled epochs."""
        n = len(self.groups)
        out = []
        for k in range(start, start + count):
            epoch, offset = divmod(k, n)
            out.append(self.groups[self._epoch_order(epoch)[offset]])
        return out


class StreamedGroups:
    """Groups read from a stream, shuffled within a buffer of ``buffer`` groups.

    Each epoch reads the stream again from the start and shuffles it with a generator seeded by
    ``(seed, epoch)``: a group leaves the buffer at a random slot and the next one read takes its
    place, so at most ``buffer`` groups are held. Positions must be asked for in increasing order
    (as training does); asking for an earlier one reads the stream again from the start, which is
    how a resumed run finds its place.

    Args:
        open_epoch: returns a fresh iterator over the stream's groups (called once per epoch).
        buffer: the shuffle buffer's size in groups (1 keeps the stream's order).
        seed: the sampling seed.
        fill: completes the groups that are taken (e.g. looks up their texts); groups skipped to
            reach a position are never completed.
    """

    def __init__(
        self,
        open_epoch: Callable[[], Iterator[TrainingGroup]],
        buffer: int,
        seed: int,
        fill: Callable[[list[TrainingGroup]], list[TrainingGroup]] | None = None,
    ):
        if buffer < 1:
            raise InputError(f"the shuffle buffer must hold at least one group, got {buffer}.")
        self.open_epoch = open_epoch
        self.buffer = buffer
        self.seed = seed
        self.fill = fill
        self._restart()

    def _restart(self) -> None:
        self._position = 0
        self._epoch = -1
        self._groups: Iterator[TrainingGroup] = iter(())

    def _shuffled(self, epoch: int) -> Iterator[TrainingGroup]:
        rng = random.Random(f"epoch:{self.seed}:{epoch}")
        pool: list[TrainingGroup] = []
        for group in self.open_epoch():
            if len(pool) < self.buffer:
                pool.append(group)
                continue
            slot = rng.randrange(self.buffer)
            out, pool[slot] = pool[slot], group
            yield out
        rng.shuffle(pool)
        yield from pool

    def _next(self) -> TrainingGroup:
        while True:
            group = next(self._groups, None)
            if group is not None:
                self._position += 1
                return group
            self._epoch += 1
            self._groups = self._shuffled(self._epoch)
            first = next(self._groups, None)
            if first is None:
                raise InputError("the training stream holds no groups.")
            self._groups = _prepend(first, self._groups)

    def take(self, start: int, count: int) -> list[TrainingGroup]:
        """Groups ``start .. start + count - 1`` of the endless stream of shuffled epochs."""
        if start < self._position:
            self._restart()
        while self._position < start:
            self._next()
        taken = [self._next() for _ in range(count)]
        return self.fill(taken) if self.fill is not None else taken


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def collate(
    tokenizer,
    groups: Sequence[TrainingGroup],
    *,
    in_batch: bool = False,
    teacher_scores: Callable[[TrainingGroup], Sequence[float]] | None = None,
) -> PairBatch:
    """Tokenize groups into a :class:`PairBatch` with ``tokenizer`` (the student, at the split it trains).

    Args:
        tokenizer: turns texts into query and document sides (``query_sides``/``doc_sides``: a
            :class:`~lateint.SplitRanker`, whose layout decides the side format).
        groups: groups of equal size.
        in_batch: each group holds its positive only, and every other group's positive is a
            negative (unless it is a positive of the same query).
        teacher_scores: the teacher's scores of a group's documents, in group order; None for no
            soft labels.
    """
    if in_batch:
        B = len(groups)
        q_sides = tokenizer.query_sides([g.query for g in groups])
        d_sides = tokenizer.doc_sides([g.docs[0] for g in groups])
        qs = [q_sides[i] for i in range(B) for _ in range(B)]
        ds = [d_sides[j] for _ in range(B) for j in range(B)]
        labels = torch.eye(B)
        # Another group's positive for the same query is not a negative.
        same = torch.tensor([[gi.qid == gj.qid for gj in groups] for gi in groups])
        mask = ~same | torch.eye(B, dtype=torch.bool)
        return PairBatch(qs, ds, (B, B), labels, mask.float(), None, list(groups))
    B, n = len(groups), len(groups[0])
    queries = tokenizer.query_sides([g.query for g in groups])
    docs = tokenizer.doc_sides([d for g in groups for d in g.docs])
    qs = [queries[i] for i in range(B) for _ in range(n)]
    labels = torch.tensor([list(g.labels) for g in groups], dtype=torch.float32)
    teacher = None
    if teacher_scores is not None:
        teacher = torch.tensor([list(teacher_scores(g)) for g in groups], dtype=torch.float32)
    return PairBatch(qs, docs, (B, n), labels, None, teacher, list(groups))

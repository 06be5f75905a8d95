"""Teacher scores for every training pair, computed once and cached in a JSON file.

Score distillation needs the teacher's score of every (query, document) pair the student trains
on. They are computed with :meth:`SplitRanker.score` before training and stored keyed by
``(query id, document id)`` together with the teacher's fingerprint (a hash of its configuration
and weights), so a rerun, a resumed run or another student with the same teacher reuses them; a
file written by a different teacher is recomputed, never silently reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from lateint.errors import CorruptionError
from lateint.ranker import SplitRanker
from lateint.training.groups import TrainingGroup

logger = logging.getLogger(__name__)

FORMAT = "lateint-teacher-scores/1"


def teacher_fingerprint(teacher: SplitRanker) -> str:
    """A SHA-256 of the teacher's configuration (split, layout, lengths, head) and weights."""
    h = hashlib.sha256()
    config = teacher.config.to_dict()
    config["encoder"].pop("name_or_path", None)  # where it was loaded from does not change the function
    h.update(json.dumps(config, sort_keys=True).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class TeacherScores:
    """Cached teacher scores: ``scores[(qid, doc_id)] -> float``.

    Attributes:
        fingerprint: the teacher's fingerprint.
        scores: the cached scores.
        computed: how many scores the last :meth:`fill` computed (0 when all came from the file).
    """

    def __init__(self, fingerprint: str, scores: dict[tuple[str, str], float] | None = None):
        self.fingerprint = fingerprint
        self.scores = dict(scores or {})
        self.computed = 0

    def __getitem__(self, key: tuple[str, str]) -> float:
        return self.scores[key]

    def __contains__(self, key: object) -> bool:
        return key in self.scores

    def __len__(self) -> int:
        return len(self.scores)

    def group_scores(self, group: TrainingGroup) -> list[float]:
        """The teacher's scores of a group's documents, in group order."""
        return [self.scores[(group.qid, d)] for d in group.doc_ids]

    # -- file ------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike, fingerprint: str) -> "TeacherScores":
        """Read ``path`` if it exists and was written for ``fingerprint``; else an empty cache."""
        path = Path(path)
        if not path.is_file():
            return cls(fingerprint)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            stored = data["fingerprint"]
            rows = data["scores"]
            scores = {(qid, doc): float(s) for qid, docs in rows.items() for doc, s in docs.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(
                f"teacher score cache {path} is unreadable ({exc}); delete it to recompute the scores."
            ) from exc
        if data.get("format") != FORMAT or stored != fingerprint:
            logger.warning("%s was computed by another teacher (or format); recomputing its scores", path)
            return cls(fingerprint)
        return cls(fingerprint, scores)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the cache atomically (a partial file never replaces a good one)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows: dict[str, dict[str, float]] = {}
        for (qid, doc), s in sorted(self.scores.items()):
            rows.setdefault(qid, {})[doc] = s
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "fingerprint": self.fingerprint, "scores": rows}), encoding="utf-8")
        os.replace(tmp, path)
        return path

    # -- computing ---------------------------------------------------------------------------------
    def fill(self, teacher: SplitRanker, groups: Sequence[TrainingGroup], *, batch_size: int = 64, progress: bool = False) -> int:
        """Score the pairs of ``groups`` that are not cached yet; returns how many were scored."""
        todo: dict[tuple[str, str], tuple[str, str]] = {}
        for g in groups:
            for doc_id, text in zip(g.doc_ids, g.docs):
                key = (g.qid, doc_id)
                if key not in self.scores and key not in todo:
                    todo[key] = (g.query, text)
        self.computed = len(todo)
        if todo:
            keys = list(todo)
            values = teacher.score(
                [todo[k][0] for k in keys], [todo[k][1] for k in keys], batch_size=batch_size, progress=progress
            )
            self.scores.update(zip(keys, values.tolist()))
        return self.computed


def cached_teacher_scores(
    teacher: SplitRanker,
    groups: Sequence[TrainingGroup],
    path: str | os.PathLike,
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> TeacherScores:
    """The teacher's scores of every pair in ``groups``, from ``path`` where possible.

    Pairs already in the file (written by the same teacher) are reused; the others are scored and
    the file is rewritten with all of them.
    """
    cache = TeacherScores.read(path, teacher_fingerprint(teacher))
    if cache.fill(teacher, groups, batch_size=batch_size, progress=progress):
        cache.write(path)
    return cache

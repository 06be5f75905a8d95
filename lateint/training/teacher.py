"""Teacher scores for every training pair, computed once and cached in a JSON-lines file.

Score distillation needs the teacher's score of every (query, document) pair the student trains
on. They are computed with :meth:`SplitRanker.score` before training and stored keyed by
``(query id, document id)`` together with the teacher's fingerprint (a hash of its configuration
and weights), so a rerun, a resumed run or another student with the same teacher reuses them; a
file written by a different teacher is recomputed, never silently reused. New scores are
appended to the file, never rewritten whole, and only by one process.
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

FORMAT = "lateint-teacher-scores/2"


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
        self.new_keys: list[tuple[str, str]] = []

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
        """Read ``path`` if it exists and was written for ``fingerprint``; else an empty cache.

        The file is JSON lines: a header ``{"format", "fingerprint"}``, then one
        ``[qid, doc_id, score]`` per line. A last line cut short (a writer killed mid-append) is
        ignored: its scores are computed again.
        """
        path = Path(path)
        if not path.is_file():
            return cls(fingerprint)
        lines = path.read_text(encoding="utf-8").split("\n")
        try:
            header = json.loads(lines[0])
            stored = header["fingerprint"]
            fmt = header.get("format")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(
                f"teacher score cache {path} is unreadable ({exc}); delete it to recompute the scores."
            ) from exc
        if fmt != FORMAT or stored != fingerprint:
            logger.warning("%s was computed by another teacher (or format); recomputing its scores", path)
            return cls(fingerprint)
        scores: dict[tuple[str, str], float] = {}
        body = lines[1:]
        for number, line in enumerate(body, start=2):
            if not line.strip():
                continue
            try:
                qid, doc, score = json.loads(line)
                scores[(str(qid), str(doc))] = float(score)
            except (ValueError, TypeError) as exc:
                if number == len(body) + 1:  # the unfinished last line of an interrupted append
                    break
                raise CorruptionError(
                    f"{path}:{number} is not a teacher score ({exc}); delete the file to recompute the scores."
                ) from exc
        return cls(fingerprint, scores)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the whole cache atomically (a partial file never replaces a good one).

        Only one process may write a cache file: the temporary file carries the writer's pid.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps({"format": FORMAT, "fingerprint": self.fingerprint}) + "\n")
            for (qid, doc), s in sorted(self.scores.items()):
                f.write(json.dumps([qid, doc, s]) + "\n")
        os.replace(tmp, path)
        return path

    def append(self, path: str | os.PathLike, keys: Sequence[tuple[str, str]]) -> Path:
        """Append the scores of ``keys`` to ``path`` (written whole first when it is missing,
        unreadable to this cache, or does not end with a complete line)."""
        path = Path(path)
        if not _appendable(path, self.fingerprint):
            return self.write(path)
        with open(path, "a", encoding="utf-8") as f:
            for key in keys:
                f.write(json.dumps([key[0], key[1], self.scores[key]]) + "\n")
        return path

    # -- computing ---------------------------------------------------------------------------------
    def fill(self, teacher: SplitRanker, groups: Sequence[TrainingGroup], *, batch_size: int = 64, progress: bool = False) -> int:
        """Score the pairs of ``groups`` that are not cached yet, on the teacher's device; returns
        how many were scored (their keys are in :attr:`new_keys`)."""
        todo: dict[tuple[str, str], tuple[str, str]] = {}
        for g in groups:
            for doc_id, text in zip(g.doc_ids, g.docs):
                key = (g.qid, doc_id)
                if key not in self.scores and key not in todo:
                    todo[key] = (g.query, text)
        self.computed = len(todo)
        self.new_keys = list(todo)
        if todo:
            keys = list(todo)
            values = teacher.score(
                [todo[k][0] for k in keys], [todo[k][1] for k in keys], batch_size=batch_size, progress=progress
            )
            self.scores.update(zip(keys, values.tolist()))
        return self.computed


def _appendable(path: Path, fingerprint: str) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as f:
        first = f.readline()
        f.seek(-1, os.SEEK_END)
        ends_cleanly = f.read(1) == b"\n"
    try:
        header = json.loads(first)
    except ValueError:
        return False
    return ends_cleanly and header.get("format") == FORMAT and header.get("fingerprint") == fingerprint


def cached_teacher_scores(
    teacher: SplitRanker,
    groups: Sequence[TrainingGroup],
    path: str | os.PathLike,
    *,
    batch_size: int = 64,
    progress: bool = False,
    write: bool = True,
) -> TeacherScores:
    """The teacher's scores of every pair in ``groups``, from ``path`` where possible.

    Pairs already in the file (written by the same teacher) are reused; the others are scored on
    the teacher's device and appended to the file.

    Args:
        write: whether this process writes the file; in a data-parallel run only the main process
            does, and the others read the file it wrote.
    """
    cache = TeacherScores.read(path, teacher_fingerprint(teacher))
    if cache.fill(teacher, groups, batch_size=batch_size, progress=progress) and write:
        cache.append(path, cache.new_keys)
    return cache

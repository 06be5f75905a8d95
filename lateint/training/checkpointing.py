"""Training checkpoints: every piece of state the loop has, saved so that a resumed run ends with
the same weights as one that ran straight through.

A checkpoint is a folder ``step-<8 digits>`` holding the student (``model/``), the trainer state
(``trainer_state.pt``: optimizer, scheduler, RNG, step, stream position, seconds, intermediate
projections, config) and, last, a ``complete`` marker: a folder without it was interrupted while
being written and is never resumed from.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from lateint.training.students import KEPT_LAYERS_FILE

logger = logging.getLogger(__name__)

MODEL_FOLDER = "model"
STATE_FILE = "trainer_state.pt"
COMPLETE_MARKER = "complete"
#: Config fields that may change between a run and its resumption without a warning.
RESUMABLE_CHANGES = {"progress", "output", "steps", "checkpoint"}


class Checkpoints:
    """The checkpoint folder of a run.

    Args:
        folder: where the ``step-*`` folders go.
        keep_last: how many of the most recent complete checkpoints are kept.
    """

    def __init__(self, folder: str | Path, keep_last: int):
        self.folder = Path(folder)
        self.keep_last = keep_last

    def complete(self) -> list[Path]:
        """The complete checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("step-*") if (p / COMPLETE_MARKER).is_file())

    def latest(self) -> Path | None:
        """The most recent complete checkpoint folder, or None."""
        done = self.complete()
        return done[-1] if done else None

    def clear(self) -> None:
        """Delete every checkpoint (a fresh start)."""
        if self.folder.is_dir():
            for p in self.folder.glob("step-*"):
                shutil.rmtree(p, ignore_errors=True)

    def save(self, step: int, student, state: dict[str, Any], kept: list[int] | None) -> Path:
        """Write checkpoint ``step`` with the student, the trainer ``state`` and the RNG states
        (the caller is the main process), and drop stale checkpoints."""
        folder = self.folder / f"step-{step:08d}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        student.save_pretrained(folder / MODEL_FOLDER)
        # the RNG state after saving the model: a straight run goes on from there too
        torch.save({"step": step, **state, **rng_state()}, folder / STATE_FILE)
        if kept is not None:
            (folder / KEPT_LAYERS_FILE).write_text(json.dumps(kept))
        (folder / COMPLETE_MARKER).write_text(str(step))
        for stale in self.complete()[: -self.keep_last]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder


def read_state(folder: Path) -> dict[str, Any]:
    """The trainer state saved in checkpoint ``folder``."""
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)


def warn_changed_settings(folder: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Log which settings differ between a checkpoint's config and the run resuming from it."""
    old = {k: v for k, v in saved.items() if k not in RESUMABLE_CHANGES}
    new = {k: v for k, v in current.items() if k not in RESUMABLE_CHANGES}
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        logger.warning("resuming from %s with changed settings: %s", folder, ", ".join(changed))


def rng_state() -> dict[str, Any]:
    """The torch RNG states (CPU and every CUDA device)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def truncate_log(path: Path, step: int) -> None:
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

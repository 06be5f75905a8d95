"""Training checkpoints: every piece of state the loop has, saved so that a resumed run ends with
the same weights as one that ran straight through.

A checkpoint is a folder ``step-<8 digits>`` holding the student (``model/``), the trainer state
(optimizer, scheduler, RNG, step, stream position, seconds, intermediate projections, config) and a
``complete`` marker. It is written in a hidden sibling folder, fsynced and renamed into place, so a
``step-*`` folder is always whole; one without the marker is never resumed from.

The trainer state holds no pickle: its tensors go to ``trainer_state.safetensors`` and the rest to
``trainer_state.json``, whose tensors are ``{"__tensor__": key}`` and whose tuples and dicts are
tagged (``{"__tuple__": [...]}``, ``{"__dict__": [[key, value], ...]}``) so that integer keys and
tuples come back as they were (an optimizer's state is keyed by parameter number). A checkpoint
folder from elsewhere therefore cannot run code when a run resumes from it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from lateint.errors import CorruptionError
from lateint.cache.files import fsync_dir, fsync_tree, storage_errors
from lateint.training.students import KEPT_LAYERS_FILE

logger = logging.getLogger(__name__)

MODEL_FOLDER = "model"
STATE_FILE = "trainer_state.json"
STATE_TENSORS_FILE = "trainer_state.safetensors"
#: The pickled trainer state of earlier versions: refused, never unpickled.
LEGACY_STATE_FILE = "trainer_state.pt"
#: Prefix of the hidden folder a checkpoint is written in before it is renamed into place.
_TMP_PREFIX = ".tmp-"
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
            for p in [*self.folder.glob("step-*"), *self.folder.glob(f"{_TMP_PREFIX}step-*")]:
                shutil.rmtree(p, ignore_errors=True)

    def save(self, step: int, student, state: dict[str, Any], kept: list[int] | None) -> Path:
        """Write checkpoint ``step`` with the student, the trainer ``state`` and the RNG states
        (the caller is the main process), and drop stale checkpoints.

        Raises:
            StorageError: the checkpoint could not be written (a full disk ...); no ``step-*``
                folder is left behind for it.
        """
        folder = self.folder / f"step-{step:08d}"
        tmp = self.folder / f"{_TMP_PREFIX}{folder.name}"
        with storage_errors(f"checkpoint {folder}", cleanup=tmp):
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            student.save_pretrained(tmp / MODEL_FOLDER)
            # the RNG state after saving the model: a straight run goes on from there too
            write_state(tmp, {"step": step, **state, **rng_state()})
            if kept is not None:
                (tmp / KEPT_LAYERS_FILE).write_text(json.dumps(kept))
            (tmp / COMPLETE_MARKER).write_text(str(step))
            fsync_tree(tmp)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
            fsync_dir(self.folder)
        for stale in self.complete()[: -self.keep_last]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """Write the trainer ``state`` into ``folder`` as JSON plus safetensors (see the module docstring)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    body = _encode(state, tensors)
    save_file(tensors, str(folder / STATE_TENSORS_FILE))
    with open(folder / STATE_FILE, "w", encoding="utf-8") as f:
        json.dump(body, f)


def read_state(folder: Path) -> dict[str, Any]:
    """The trainer state saved in checkpoint ``folder`` (tensors on the CPU).

    Raises:
        CorruptionError: the state is missing, is not lateint's JSON + safetensors (a pickled
            ``trainer_state.pt`` of an earlier version is refused, never loaded), or is damaged.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / STATE_FILE
    if not path.is_file():
        if (folder / LEGACY_STATE_FILE).exists():
            raise CorruptionError(
                f"{folder / LEGACY_STATE_FILE} is a pickled trainer state, which lateint does not load (a pickle can "
                f"run code); resume is impossible from {folder}: delete it, or start over with `lateint train --fresh`.")
        raise CorruptionError(f"{folder} holds no trainer state ({STATE_FILE}); delete that checkpoint folder to "
                              "resume from the one before it, or start over with `lateint train --fresh`.")
    fix = f"delete {folder} to resume from the checkpoint before it, or start over with `lateint train --fresh`"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        tensors = load_file(str(folder / STATE_TENSORS_FILE), device="cpu")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptionError(f"{path} is not lateint's JSON trainer state ({type(exc).__name__}); {fix}.") from None
    except (OSError, SafetensorError) as exc:
        raise CorruptionError(f"{folder / STATE_TENSORS_FILE} cannot be read ({str(exc)[:120]}); {fix}.") from None
    try:
        state = _decode(body, tensors)
        if not isinstance(state, dict) or not all(k in state for k in ("step", "position", "seconds", "config")):
            raise ValueError("the step, position, seconds or config is missing")
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(f"{path} is not a trainer state lateint wrote ({exc}); {fix}.") from None
    return state


_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as plain JSON, its tensors moved to ``tensors`` (see the module docstring)."""
    if isinstance(value, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {_TENSOR: key}
    if isinstance(value, dict):
        return {_DICT: [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"the trainer state holds a {type(value).__name__}, which a checkpoint cannot store")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(f"an object with keys {sorted(value)[:4]} is not a tagged value")
        (tag, inner), = value.items()
        if tag == _TENSOR:
            if not isinstance(inner, str) or inner not in tensors:
                raise ValueError(f"tensor {inner!r} is not in {STATE_TENSORS_FILE}")
            return tensors[inner]
        if tag == _TUPLE and isinstance(inner, list):
            return tuple(_decode(v, tensors) for v in inner)
        if tag == _DICT and isinstance(inner, list):
            out = {}
            for pair in inner:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ValueError("a dict entry is not a [key, value] pair")
                key = _decode(pair[0], tensors)
                if not (key is None or isinstance(key, (bool, int, float, str))):
                    raise ValueError(f"a dict key is a {type(key).__name__}")
                out[key] = _decode(pair[1], tensors)
            return out
        raise ValueError(f"unknown tag {tag!r}")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"unexpected {type(value).__name__}")


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

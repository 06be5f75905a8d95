"""Experiment trackers of a training run (``report_to``), through accelerate's trackers.

The loss log (``loss_log.jsonl``) is always written; a tracker receives the same records: every
loss term, the learning rate and the split at each step, dev nDCG@10 at each validation, and,
from cross-validation, the final test table. Where a tracker's data goes is its own business
(``WANDB_MODE``/``WANDB_DIR``, ``MLFLOW_TRACKING_URI``, ...); tensorboard writes under the run's
output folder.
"""

from __future__ import annotations

import importlib.util
import math
import re
from typing import Any

from lateint.errors import ConfigError

#: The package each tracker needs, and the extra that installs it.
_PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
             "mlflow": ("mlflow", "mlflow"), "trackio": ("trackio", "trackio")}


def check_installed(names: list[str]) -> None:
    """Refuse, in one line, a tracker whose package is missing (accelerate would drop it silently)."""
    for name in names:
        package, extra = _PACKAGES[name]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"report_to names {name!r} but the {package} package is not installed: "
                              f"pip install -e \".[{extra}]\" (or pip install {package}).")


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers only, nested tables flattened to ``key/sub`` (trackers take scalars)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = value
    return out


def _key_for(tracker: str, key: str) -> str:
    # MLflow accepts only letters, digits and _-./ and space in metric names ('@' is refused).
    return re.sub(r"[^\w\-./ ]", "_", key) if tracker == "mlflow" else key


def log(accelerator, values: dict[str, Any], step: int | None = None) -> None:
    """Send ``values`` to every tracker of ``accelerator`` (main process only), each in the names
    it accepts."""
    if not accelerator.is_main_process:
        return
    flat = _flat(values)
    for tracker in accelerator.trackers:
        tracker.log({_key_for(tracker.name, k): v for k, v in flat.items()}, step=step)


def log_test_table(names: list[str], project: str, logging_dir: str, evaluation) -> None:
    """The final test table (an :class:`~lateint.evaluation.result.EvaluationResult`) as one
    tracker run named ``project``: ``test/<run>/<metric>`` for every run and metric."""
    from accelerate import Accelerator

    acc = Accelerator(log_with=names, project_dir=logging_dir)
    acc.init_trackers(project)
    log(acc, {"test": {run: dict(evaluation.means[run]) for run in evaluation.run_names}})
    acc.end_training()

"""Sweeps over interaction depth: every (model, head, split, storage) point re-ranked, evaluated,
timed and sized, with a table and a Pareto plot."""

from lateint.sweep.config import SweepConfig, load_sweep_config
from lateint.sweep.runner import run_sweep

__all__ = ["SweepConfig", "load_sweep_config", "run_sweep"]

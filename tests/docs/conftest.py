"""Fixtures of the documentation tests: the environment the recipe scripts run in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "docs" / "recipes"


@pytest.fixture
def run_recipe(tmp_path, irdata):
    """Factory: ``run_recipe(script, **env)`` runs ``docs/recipes/<script>`` with the local test
    collections and the given variables (tiny models, small depths) and returns its stdout; the
    recipe's own defaults are the hub ids and full sizes a user runs."""

    def run(script: str, **variables) -> str:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["OUT"] = str(tmp_path / "out")
        env.update({k: str(v) for k, v in variables.items()})
        path = RECIPES / script
        command = ["bash", str(path)] if path.suffix == ".sh" else [sys.executable, str(path)]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:  # the last lines that are not progress bars say what went wrong
            said = [line for line in (done.stdout + done.stderr).splitlines() if "it/s" not in line and line.strip()]
            raise AssertionError(f"{script} failed (exit {done.returncode}):\n" + "\n".join(said[-25:]))
        return done.stdout

    return run

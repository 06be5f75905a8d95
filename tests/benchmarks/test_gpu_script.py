"""``benchmarks/gpu.py`` refuses without CUDA, and its ``--dry-run`` runs every section on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)


def test_without_cuda_it_refuses_in_one_line(tmp_path):
    done = _run("--out", str(tmp_path / "out"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--dry-run" in lines[0]
    assert not (tmp_path / "out").exists()


def test_the_dry_run_runs_every_section(tiny_model, tmp_path):
    out = tmp_path / "gpu"
    done = _run("--dry-run", "--model", str(tiny_model("bert", 2)), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    written = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(written) == {"equivalence", "crossencoder", "cache_build", "training", "kernels"}
    assert all(r["dry_run"] and r["environment"]["device"] == "cpu" for r in written.values())
    eq = written["equivalence"]
    assert {r["dtype"] for r in eq["rows"]} == {"fp32", "bf16"}
    assert {r["split"] for r in eq["rows"]} == {0, 1, 2}  # every split of the 2-layer model
    assert eq["all_ok"] and eq["worst"]["fp32"]["efficient_vs_reference"] < 1e-4
    assert any("cached_vs_end_to_end" in r for r in eq["rows"])
    assert written["crossencoder"]["lateint_pairs_per_s"] > 0 and written["crossencoder"]["crossencoder_pairs_per_s"] > 0
    assert [r["split"] for r in written["cache_build"]["rows"]] == [2, 1]
    assert [r["split"] for r in written["training"]["rows"]] == [0, 2]
    assert all(r["steps_per_s"] > 0 and r["final_loss"] is not None for r in written["training"]["rows"])
    assert all(r["table"] for r in written["kernels"]["rows"])

"""Data-parallel training in real processes: ``torchrun`` starts two workers that ``accelerate``
joins over gloo; each takes half of every batch, and together they end with the weights that one
process reaches with the whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from lateint.ranker import SplitRanker

from .conftest import make_spread_model

WORKER = Path(__file__).with_name("ddp_worker.py")


def launch(processes: int, config, groups_file: Path) -> Path:
    config_path = config.save(Path(config.output).with_suffix(".config"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           str(WORKER), str(config_path), str(groups_file)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Path(config.output)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return SplitRanker.from_pretrained(folder / "final").state_dict()


def losses(folder: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (folder / "loss_log.jsonl").read_text().splitlines()]


def test_two_processes_train_as_one_with_the_whole_batch(tmp_path, make_config, minilm_path, tiny_groups):
    # No dropout: its masks are drawn per process, so they could not agree with one process's.
    model = make_spread_model(tmp_path / "model", 2, 0.2, 1, minilm_path, dropout=0.0)
    groups_file = tmp_path / "groups.json"
    groups_file.write_text(json.dumps([asdict(g) for g in tiny_groups]))
    common = dict(steps=6, split=1, optim={"lr": 5e-3}, checkpoint={"every": 3})
    one = launch(1, make_config(model, batch_size=4, output=str(tmp_path / "one"), **common), groups_file)
    two = launch(2, make_config(model, batch_size=2, output=str(tmp_path / "two"), **common), groups_file)

    world = json.loads((two / "world.json").read_text())
    assert world["processes"] == 2 and world["backend"] == "gloo", world
    assert json.loads((one / "world.json").read_text())["processes"] == 1

    start, w1, w2 = SplitRanker.from_pretrained(model, split=1).state_dict(), weights(one), weights(two)
    moved = max((w1[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-3, "training did not change the weights, so the comparison below would prove nothing"
    # Key biases (softmax ignores them) and the output bias (the listwise loss ignores a shift) have
    # no gradient in exact arithmetic: AdamW turns their rounding noise into full-size steps.
    free = ("attention.self.key.bias", "head.out.bias")
    for k in w1:
        if not k.endswith(free):
            assert torch.allclose(w1[k], w2[k], atol=1e-4, rtol=1e-4), f"{k}: max diff {(w1[k] - w2[k]).abs().max()}"
    r1, r2 = SplitRanker.from_pretrained(one / "final"), SplitRanker.from_pretrained(two / "final")
    for g in tiny_groups:
        s1, s2 = (r.score([g.query] * len(g.docs), list(g.docs)) for r in (r1, r2))
        assert torch.allclose(s1 - s1.mean(), s2 - s2.mean(), atol=1e-4), (s1, s2)
    # the loss log of the two-process run is the mean over both processes' groups
    assert losses(one) == pytest.approx(losses(two), abs=1e-5)

"""Training checkpoints hold no pickle, are written atomically, and a crafted one runs no code."""

from __future__ import annotations

import errno
import os
import pickle

import pytest
import torch

from lateint.errors import CorruptionError, StorageError
from lateint.training import checkpointing
from lateint.training.checkpointing import LEGACY_STATE_FILE, STATE_FILE, STATE_TENSORS_FILE, read_state, write_state
from lateint.training.trainer import Trainer


class _Payload:
    """Unpickling this runs ``os.system``: what a crafted ``trainer_state.pt`` would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_state_round_trip_keeps_int_keys_tuples_and_tensors(tmp_path):
    state = {"step": 3, "position": 12, "seconds": 1.5, "config": {"lr": 0.1, "name": "x", "none": None},
             "optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4, 2)}},
                           "param_groups": [{"betas": (0.9, 0.999), "params": [0, 1], "lr": 1e-3}]},
             "torch_rng": torch.get_rng_state(), "nan": float("inf")}
    write_state(tmp_path, state)
    assert not list(tmp_path.glob("*.pt"))
    back = read_state(tmp_path)
    assert set(back["optimizer"]["state"]) == {0}  # an int key, as the optimizer needs it
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    assert back["config"] == state["config"] and back["nan"] == float("inf")


def test_legacy_pickled_state_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "x": _Payload(marker)}, tmp_path / LEGACY_STATE_FILE, _use_new_zipfile_serialization=True)
    with pytest.raises(CorruptionError, match="pickled trainer state"):
        read_state(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("where", [STATE_FILE, STATE_TENSORS_FILE])
def test_a_pickle_where_the_state_belongs_is_refused(tmp_path, where):
    write_state(tmp_path, {"step": 1, "position": 0, "seconds": 0.0, "config": {}})
    marker = tmp_path / "pwned"
    (tmp_path / where).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CorruptionError):
        read_state(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("body", ['{"__dict__": [["step", {"__tensor__": "99"}]]}', '{"step": 1}', "[1, 2]",
                                  '{"__dict__": [["step", 1]]}', '{"__dict__": [[{"__tensor__": "0"}, 1]]}'])
def test_malformed_state_json_is_a_corruption_error(tmp_path, body):
    write_state(tmp_path, {"step": 1, "position": 0, "seconds": 0.0, "config": {}, "t": torch.zeros(1)})
    (tmp_path / STATE_FILE).write_text(body)
    with pytest.raises(CorruptionError):
        read_state(tmp_path)


def test_resuming_from_a_crafted_checkpoint_runs_no_code(make_config, student_model, tiny_groups, tmp_path):
    config = make_config(student_model, steps=4, batch_size=2, checkpoint={"every": 2})
    Trainer(config, tiny_groups).train(stop_at=2)
    (ckpt,) = (tmp_path / "run" / "checkpoints").glob("step-*")
    (ckpt / STATE_FILE).unlink()
    (ckpt / STATE_TENSORS_FILE).unlink()
    marker = tmp_path / "pwned"
    with open(ckpt / LEGACY_STATE_FILE, "wb") as f:
        pickle.dump({"step": 2, "x": _Payload(marker)}, f)
    with pytest.raises(CorruptionError, match="pickled"):
        Trainer(config, tiny_groups).train()
    assert not marker.exists()


def test_a_full_disk_during_a_checkpoint_leaves_nothing_that_looks_complete(make_config, student_model, tiny_groups,
                                                                             tmp_path, monkeypatch):
    config = make_config(student_model, steps=4, batch_size=2, checkpoint={"every": 2})
    real = checkpointing.write_state

    def full(folder, state):
        real(folder, state)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpointing, "write_state", full)
    with pytest.raises(StorageError, match="the disk is full"):
        Trainer(config, tiny_groups).train()
    folder = tmp_path / "run" / "checkpoints"
    assert not [p for p in folder.iterdir() if p.name.startswith("step-")]
    # the partial folder is gone too; only the training run's lock file stays
    assert [p.name for p in folder.iterdir()] in ([], [".lock"])

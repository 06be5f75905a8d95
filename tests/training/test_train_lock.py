"""Two training runs into one output folder: the second is refused while the first runs."""

from __future__ import annotations

import pytest

from lateint.errors import InputError
from lateint.training.trainer import Trainer


def test_a_second_run_into_the_same_output_is_refused(make_config, student_model, tiny_groups, monkeypatch):
    config = make_config(student_model, steps=2, batch_size=2)
    first, second = Trainer(config, tiny_groups), Trainer(config, tiny_groups)
    original = Trainer._train
    refused = []

    def while_first_runs(self, **kwargs):
        if self is first:
            with pytest.raises(InputError, match="another `lateint train` has .* open") as info:
                second.train()
            refused.append(str(info.value))
        return original(self, **kwargs)

    monkeypatch.setattr(Trainer, "_train", while_first_runs)
    result = first.train()
    assert refused and result.steps == 2
    assert second.train(resume=False).steps == 2  # free again once the first has finished


def test_a_separate_checkpoint_folder_is_locked_too(make_config, student_model, tiny_groups, tmp_path, monkeypatch):
    shared = str(tmp_path / "shared-checkpoints")
    one = make_config(student_model, steps=2, batch_size=2, output=str(tmp_path / "a"), checkpoint={"folder": shared})
    two = make_config(student_model, steps=2, batch_size=2, output=str(tmp_path / "b"), checkpoint={"folder": shared})
    first, second = Trainer(one, tiny_groups), Trainer(two, tiny_groups)
    original = Trainer._train
    refused = []

    def while_first_runs(self, **kwargs):
        if self is first:
            with pytest.raises(InputError, match="shared-checkpoints"):
                second.train()
            refused.append(True)
        return original(self, **kwargs)

    monkeypatch.setattr(Trainer, "_train", while_first_runs)
    first.train()
    assert refused


HOLD = """
import fcntl, sys, time
f = open(sys.argv[1], "a")
fcntl.flock(f.fileno(), fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_a_run_in_another_process_is_detected(make_config, student_model, tiny_groups, tmp_path):
    import subprocess
    import sys

    config = make_config(student_model, steps=2, batch_size=2)
    (tmp_path / "run").mkdir()
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run" / ".lock")], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="train into another output folder"):
            Trainer(config, tiny_groups).train()
    finally:
        other.kill()
        other.wait()
    assert Trainer(config, tiny_groups).train().steps == 2

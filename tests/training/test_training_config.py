"""Training config files: loading, saving, and the errors bad settings give."""

from __future__ import annotations

import pytest

from lateint.errors import ConfigError
from lateint.training.config import TrainConfig
from lateint.training.trainer import Trainer


def write(tmp_path, text):
    path = tmp_path / "train.toml"
    path.write_text(text)
    return path


def test_load_and_save_round_trip(tmp_path):
    path = write(tmp_path, """
model = "some/model"
split = 2
student_layers = [0, 2]
[optim]
lr = 1
grad_accum = 2
[loss]
hard = "none"
soft = "kl"
temperature = 2
[distill]
teacher = "some/teacher"
[dial]
enabled = true
splits = [0, 1]
weights = [1, 3]
""")
    config = TrainConfig.load(path)
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.loss.hard is None and config.loss.soft == "kl"
    assert config.dial.weights == [1.0, 3.0]
    saved = config.save(tmp_path / "out")
    assert TrainConfig.load(saved) == config


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path):
    path = write(tmp_path, 'model = "m"\n[optim]\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match="learning_rate") as info:
        TrainConfig.load(path)
    assert "lr" in str(info.value) and "warmup_ratio" in str(info.value)
    with pytest.raises(ConfigError, match="'modle'.*valid keys"):
        TrainConfig.load(write(tmp_path, 'modle = "m"\n'))
    with pytest.raises(ConfigError, match="unknown key 'x'"):
        TrainConfig.load(write(tmp_path, 'model = "m"\n[loss]\nx = 1\n'))


def test_wrong_types_and_values_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig.load(write(tmp_path, 'model = "m"\nsteps = "ten"\n'))
    with pytest.raises(ConfigError, match="split"):
        TrainConfig.load(write(tmp_path, 'model = "m"\nsplit = -1\n'))
    with pytest.raises(ConfigError, match="teacher"):
        TrainConfig.load(write(tmp_path, 'model = "m"\n[loss]\nsoft = "kl"\n'))
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig.load(write(tmp_path, 'model = "m"\ndevice = "cpu"\namp = "fp16"\n'))
    with pytest.raises(ConfigError, match="student_layers"):
        TrainConfig.load(write(tmp_path, 'model = "m"\nstudent_layers = "every_third"\n'))


def test_split_beyond_the_model_depth_is_a_config_error(make_config, student_model, tiny_groups):
    config = make_config(student_model, split=5)
    with pytest.raises(ConfigError, match="split"):
        Trainer(config, tiny_groups).train()


def test_cls_head_cannot_train_at_the_twin_split(make_config, student_model, tiny_groups):
    config = make_config(student_model, split=2)
    with pytest.raises(ConfigError, match="split"):
        Trainer(config, tiny_groups).train()


def test_dial_splits_out_of_range(make_config, student_model, tiny_groups):
    config = make_config(student_model, dial={"enabled": True, "splits": [0, 2]})
    with pytest.raises(ConfigError, match="dial.splits"):
        Trainer(config, tiny_groups).train()

"""``--set KEY=VALUE`` on train, crossval and sweep, and ``lateint config show``."""

from __future__ import annotations

import pytest

from lateint.cli.main import build_parser, main
from lateint.errors import ConfigError
from lateint.sweep.config import DEFAULT_CONFIG, load_sweep_config
from lateint.toml_files import parse_override
from lateint.training.config import TrainConfig

TRAIN = 'model = "m"\nsteps = 10\n\n[data]\ndataset = "x"\nshuffle_buffer = 0\n\n[optim]\nlr = 3e-5\n'


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(TRAIN)
    return path


@pytest.mark.parametrize("text,parts,value", [
    ("data.shuffle_buffer=1000", ["data", "shuffle_buffer"], 1000),
    ("lr=1e-5", ["lr"], 1e-5),
    ("progress=false", ["progress"], False),
    ("validation.splits=[0, 2]", ["validation", "splits"], [0, 2]),
    ("dtype=bf16", ["dtype"], "bf16"),
    ('output="runs/a b"', ["output"], "runs/a b"),
    ("model=sentence-transformers/all-MiniLM-L6-v2", ["model"], "sentence-transformers/all-MiniLM-L6-v2"),
])
def test_values_are_read_as_toml_values(text, parts, value):
    assert parse_override(text) == (parts, value)


def test_train_overrides_are_typed_and_validated_as_the_file(train_file):
    config = TrainConfig.load(train_file, ["data.shuffle_buffer=1000", "lr=1e-5", "steps=3", "dtype=bf16"])
    assert (config.data.shuffle_buffer, config.optim.lr, config.steps, config.dtype) == (1000, 1e-5, 3, "bf16")
    assert isinstance(config.optim.lr, float)
    assert TrainConfig.load(train_file, ["optim.lr=1"]).optim.lr == 1.0  # an integer where a float goes, as in the file
    for bad, message in [("data.shuffle_buffer=many", "shuffle_buffer='many' has the wrong type; expected int"),
                         ("data.shuffle_bufer=5", "unknown key 'shuffle_bufer'"),
                         ("steps=0", "steps=0 must be a positive integer"),
                         ("depth=5", "'depth' is a key of several tables \\(data, validation\\)"),
                         ("model.x=1", "model is a value, not a table"),
                         ("steps", "must be KEY=VALUE")]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig.load(train_file, [bad])
    assert TrainConfig.load(train_file).data.shuffle_buffer == 0  # the file itself is untouched


def test_train_and_crossval_take_set(train_file, tmp_path):
    from lateint.training.cli import _apply_running_arguments

    for command in ("train", "crossval"):
        args = build_parser().parse_args([command, str(train_file), "--set", "data.shuffle_buffer=1000", "--set", "lr=1e-5"])
        config = _apply_running_arguments(TrainConfig.load(args.config, args.overrides), args)
        assert (config.data.shuffle_buffer, config.optim.lr) == (1000, 1e-5)


def test_sweep_overrides(tmp_path):
    config = load_sweep_config(None, ["data.max_queries=5", "dtype=bf16", "models.0.name=other", "batch_size=16"])
    assert (config.data.max_queries, config.dtype, config.models[0].name, config.batch_size) == (5, "bf16", "other", 16)
    with pytest.raises(ConfigError, match="max_queries must be an integer >= 1, got 0"):
        load_sweep_config(None, ["data.max_queries=0"])
    with pytest.raises(ConfigError, match="models.3 must be an index below 1"):
        load_sweep_config(None, ["models.3.name=x"])
    args = build_parser().parse_args(["sweep", "--set", "data.depth=10"])
    assert load_sweep_config(args.config, args.overrides).data.depth == 10


def test_config_show_prints_every_setting_and_loads_back(train_file, tmp_path, capsys):
    assert main(["config", "show", str(train_file), "--set", "lr=1e-5"]) == 0
    shown = capsys.readouterr().out
    assert "lr = 1e-05" in shown and "warmup_ratio = 0.1" in shown and 'dtype = "fp32"' in shown  # defaults
    (tmp_path / "shown.toml").write_text(shown)
    assert TrainConfig.load(tmp_path / "shown.toml") == TrainConfig.load(train_file, ["lr=1e-5"])

    assert main(["config", "show", str(DEFAULT_CONFIG), "--set", "data.max_queries=5"]) == 0
    shown = capsys.readouterr().out
    assert "max_queries = 5" in shown and 'correction = "holm"' in shown
    (tmp_path / "sweep.toml").write_text(shown)
    assert load_sweep_config(tmp_path / "sweep.toml") == load_sweep_config(None, ["data.max_queries=5"])


def test_config_show_refuses_what_it_cannot_read(tmp_path, capsys):
    (tmp_path / "x.toml").write_text('name = "x"\n')
    assert main(["config", "show", str(tmp_path / "x.toml")]) == 2
    assert "neither a training config" in capsys.readouterr().err
    assert main(["config", "show", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err

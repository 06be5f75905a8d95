"""``lateint config show CONFIG``: a training or sweep config as it resolves, every default written."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lateint.cli.common import add_set_argument


def add_config_command(subparsers) -> None:
    p = subparsers.add_parser("config", help="inspect configuration files",
                              description="Inspect training and sweep configuration files.")
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser(
        "show", help="print a config resolved, defaults included",
        description="Print CONFIG (a training or a sweep TOML file) as lateint reads it: every setting, defaults "
                    "included, after any --set, checked as the command that runs it checks it. The output is a "
                    "config file that loads back to the same settings.")
    show.add_argument("config", type=Path, help="a training config (model = ...) or a sweep config ([[models]])")
    add_set_argument(show)
    show.set_defaults(func=run_show)


def config_kind(raw: dict) -> str:
    """``train`` or ``sweep``: which loader a parsed config file belongs to."""
    from lateint.errors import ConfigError

    if "models" in raw or "sweep" in raw:
        return "sweep"
    if "model" in raw:
        return "train"
    raise ConfigError("this file is neither a training config (top-level model = ...) nor a sweep config "
                      "([sweep] or [[models]] tables).")


def resolved_toml(path: Path, overrides: list[str]) -> str:
    """The config at ``path`` with ``overrides``, resolved and written back as TOML with every default."""
    from lateint.sweep.config import load_sweep_config, sweep_config_toml
    from lateint.toml_files import read_toml, to_toml_text
    from lateint.training.config import TrainConfig

    if config_kind(read_toml(path, "config")) == "sweep":
        return sweep_config_toml(load_sweep_config(path, overrides))
    config = TrainConfig.load(path, overrides)
    top, tables = {}, []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((f"[{f.name}]", dataclasses.asdict(value)))
        elif isinstance(value, dict):
            tables.append((f"[{f.name}]", value))
        else:
            top[f.name] = value
    return to_toml_text(top, tables)


def run_show(args: argparse.Namespace) -> int:
    print(resolved_toml(args.config, args.overrides), end="")
    return 0

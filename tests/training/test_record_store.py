"""The record store sweeps and cross-validation resume from, and the one settings loader."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from lateint.errors import ConfigError, CorruptionError, InputError
from lateint.records import RecordStore
from lateint.toml_files import build_dataclass


def test_records_are_written_whole_and_read_back(tmp_path):
    store = RecordStore(tmp_path / "points")
    assert store.get("a") is None and "a" not in store and store.keys() == []
    store.put("b", {"x": 1})
    store.put("a", {"y": [1, 2]})
    store.put("a", {"y": [3]})  # a rewrite replaces the record
    assert store.keys() == ["a", "b"] and store.get("a") == {"y": [3]} and "b" in store
    assert not list((tmp_path / "points").glob("*.tmp"))
    (tmp_path / "points" / "c.json").write_text('{"cut": ')
    with pytest.raises(CorruptionError, match="c.json"):
        store.get("c")
    with pytest.raises(InputError, match="plain file name"):
        store.put("../escape", {})


@dataclass
class _Inner:
    rate: float = 1.0
    names: list[str] = field(default_factory=list)


@dataclass
class _Outer:
    path: str
    depth: int | None = None
    inner: _Inner = field(default_factory=_Inner)


def test_one_loader_for_every_settings_table():
    built = build_dataclass(_Outer, {"path": "m", "depth": "none", "inner": {"rate": 2, "names": ["a"]}}, "cfg")
    assert built == _Outer("m", None, _Inner(2.0, ["a"])) and isinstance(built.inner.rate, float)
    with pytest.raises(ConfigError, match=r"cfg \[inner\]: unknown key 'rat'"):
        build_dataclass(_Outer, {"path": "m", "inner": {"rat": 2}}, "cfg")
    with pytest.raises(ConfigError, match="depth='3' has the wrong type"):
        build_dataclass(_Outer, {"path": "m", "depth": "3"}, "cfg")
    with pytest.raises(ConfigError, match="missing key"):
        build_dataclass(_Outer, {}, "cfg")

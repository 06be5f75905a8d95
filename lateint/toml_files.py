"""Configuration files: reading TOML with clear errors, and the one loader that turns its tables
into settings dataclasses (:func:`build_dataclass`) and back (:func:`toml_value`)."""

from __future__ import annotations

import dataclasses
import math
import sys
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from lateint.errors import ConfigError, MissingResourceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The parsed TOML file ``path``; ``what`` names it in errors ("sweep config", ...).

    Raises:
        MissingResourceError: the file does not exist.
        ConfigError: it is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"{what} {str(path)!r} does not exist.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType)


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a (simple) type hint."""
    if hint is Any:
        return True
    origin = get_origin(hint)
    if _is_union(hint):
        return any(_type_ok(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def build_dataclass(cls: type, data: Any, where: str):
    """An instance of the dataclass ``cls`` from a TOML table, every key and value type checked.

    Nested dataclass fields are built from sub-tables; ``"none"`` switches an optional setting
    off (TOML has no null); integers are accepted where floats are expected.

    Raises:
        ConfigError: not a table, an unknown key (naming the valid ones), or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table of settings, got {type(data).__name__}.")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys are {', '.join(names)}.")
        hint = hints[key]
        if value == "none" and _is_union(hint) and type(None) in get_args(hint):
            value = None  # TOML has no null; "none" switches an optional setting off
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = build_dataclass(hint, value, f"{where} [{key}]")
            continue
        if not _type_ok(value, hint):
            raise ConfigError(f"{where}: {key}={value!r} has the wrong type; expected {_hint_name(hint)}.")
        if isinstance(value, int) and not isinstance(value, bool) and (
            hint is float or (_is_union(hint) and float in get_args(hint) and int not in get_args(hint))
        ):
            value = float(value)
        if isinstance(value, list) and get_args(hint) and get_args(hint)[0] is float:
            value = [float(v) for v in value]
        kwargs[key] = value
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(map(repr, missing))}.")
    return cls(**kwargs)


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("NoneType", "None")


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigError(f"{value} cannot be written to TOML.")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise ConfigError(f"cannot write {value!r} to TOML.")


# -- command-line overrides ----------------------------------------------------------------------
def parse_override(text: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` from ``--set`` as (the dotted key's parts, the value).

    The value is read as a TOML value (``1000``, ``1e-5``, ``true``, ``[0, 2]``, ``"text"``); anything
    that is not one (``bf16``, ``runs/x``) is taken as a string, as a quoted TOML string would be.

    Raises:
        ConfigError: no ``=``, or an empty key or key part.
    """
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {text!r} must be KEY=VALUE, e.g. --set data.shuffle_buffer=1000 or --set optim.lr=1e-5.")
    value = value.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return [p.strip() for p in parts], parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...],
                    tables: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """A copy of the parsed TOML ``raw`` with each ``--set KEY=VALUE`` put in, to be checked by the same
    loader as the file (so values are typed and validated exactly as written in it).

    ``KEY`` is dotted (``data.shuffle_buffer``; a number picks an entry of an array of tables,
    ``models.0.dtype``). ``tables`` (table name -> its keys, ``""`` for the top level) lets a bare key
    name the one table that has it (``lr`` for ``optim.lr``).

    Raises:
        ConfigError: a malformed override, a bare key that no table or several tables have, or a path
            through something that is not a table.
    """
    import copy

    raw = copy.deepcopy(raw)
    for text in overrides:
        parts, value = parse_override(text)
        if len(parts) == 1 and tables is not None and parts[0] not in tables.get("", set()):
            owners = sorted(name for name, keys in tables.items() if name and parts[0] in keys)
            if len(owners) > 1:
                raise ConfigError(f"--set {text!r}: {parts[0]!r} is a key of several tables ({', '.join(owners)}); "
                                  f"name one, e.g. --set {owners[0]}.{parts[0]}=...")
            if owners:
                parts = [owners[0], parts[0]]
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {text!r}: {where} must be an index below {len(node)}.")
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"--set {text!r}: {where} is a value, not a table; give its own key.")
        if isinstance(node, list):
            raise ConfigError(f"--set {text!r}: {'.'.join(parts)} names an array entry; set one of its keys.")
        node[parts[-1]] = value
    return raw


def dataclass_tables(cls: type) -> dict[str, set[str]]:
    """The ``tables`` of :func:`apply_overrides` for a config dataclass: its own keys under ``""``,
    and the keys of each nested dataclass field under that field's name."""
    tables: dict[str, set[str]] = {"": set()}
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tables[""].add(f.name)
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            tables[f.name] = {g.name for g in dataclasses.fields(hint)}
    return tables


def to_toml_text(top: dict[str, Any], tables: list[tuple[str, dict[str, Any]]]) -> str:
    """TOML text of the ``top`` keys and then each ``(header, keys)`` table (``header`` as written:
    ``[data]``, ``[[models]]``). Every key is written, None as ``"none"`` (how the loaders read an
    unset optional setting), so the text shows defaults too and loads back to the same settings."""
    def assignment(key: str, value: Any) -> str:
        return f"{key} = {toml_value('none' if value is None else value)}"

    text = [assignment(k, v) for k, v in top.items()]
    for header, keys in tables:
        text += ["", header, *(assignment(k, v) for k, v in keys.items())]
    return "\n".join(text).strip() + "\n"

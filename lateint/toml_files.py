"""Reading TOML configuration files with clear errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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

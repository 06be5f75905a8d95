"""Declarations of the named per-document fields a cache stores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from lateint.cache.codecs import Codec, get_codec
from lateint.errors import ConfigError

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class FieldSpec:
    """One field: a variable-length sequence of token rows per document.

    Each document's value for the field is an array ``[n_tokens, *shape]``; ``n_tokens`` varies per
    document and per field (a pooled vector is a field with ``length=1``).

    Attributes:
        name: field name, also used in file names (letters, digits, ``_`` and ``-``).
        codec: registered codec name (``fp32``, ``fp16``, ``int8``, ``raw-int32`` ...).
        shape: trailing shape of one token row, e.g. ``(384,)``; ``()`` for one scalar per token.
            It is whatever the caller stores (a projected 128-d vector is just ``(128,)``).
        length: if set, every document must have exactly this many tokens in the field.
    """

    name: str
    codec: str
    shape: tuple[int, ...] = ()
    length: int | None = None

    def __init__(self, name: str, codec: str, shape: int | Iterable[int] = (), length: int | None = None) -> None:
        shape_t = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if not name or not set(name) <= _NAME_CHARS:
            raise ConfigError(f"field name {name!r} must be non-empty and use only letters, digits, '_' and '-'")
        if any(s <= 0 for s in shape_t):
            raise ConfigError(f"field {name!r}: every trailing dimension must be positive, got {shape_t}")
        if length is not None and int(length) < 0:
            raise ConfigError(f"field {name!r}: length must be >= 0, got {length}")
        get_codec(codec)  # fail early on an unknown codec
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "shape", shape_t)
        object.__setattr__(self, "length", None if length is None else int(length))

    @property
    def elems(self) -> int:
        """Elements in one token row (the product of :attr:`shape`)."""
        return math.prod(self.shape)

    @property
    def codec_impl(self) -> Codec:
        """The registered :class:`Codec` object."""
        return get_codec(self.codec)

    @property
    def row_nbytes(self) -> int:
        """Bytes one token of this field takes on disk."""
        return self.codec_impl.row_nbytes(self.elems)

    def to_json(self) -> dict[str, Any]:
        """The manifest form of the field."""
        return {"name": self.name, "codec": self.codec, "shape": list(self.shape), "length": self.length}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FieldSpec":
        """Inverse of :meth:`to_json`."""
        return cls(data["name"], data["codec"], tuple(data.get("shape", ())), data.get("length"))


def normalize_fields(fields: Iterable[FieldSpec | Mapping[str, Any]] | Mapping[str, Any]) -> list[FieldSpec]:
    """Accept a list of :class:`FieldSpec` (or their JSON dicts), or a mapping ``name -> spec`` where
    spec is a :class:`FieldSpec`, a dict without ``name``, or a ``(codec, shape[, length])`` tuple."""
    specs: list[FieldSpec] = []
    if isinstance(fields, Mapping):
        for name, spec in fields.items():
            if isinstance(spec, FieldSpec):
                if spec.name != name:
                    raise ConfigError(f"field declared under key {name!r} is named {spec.name!r}")
                specs.append(spec)
            elif isinstance(spec, Mapping):
                specs.append(FieldSpec.from_json({**spec, "name": name}))
            else:
                specs.append(FieldSpec(name, *spec))
    else:
        for spec in fields:
            specs.append(spec if isinstance(spec, FieldSpec) else FieldSpec.from_json(spec))
    if not specs:
        raise ConfigError("a cache needs at least one field")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"field names must be unique, got {names}")
    return specs

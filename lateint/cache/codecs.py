"""Codecs: how one field's token rows are turned into bytes on disk and back.

A codec maps a 2-D array ``[n_tokens, elems]`` (``elems`` is the product of the field's trailing
shape, e.g. the hidden size) to a ``uint8`` array ``[n_tokens, row_nbytes(elems)]`` and back. Every
token takes the same number of bytes, so a field's data file is a plain row-major table that can be
memory-mapped and sliced by token offsets. All multi-byte values are little-endian.

Built-in codecs:

=============  ==========================================  ===================  ===============
name           stored per token                            bytes per token      decodes to
=============  ==========================================  ===================  ===============
``fp32``       ``elems`` float32                           ``4 * elems``        float32, exact
``fp16``       ``elems`` float16                           ``2 * elems``        float32
``int8``       ``elems`` int8 + one float32 scale          ``elems + 4``        float32
``raw-<t>``    ``elems`` values of numpy dtype ``<t>``     ``itemsize * elems`` ``<t>``, exact
=============  ==========================================  ===================  ===============

``int8`` is symmetric per-token quantisation: ``scale = max|x| / 127`` for each token row,
``q = round(x / scale)`` (half to even) in ``[-127, 127]`` and ``x' = q * scale``, so every element
is within ``scale / 2`` of its input (plus float32 rounding). At 384 dimensions it takes 388 bytes
per token (1.0104 bytes per dimension). Raw codecs exist for ``int8``, ``uint8``, ``int16``,
``int32``, ``int64``, ``float32`` and ``bool`` (token ids, positions, type ids, masks); they refuse
values that do not fit their dtype.

Decoding returns **numpy** arrays (float32 for the float codecs); the reader turns padded batches
into torch tensors. New codecs (e.g. a product quantiser) are added with :func:`register_codec`
and must be registered under the same name before a store that uses them is opened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lateint.errors import ConfigError, InputError

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency of lateint
    torch = None

_F32 = np.dtype("<f4")
_F16 = np.dtype("<f2")


class Codec(ABC):
    """Turns ``[n_tokens, elems]`` arrays into fixed-width byte rows and back.

    Attributes:
        name: the registry name, stored in a cache's manifest.
        decoded_dtype: the numpy dtype :meth:`decode` returns.
        stored_float_dtype: the float dtype the values are stored in as they are, if they are
            (then a reader may hand out the stored rows themselves and leave the widening to the
            arithmetic that reads them); None when decoding has work to do.
        lossy: whether decode(encode(x)) can differ from x.
    """

    name: str
    decoded_dtype: np.dtype
    stored_float_dtype: np.dtype | None = None
    lossy: bool

    @abstractmethod
    def row_nbytes(self, elems: int) -> int:
        """Bytes one token row of ``elems`` elements takes on disk."""

    @abstractmethod
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Encode ``x`` of shape ``[n_tokens, elems]`` into ``uint8 [n_tokens, row_nbytes(elems)]``
        (C-contiguous). Raises :class:`InputError` for values the codec cannot represent."""

    @abstractmethod
    def decode(self, rows: np.ndarray, elems: int, out: np.ndarray | None = None) -> np.ndarray:
        """Decode ``uint8 [n_tokens, row_nbytes(elems)]`` rows into ``[n_tokens, elems]`` of
        :attr:`decoded_dtype`, writing into ``out`` when given (and returning it)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _as_rows(rows: np.ndarray, dtype: np.dtype, elems: int) -> np.ndarray:
    """Reinterpret uint8 rows as ``[n, elems]`` of ``dtype`` without copying when possible."""
    rows = np.ascontiguousarray(rows)
    return rows.view(dtype).reshape(rows.shape[0], elems)


def _finish(values: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return values
    out[...] = values
    return out


def _require_float(x: np.ndarray, codec: str) -> np.ndarray:
    if x.dtype.kind not in "fiub":
        raise InputError(f"codec {codec!r} stores numbers; got an array of dtype {x.dtype}")
    x = np.asarray(x, dtype=_F32)
    if not np.isfinite(x).all():
        raise InputError(f"codec {codec!r}: the array holds NaN or infinite values; they cannot be cached")
    return x


class Fp32Codec(Codec):
    """Exact float32 storage."""

    name = "fp32"
    decoded_dtype = _F32
    stored_float_dtype = _F32
    lossy = False

    def row_nbytes(self, elems: int) -> int:
        return 4 * elems

    def encode(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(_require_float(x, self.name))
        return x.view(np.uint8).reshape(x.shape[0], self.row_nbytes(x.shape[1]))

    def decode(self, rows: np.ndarray, elems: int, out: np.ndarray | None = None) -> np.ndarray:
        return _finish(_as_rows(rows, _F32, elems), out)


class Fp16Codec(Codec):
    """Half precision: relative error at most 2**-11 for normal values, range +-65504."""

    name = "fp16"
    decoded_dtype = _F32
    stored_float_dtype = _F16
    lossy = True

    def row_nbytes(self, elems: int) -> int:
        return 2 * elems

    def encode(self, x: np.ndarray) -> np.ndarray:
        x = _require_float(x, self.name)
        if x.size and float(np.abs(x).max()) > float(np.finfo(np.float16).max):
            raise InputError(f"codec 'fp16': values up to {np.abs(x).max():.6g} exceed the float16 range "
                             "(65504); use 'int8' or 'fp32' for this field")
        h = np.ascontiguousarray(x.astype(_F16))
        return h.view(np.uint8).reshape(x.shape[0], self.row_nbytes(x.shape[1]))

    def decode(self, rows: np.ndarray, elems: int, out: np.ndarray | None = None) -> np.ndarray:
        halves = _as_rows(rows, _F16, elems)
        if out is None:
            out = np.empty(halves.shape, _F32)
        if torch is not None and out.flags.c_contiguous:
            # torch's half-to-float conversion is vectorised and threaded; numpy's is ~2x slower.
            torch.from_numpy(out).copy_(torch.from_numpy(halves))
        else:
            out[...] = halves
        return out


class Int8Codec(Codec):
    """Symmetric per-token int8: ``elems`` int8 values followed by one float32 scale per row."""

    name = "int8"
    decoded_dtype = _F32
    lossy = True

    def row_nbytes(self, elems: int) -> int:
        return elems + 4

    @staticmethod
    def quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(q int8 [n, elems], scale float32 [n])`` with ``x ~= q * scale[:, None]``.

        The scale is ``max|row| / 127`` (0 for an all-zero row). Values are multiplied by
        ``127 / max|row|`` rather than divided by the scale, so that exact fractions of the
        maximum (0.5, 0.25 ...) land exactly on their grid point before rounding.
        """
        x = _require_float(x, "int8")
        amax = np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0], _F32)
        nonzero = amax > 0
        inv = np.divide(np.float32(127.0), amax, out=np.zeros_like(amax), where=nonzero)
        q = np.rint(x * inv[:, None])
        np.clip(q, -127, 127, out=q)
        scale = (amax / np.float32(127.0)).astype(_F32)
        return q.astype(np.int8), scale

    def encode(self, x: np.ndarray) -> np.ndarray:
        q, scale = self.quantize(x)
        n, elems = q.shape
        rows = np.empty((n, elems + 4), np.uint8)
        rows[:, :elems] = q.view(np.uint8)
        rows[:, elems:] = scale.reshape(n, 1).view(np.uint8)
        return rows

    def decode(self, rows: np.ndarray, elems: int, out: np.ndarray | None = None) -> np.ndarray:
        n = rows.shape[0]
        q = rows[:, :elems].view(np.int8)
        scale = np.ascontiguousarray(rows[:, elems:elems + 4]).view(_F32).reshape(n, 1)
        if out is None:
            out = np.empty((n, elems), _F32)
        np.multiply(q, scale, out=out, casting="unsafe")
        return out


class RawCodec(Codec):
    """Values stored as they are in a fixed numpy dtype (integers, booleans, float32)."""

    lossy = False

    def __init__(self, dtype: str) -> None:
        native = np.dtype(dtype)
        self.decoded_dtype = native.newbyteorder("<") if native.itemsize > 1 else native
        self.name = f"raw-{native.name}"

    def row_nbytes(self, elems: int) -> int:
        return self.decoded_dtype.itemsize * elems

    def encode(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise InputError(f"codec {self.name!r} stores numbers; got an array of dtype {x.dtype}")
        with np.errstate(invalid="ignore", over="ignore"):
            y = np.ascontiguousarray(x.astype(self.decoded_dtype))
        if x.dtype != self.decoded_dtype and not np.array_equal(y, x):
            raise InputError(f"codec {self.name!r}: some values do not fit {self.decoded_dtype.name} "
                             f"(input dtype {x.dtype}); declare the field with a wider raw codec")
        return y.view(np.uint8).reshape(x.shape[0], self.row_nbytes(x.shape[1]))

    def decode(self, rows: np.ndarray, elems: int, out: np.ndarray | None = None) -> np.ndarray:
        return _finish(_as_rows(rows, self.decoded_dtype, elems), out)


_REGISTRY: dict[str, Codec] = {}


def register_codec(codec: Codec, *, replace: bool = False) -> Codec:
    """Make ``codec`` available by ``codec.name``. Raises :class:`ConfigError` when the name is
    taken, unless ``replace``. Returns the codec."""
    if not isinstance(codec, Codec):
        raise ConfigError(f"register_codec expects a Codec instance, got {type(codec).__name__}")
    if codec.name in _REGISTRY and not replace:
        raise ConfigError(f"a codec named {codec.name!r} is already registered; pass replace=True to override it")
    _REGISTRY[codec.name] = codec
    return codec


def get_codec(name: str) -> Codec:
    """The codec registered as ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown codec {name!r}; known codecs: {', '.join(sorted(_REGISTRY))}. "
                          "A custom codec must be registered with lateint.cache.register_codec "
                          "before a store that uses it is written or opened") from None


def codec_names() -> list[str]:
    """Names of all registered codecs, sorted."""
    return sorted(_REGISTRY)


for _codec in (Fp32Codec(), Fp16Codec(), Int8Codec()):
    register_codec(_codec)
for _dtype in ("int8", "uint8", "int16", "uint16", "int32", "int64", "float32", "bool"):
    register_codec(RawCodec(_dtype))

"""Codecs: exactness, error bounds, sizes, validation and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from lateint.cache.codecs import Codec, Int8Codec, codec_names, get_codec, register_codec
from lateint.errors import ConfigError, InputError


def roundtrip(name: str, x: np.ndarray) -> np.ndarray:
    codec = get_codec(name)
    rows = codec.encode(x)
    assert rows.dtype == np.uint8 and rows.shape == (x.shape[0], codec.row_nbytes(x.shape[1]))
    return codec.decode(rows, x.shape[1])


def test_fp32_is_exact():
    x = np.random.default_rng(0).standard_normal((37, 24)).astype(np.float32)
    x[0, :3] = [np.float32(1e-40), -0.0, 3.4e38]  # subnormal, negative zero, near max
    y = roundtrip("fp32", x)
    assert y.dtype == np.float32
    assert np.array_equal(y.view(np.uint32), x.view(np.uint32))


def test_fp16_relative_error_bound():
    x = np.random.default_rng(1).standard_normal((50, 64)).astype(np.float32) * 10
    y = roundtrip("fp16", x)
    assert y.dtype == np.float32
    # Round to nearest with an 11-bit significand: relative error <= 2**-11 (absolute below 2**-14).
    assert np.all(np.abs(y - x) <= np.maximum(np.abs(x) * 2.0**-11, 2.0**-25))
    assert not np.array_equal(y, x)  # it is lossy, so the bound above is not vacuous


def test_int8_hand_checked_fixture():
    x = np.array([[1.0, -0.5, 0.25]], np.float32)
    q, scale = Int8Codec.quantize(x)
    assert scale.dtype == np.float32 and scale[0] == np.float32(1 / 127)
    # 127 * -0.5 = -63.5 rounds half to even -> -64; 127 * 0.25 = 31.75 -> 32.
    assert q.tolist() == [[127, -64, 32]]
    rows = get_codec("int8").encode(x)
    assert rows.shape == (1, 3 + 4)
    assert rows[0, :3].view(np.int8).tolist() == [127, -64, 32]
    assert rows[0, 3:].view("<f4")[0] == np.float32(1 / 127)
    y = get_codec("int8").decode(rows, 3)
    np.testing.assert_allclose(y, [[1.0, -64 / 127, 32 / 127]], rtol=1e-6)


def test_int8_per_token_error_is_at_most_half_a_step():
    rng = np.random.default_rng(2)
    # Rows of very different magnitudes: a shared scale would fail the per-row bound.
    x = (rng.standard_normal((200, 384)) * rng.uniform(1e-3, 1e3, (200, 1))).astype(np.float32)
    x[5] = 0.0
    y = roundtrip("int8", x)
    _, scale = Int8Codec.quantize(x)
    err = np.abs(y - x)
    bound = scale[:, None] / 2 * (1 + 1e-5) + 1e-30
    assert np.all(err <= bound)
    assert np.all(y[5] == 0) and scale[5] == 0
    # The row maximum is represented exactly up to float rounding.
    rowmax = np.abs(x).max(axis=1)
    np.testing.assert_allclose(np.abs(y).max(axis=1), rowmax, rtol=1e-6)
    assert err.max() > 0


def test_bytes_per_token_at_dim_384():
    sizes = {name: get_codec(name).row_nbytes(384) for name in ("fp32", "fp16", "int8")}
    assert sizes == {"fp32": 1536, "fp16": 768, "int8": 388}
    assert sizes["int8"] <= 1.15 * 384  # 441.6 bytes


def test_raw_codecs_are_exact_and_refuse_overflow():
    ids = np.array([[0], [101], [2**31 - 1]], np.int64)
    y = roundtrip("raw-int32", ids)
    assert y.dtype == np.dtype("<i4") and y.ravel().tolist() == [0, 101, 2**31 - 1]
    with pytest.raises(InputError, match="do not fit int32"):
        get_codec("raw-int32").encode(np.array([[2**31]], np.int64))
    with pytest.raises(InputError, match="do not fit"):
        get_codec("raw-int16").encode(np.array([[0.5]], np.float32))


def test_float_codecs_refuse_nan_and_fp16_overflow():
    for name in ("fp32", "fp16", "int8"):
        with pytest.raises(InputError, match="NaN"):
            get_codec(name).encode(np.array([[1.0, np.nan]], np.float32))
    with pytest.raises(InputError, match="float16 range"):
        get_codec("fp16").encode(np.array([[7e4]], np.float32))


def test_registry():
    assert {"fp32", "fp16", "int8", "raw-int32", "raw-int64", "raw-bool"} <= set(codec_names())
    with pytest.raises(ConfigError, match="unknown codec 'nope'"):
        get_codec("nope")
    with pytest.raises(ConfigError, match="already registered"):
        register_codec(Int8Codec())

    class Halved(Codec):
        name = "test-halved"
        decoded_dtype = np.dtype(np.float32)
        lossy = False

        def row_nbytes(self, elems):
            return 4 * elems

        def encode(self, x):
            return np.ascontiguousarray(np.asarray(x, np.float32) / 2).view(np.uint8)

        def decode(self, rows, elems, out=None):
            values = np.ascontiguousarray(rows).view(np.float32) * 2
            if out is not None:
                out[...] = values
                return out
            return values

    register_codec(Halved(), replace=True)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(roundtrip("test-halved", x), x)

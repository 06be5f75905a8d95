"""Storage engine for precomputed per-document representations (see :mod:`lateint.cache.store`)."""

from lateint.cache.store import (DEFAULT_SHARD_BYTES, DEFAULT_SHARD_DOCS, CacheReader, CacheWriter, Codec,
                                 FieldSpec, IncompleteCacheError, codec_names, get_codec, register_codec)

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "DEFAULT_SHARD_DOCS",
    "CacheReader",
    "CacheWriter",
    "Codec",
    "FieldSpec",
    "IncompleteCacheError",
    "codec_names",
    "get_codec",
    "register_codec",
]

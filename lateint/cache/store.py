"""The document store: the public entry points of the cache engine in one place.

A store is a folder of sharded, checksummed, memory-mappable arrays keyed by string doc ids, with
several named variable-length fields per document (token states, token ids, a pooled vector ...).
It knows nothing about models: the metadata dict it is given (e.g. a model configuration's
fingerprint) is stored and compared, never interpreted.

* :class:`CacheWriter` builds a store in bounded memory and resumes an interrupted build.
* :class:`CacheReader` memory-maps a complete store and gathers documents into arrays or padded
  torch batches.
* :class:`FieldSpec` declares a field; :mod:`lateint.cache.codecs` holds the codecs
  (``fp32``, ``fp16``, ``int8``, ``raw-<dtype>``) and the codec registry.

The on-disk layout is described in :mod:`lateint.cache.manifest`.
"""

from __future__ import annotations

from lateint.cache.codecs import Codec, codec_names, get_codec, register_codec
from lateint.cache.fields import FieldSpec
from lateint.cache.manifest import IncompleteCacheError
from lateint.cache.reader import CacheReader
from lateint.cache.writer import DEFAULT_SHARD_BYTES, DEFAULT_SHARD_DOCS, CacheWriter

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

"""lateint: one BERT encoder from cross-encoder to twin, with cached document states.

The first L of a model's T layers see the query and the document separately, the other T - L
jointly: ``split=0`` is a cross-encoder, ``split=T`` a twin (bi-encoder), anything between is
partial interaction (PreTTR, DeFormer, DC-BERT).
"""

from lateint.config import EncoderSettings, HeadSettings, RankerConfig, SideSettings
from lateint.errors import (
    CacheMismatchError,
    ConfigError,
    CorruptionError,
    InputError,
    LateintError,
    MissingResourceError,
)
from lateint.cache.doc_cache import DocCache
from lateint.cascading import cascade
from lateint.ranker import SplitRanker
from lateint.reranking import rerank

__version__ = "0.1.0"

__all__ = [
    "CacheMismatchError",
    "ConfigError",
    "CorruptionError",
    "DocCache",
    "EncoderSettings",
    "HeadSettings",
    "InputError",
    "LateintError",
    "MissingResourceError",
    "RankerConfig",
    "SplitRanker",
    "SideSettings",
    "cascade",
    "rerank",
]

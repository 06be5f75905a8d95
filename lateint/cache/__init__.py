"""Storage engine for precomputed per-document representations (see :mod:`lateint.cache.store`)."""

from lateint.cache.store import *  # noqa: F401,F403  (store.__all__ is the public surface)
from lateint.cache.store import __all__  # noqa: F401

"""Errors raised for bad input.

Every error a user can provoke with bad input is one of these, with a message that names the
problem and says what to do. They subclass the built-in exception a caller would expect
(``ValueError`` for bad values, ``FileNotFoundError`` for missing files), so ``except ValueError``
keeps working.
"""

from __future__ import annotations


class LateintError(Exception):
    """Base class of every error lateint raises on purpose."""


class InputError(LateintError, ValueError):
    """A value passed by the user cannot be used (wrong length, out of range, malformed)."""


class ConfigError(LateintError, ValueError):
    """A configuration (split, head, layout, lengths, config file) is inconsistent."""


class MissingResourceError(LateintError, FileNotFoundError):
    """A model folder, data folder, cache or run file that was named does not exist."""


class CacheMismatchError(LateintError, ValueError):
    """A document cache was built for a different ranker configuration than the one using it."""


class CorruptionError(LateintError, OSError):
    """Stored data failed its integrity check (checksum or structure)."""


class StorageError(LateintError, OSError):
    """Data could not be written (a full disk, a read-only or unwritable folder); nothing that
    looks complete was left behind."""

"""Reading the text files users give: lines and numbers, checked once for every reader.

Every reader of queries, qrels, runs, documents and training files takes its lines from
:func:`text_lines` and its numbers from :func:`parse_score` / :func:`parse_int`, so that each
of these rules holds everywhere:

* UTF-8, with a byte-order mark at the start of the file stripped (editors on Windows write
  one; left in, it becomes part of the first id);
* ``\\n``, ``\\r\\n`` and ``\\r`` line endings alike;
* ``.gz`` files are read transparently, and a damaged or truncated one is an error naming it;
* numbers are plain ASCII decimals: Python's ``float``/``int`` also accept ``１２.５``, ``٢`` and
  ``1_000``, which no IR tool writes, so a file holding them is refused rather than read as
  something its author may not have meant.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from lateint.errors import InputError, MissingResourceError

_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+", re.ASCII)


def text_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every line of a UTF-8 text file (``.gz`` read transparently),
    without its line ending and with a leading byte-order mark removed; numbers start at 1.

    Args:
        path: the file.
        what: what the file is, for error messages (``"qrels"``, ``"run file"`` ...).

    Raises:
        MissingResourceError: the file does not exist.
        InputError: a line is not UTF-8, or a ``.gz`` file is damaged or cut short.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingResourceError(f"{what} {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    number = 0
    try:
        with opener(path, "rb") as raw:
            # utf-8-sig drops a leading byte-order mark; newline=None reads \n, \r\n and \r alike
            with io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None) as lines:
                for number, line in enumerate(lines, start=1):
                    yield number, line[:-1] if line.endswith("\n") else line
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not UTF-8 text (near line {number + 1}); save the file as UTF-8") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputError(f"{what} {path} is a damaged or truncated gzip file ({error}); "
                         f"download or compress it again") from None


def parse_score(text: str, where: str, field: str = "score") -> float:
    """A number written in ASCII (``12.5``, ``-3e-2``, ``inf``); the caller checks finiteness.

    Raises:
        InputError: anything else, ``１２.５``, ``٢`` and ``1_000`` included, naming ``where``.
    """
    if not _FLOAT.fullmatch(text):
        raise InputError(f"{where}: {field} must be a number, got {text!r} (plain ASCII digits, no digit separators)")
    return float(text)


def parse_int(text: str, where: str, field: str) -> int:
    """An integer written in ASCII digits (with an optional sign).

    Raises:
        InputError: anything else (``2.0``, ``٢``, ``1_000``), naming ``where`` and ``field``.
    """
    if not _INT.fullmatch(text):
        raise InputError(f"{where}: {field} must be an integer, got {text!r}")
    return int(text)

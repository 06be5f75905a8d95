"""Where local copies of test collections live, and what is expected inside that folder.

Machines without access to the dataset hosts can still use ``ir_datasets`` when the environment
variable ``LATEINT_DATA`` names a folder holding the original public files, laid out as follows::

    $LATEINT_DATA/
        msmarco-passage-trec-dl-2019/
            collection.tsv        passage_id<TAB>text (only the passages the runs retrieved)
            queries.tsv           query_id<TAB>text
            qrels.txt             TREC qrels
            runs/<name>.top100.trec
        beir-scifact/scifact.zip
        cranfield/cran.tar.gz

The folder is only ever read; anything derived from it is written under the cache folder
(``LATEINT_CACHE``, default ``~/.cache/lateint``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lateint.errors import MissingResourceError

#: Environment variable naming the folder of local collection files.
DATA_ENV = "LATEINT_DATA"
#: Environment variable naming a writable folder for derived files (default ``~/.cache/lateint``).
CACHE_ENV = "LATEINT_CACHE"

DL19_FOLDER = "msmarco-passage-trec-dl-2019"
DL19_RUN_SUFFIX = ".top100.trec"


@dataclass(frozen=True)
class OriginalFile:
    """One original file of a collection: where it sits in the local folder and where
    ``ir_datasets`` would have downloaded it, relative to its home.

    Attributes:
        share_path: path relative to ``$LATEINT_DATA``.
        home_path: path relative to the ``ir_datasets`` home.
    """

    share_path: str
    home_path: str


#: Built-in ``ir_datasets`` ids whose original downloads can be served from the local folder,
#: keyed by id prefix.
ORIGINAL_FILES: dict[str, OriginalFile] = {
    "beir/scifact": OriginalFile("beir-scifact/scifact.zip", "beir/scifact/source.zip"),
    "cranfield": OriginalFile("cranfield/cran.tar.gz", "cranfield/cran.tar.gz"),
}


def data_root() -> Path | None:
    """The folder named by ``LATEINT_DATA``, or ``None`` when the variable is unset or empty.

    Raises:
        MissingResourceError: the variable is set but names no folder.
    """
    value = os.environ.get(DATA_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise MissingResourceError(
            f"{DATA_ENV}={value!r} is not a folder; point it at a folder of collection files "
            f"(laid out like the one described in lateint.data.local_share) or unset it")
    return root


def cache_root() -> Path:
    """The writable folder for derived files: ``LATEINT_CACHE`` or ``~/.cache/lateint``."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "lateint"


def original_file_for(irds_id: str) -> OriginalFile | None:
    """The original file that serves a built-in ``ir_datasets`` id, if the local folder has one."""
    for prefix, original in ORIGINAL_FILES.items():
        if irds_id == prefix or irds_id.startswith(prefix + "/"):
            return original
    return None


def require_file(root: Path, relative: str, what: str) -> Path:
    """``root / relative``, or a :class:`MissingResourceError` saying what is missing."""
    path = root / relative
    if not path.is_file():
        raise MissingResourceError(
            f"{what} needs {path}, which does not exist; {DATA_ENV}={str(root)!r} must hold "
            f"{relative} (see lateint.data.local_share for the expected layout)")
    return path

"""Local test collections for the data tests.

``LATEINT_DATA`` names the folder of collection files; when it is unset the copy next to the
repository (``<repo>/../shared/irdata``) is used. ``ir_datasets`` gets a fresh home for the test run
when it has not been imported yet, so the docstores are built once per test run in a temporary
folder and nothing is written to the user's own home.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def irdata(tmp_path_factory) -> Path:
    """The folder of local collection files, with the environment pointing at it."""
    saved = {name: os.environ.get(name) for name in ("LATEINT_DATA", "LATEINT_CACHE", "IR_DATASETS_HOME")}
    root = Path(os.environ.get("LATEINT_DATA") or REPO.parent / "shared" / "irdata")
    if not (root / "msmarco-passage-trec-dl-2019").is_dir():
        pytest.fail(f"no local test collections at {root}: set LATEINT_DATA to the folder of collection files")
    os.environ["LATEINT_DATA"] = str(root)
    cache = tmp_path_factory.mktemp("lateint-cache")
    os.environ["LATEINT_CACHE"] = str(cache)
    if "ir_datasets" not in sys.modules:
        os.environ["IR_DATASETS_HOME"] = str(cache / "ir_datasets")
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

"""Missing local files or an impossible download give a MissingResourceError saying what to set."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lateint.data import load_dataset
from lateint.errors import MissingResourceError

DL19 = "msmarco-passage/trec-dl-2019/judged"


def test_lateint_data_naming_no_folder(irdata, monkeypatch, tmp_path):
    monkeypatch.setenv("LATEINT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(MissingResourceError, match="LATEINT_DATA=.*nowhere.*is not a folder"):
        load_dataset(DL19)


def test_lateint_data_folder_without_the_dl19_files(irdata, monkeypatch, tmp_path):
    monkeypatch.setenv("LATEINT_DATA", str(tmp_path))
    with pytest.raises(MissingResourceError, match="collection.tsv"):
        load_dataset(DL19)


def test_lateint_data_folder_without_runs(irdata, monkeypatch, tmp_path):
    folder = tmp_path / "msmarco-passage-trec-dl-2019"
    folder.mkdir()
    for name in ("collection.tsv", "queries.tsv", "qrels.txt"):
        os.symlink(irdata / "msmarco-passage-trec-dl-2019" / name, folder / name)
    monkeypatch.setenv("LATEINT_DATA", str(tmp_path))
    with pytest.raises(MissingResourceError, match="no .*trec run files"):
        load_dataset(DL19)


def test_subset_id_without_lateint_data_or_copies(tmp_path):
    # A fresh process whose ir_datasets home holds no copies, and no LATEINT_DATA.
    code = textwrap.dedent("""
        from lateint.data import load_dataset, SUBSET_JUDGED_ID
        from lateint.errors import MissingResourceError
        try:
            load_dataset(SUBSET_JUDGED_ID)
        except MissingResourceError as error:
            print("MISSING:", error)
    """)
    result = _run_isolated(code, tmp_path)
    assert "MISSING:" in result.stdout and "set LATEINT_DATA" in result.stdout, result.stdout + result.stderr


def test_failed_download_without_lateint_data(tmp_path):
    # No LATEINT_DATA and an empty ir_datasets home: ir_datasets must download cranfield, and the
    # proxy below makes every download fail at once, as on a machine without network access.
    code = textwrap.dedent("""
        from lateint.data import load_dataset
        from lateint.errors import MissingResourceError
        handle = load_dataset("cranfield")
        try:
            handle.queries()
        except MissingResourceError as error:
            print("MISSING:", error)
    """)
    result = _run_isolated(code, tmp_path, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
                           IR_DATASETS_DL_TIMEOUT="5")
    assert "MISSING:" in result.stdout, result.stdout + result.stderr[-2000:]
    assert "set LATEINT_DATA" in result.stdout


def _run_isolated(code: str, tmp_path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items()
           if key not in ("LATEINT_DATA", "LATEINT_CACHE", "IR_DATASETS_HOME", "NO_PROXY", "no_proxy")}
    env.update(IR_DATASETS_HOME=str(tmp_path / "irds-home"), LATEINT_CACHE=str(tmp_path / "cache"), **extra_env)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)

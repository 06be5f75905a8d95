"""Processes sharing one ``ir_datasets`` home (cache-build shards, ``torchrun`` ranks) copy the
local files and build the docstore one at a time, so none reads a store another is still writing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from filelock import FileLock

from lateint.data.irds_home import lock_file
from lateint.data.local_files import docstore_name

LOOKUP = textwrap.dedent("""
    import sys, time
    from lateint.data import load_dataset
    handle = load_dataset("msmarco-passage/trec-dl-2019/judged")
    ids = [line.split("\\t", 1)[0] for line in open(sys.argv[1], encoding="utf-8")]
    found = handle.doc_text(ids)
    print(len(ids), len(found), time.time())
""")


def lookup_all(irdata: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "LATEINT_DATA": str(irdata), "IR_DATASETS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    collection = irdata / "msmarco-passage-trec-dl-2019" / "collection.tsv"
    return subprocess.Popen([sys.executable, "-c", LOOKUP, str(collection)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def result(process: subprocess.Popen) -> tuple[int, int, float]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    wanted, found, finished = out.split()
    return int(wanted), int(found), float(finished)


def test_concurrent_processes_on_a_fresh_home_each_find_every_document(irdata, tmp_path):
    running = [lookup_all(irdata, tmp_path / "home") for _ in range(3)]
    for process in running:
        wanted, found, _ = result(process)
        assert wanted == found == 10852


def test_docstore_is_built_under_the_home_lock(irdata, tmp_path):
    home = tmp_path / "home"
    store = home / "lateint" / "msmarco-passage-dl19-subset" / docstore_name("collection.tsv")
    lock = FileLock(str(lock_file(f"store {store}", home)))
    lock_file(f"store {store}", home).parent.mkdir(parents=True)
    with lock:
        process = lookup_all(irdata, home)
        time.sleep(8)
        released = time.time()
        assert process.poll() is None, "the lookup finished while another process held the docstore's lock"
    wanted, found, finished = result(process)
    assert wanted == found == 10852 and finished > released


def test_a_home_that_cannot_be_written_needs_no_lock(tmp_path, monkeypatch):
    from lateint.data import irds_home

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(irds_home, "ir_datasets_home", lambda: home)
    home.chmod(0o500)  # read-only: a shared home whose stores were built beforehand
    try:
        if os.access(home, os.W_OK):  # root writes anywhere: make the lock folder impossible instead
            home.chmod(0o700)
            (home / "lateint").write_text("a file where the lock folder would go")
        with irds_home.home_lock("store x"):
            entered = True
    finally:
        home.chmod(0o700)
    assert entered and not (home / "lateint" / "locks").exists()

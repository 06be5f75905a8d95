"""Durable progress: a build killed with SIGKILL keeps everything up to its last commit, which
comes every ``commit_docs`` documents or ``commit_seconds`` seconds, whichever is first: far less
than a shard. A rerun resumes the open shard from that commit, and the result equals an
uninterrupted build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from lateint.cache import CacheReader, CacheWriter, FieldSpec

FIELDS = [FieldSpec("states", "fp16", 8), FieldSpec("input_ids", "raw-int32")]
META = {"fingerprint": "kill"}

# Writes one batch of 3 documents at a time and reports, after each, how many it has added. With a
# nonzero ``hold``, it waits once it has added that many, so that the kill finds it at a known count
# (otherwise it may write on between its report and the kill).
WORKER = """
import sys, time
import numpy as np
from lateint.cache import CacheWriter, FieldSpec
from tests_cache_docs import FIELDS, META, docs
path, commit_docs, commit_seconds, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
hold = int(sys.argv[5])
ids, arrays = docs()
writer = CacheWriter.open(path, FIELDS, META, shard_size=100_000, commit_docs=commit_docs,
                          commit_seconds=commit_seconds)
for start in range(len(writer), len(ids), 3):
    chunk = ids[start:start + 3]
    writer.add_batch(chunk, {name: [arrays[d][name] for d in chunk] for name in ("states", "input_ids")})
    print(len(writer), time.monotonic(), flush=True)
    if hold and len(writer) >= hold:
        time.sleep(3600)
    time.sleep(pause)
"""

DOCS = """
import numpy as np
from lateint.cache import FieldSpec
FIELDS = [FieldSpec("states", "fp16", 8), FieldSpec("input_ids", "raw-int32")]
META = {"fingerprint": "kill"}

def docs(n=100_000):
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 20, n)
    ids = [f"p{i}" for i in range(n)]
    return ids, {d: {"states": np.full((k, 8), i % 1000, np.float16), "input_ids": np.arange(k, dtype=np.int32) + i}
                 for i, (d, k) in enumerate(zip(ids, lengths))}
"""


def kill_after(tmp_path: Path, path: Path, docs_before_kill: int, commit_docs: int, commit_seconds: float,
               pause: float, *, hold: bool = False) -> list[tuple[int, float]]:
    """Run the worker until it reports ``docs_before_kill`` documents, SIGKILL it, and return its reports.

    ``hold``: the worker stops writing at that count, so the last report is exactly what it added."""
    (tmp_path / "worker.py").write_text(WORKER)
    (tmp_path / "tests_cache_docs.py").write_text(DOCS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", ""), os.getcwd()])}
    process = subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(path), str(commit_docs),
                                str(commit_seconds), str(pause), str(docs_before_kill if hold else 0)],
                               stdout=subprocess.PIPE, text=True, env=env)
    reports = []
    for line in process.stdout:
        count, stamp = line.split()
        reports.append((int(count), float(stamp)))
        if int(count) >= docs_before_kill:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return reports


def stored_after_kill(path: Path) -> int:
    writer = CacheWriter.open(path, FIELDS, META, shard_size=100_000)
    try:
        return len(writer)
    finally:
        writer.abort()


def test_kill_loses_at_most_the_documents_since_the_last_commit(tmp_path):
    path = tmp_path / "c"
    commit_docs = 10
    reports = kill_after(tmp_path, path, 200, commit_docs, 3600.0, 0.0, hold=True)
    added = reports[-1][0]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["shards"] == []  # no shard was ever sealed: only commits can have kept anything
    stored = stored_after_kill(path)
    lost = added - stored
    print(f"kill -9 after {added} documents: {stored} kept, {lost} lost (commit every {commit_docs})")
    assert 0 <= lost <= commit_docs and stored >= 190

    # The rerun resumes the open shard and completes the store; it equals an uninterrupted build.
    sys.path.insert(0, str(tmp_path))
    try:
        from tests_cache_docs import docs
    finally:
        sys.path.remove(str(tmp_path))
    ids, arrays = docs(400)
    with CacheWriter.open(path, FIELDS, META, shard_size=100_000, commit_docs=commit_docs) as writer:
        assert len(writer) == stored
        todo = writer.missing(ids)
        assert todo == ids[stored:]
        writer.add_batch(todo, {name: [arrays[d][name] for d in todo] for name in ("states", "input_ids")})
    reader = CacheReader.open(path)
    reader.verify()
    assert len(reader) == 400
    for name in ("states", "input_ids"):
        got = reader.get(ids, name)
        assert all(np.array_equal(g, arrays[d][name]) for g, d in zip(got, ids))


def test_kill_loses_at_most_the_last_commit_interval(tmp_path):
    path = tmp_path / "c"
    interval = 0.3
    reports = kill_after(tmp_path, path, 150, 1_000_000, interval, 0.01)  # never by count, only by time
    killed_at = reports[-1][1]
    stored = stored_after_kill(path)
    # Everything reported more than one interval (plus scheduling slack) before the kill was committed.
    committed_by_time = max((count for count, stamp in reports if stamp <= killed_at - interval - 0.5), default=0)
    print(f"kill -9 after {reports[-1][0]} documents: {stored} kept, {reports[-1][0] - stored} lost "
          f"(commit every {interval} s)")
    assert stored >= committed_by_time and stored > 0


def test_a_shard_sealed_but_never_listed_is_kept(tmp_path):
    """A kill between renaming a sealed shard into place and listing it in the manifest loses nothing."""
    path = tmp_path / "c"
    ids = [f"d{i}" for i in range(12)]
    arrays = {d: {"states": np.full((2, 8), i, np.float16), "input_ids": np.arange(2, dtype=np.int32)}
              for i, d in enumerate(ids)}
    writer = CacheWriter.open(path, FIELDS, META, shard_size=5)
    writer.add_batch(ids[:5], {n: [arrays[d][n] for d in ids[:5]] for n in ("states", "input_ids")})
    manifest_before_seal = (path / "manifest.json").read_bytes()
    writer.add_batch(ids[5:10], {n: [arrays[d][n] for d in ids[5:10]] for n in ("states", "input_ids")})
    writer.abort()
    (path / "manifest.json").write_bytes(manifest_before_seal)  # as if killed before the manifest update
    assert (path / "shards" / "000001").is_dir() and len(json.loads(manifest_before_seal)["shards"]) == 1
    with CacheWriter.open(path, FIELDS, META, shard_size=5) as writer:
        assert writer.missing(ids) == ids[10:]
        writer.add_batch(ids[10:], {n: [arrays[d][n] for d in ids[10:]] for n in ("states", "input_ids")})
    reader = CacheReader.open(path)
    reader.verify()
    assert sorted(reader.iter_ids()) == sorted(ids)

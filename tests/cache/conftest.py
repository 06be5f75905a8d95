"""Tiny synthetic collections for the cache tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lateint.cache import FieldSpec

DIM = 8


def fields(codec: str = "fp32") -> list[FieldSpec]:
    return [FieldSpec("states", codec, DIM), FieldSpec("input_ids", "raw-int32"),
            FieldSpec("pooled", "fp16", DIM, length=1)]


def make_docs(n: int, seed: int = 0, max_len: int = 12) -> dict[str, dict[str, np.ndarray]]:
    """``n`` docs with mixed id styles (numeric, text, unicode) and 0..max_len tokens."""
    rng = np.random.default_rng(seed)
    docs = {}
    for i in range(n):
        doc_id = [str(7_000_000 + i), f"doc-{i}", f"dóc/{i}#é"][i % 3]
        length = int(rng.integers(0, max_len + 1)) if i % 10 else max_len  # some empty, some longest
        docs[doc_id] = {
            "states": rng.standard_normal((length, DIM)).astype(np.float32),
            "input_ids": rng.integers(0, 30000, length).astype(np.int64),
            "pooled": rng.standard_normal((1, DIM)).astype(np.float32),
        }
    return docs


def add_all(writer, docs, ids=None, batch: int = 5) -> int:
    ids = list(docs) if ids is None else list(ids)
    added = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        added += writer.add_batch(chunk, {f: [docs[d][f] for d in chunk] for f in ("states", "input_ids", "pooled")})
    return added


def assert_store_equals(reader, docs, exact: bool = True) -> None:
    assert len(reader) == len(docs)
    assert sorted(reader.iter_ids()) == sorted(docs)
    ids = list(docs)
    for field in ("states", "input_ids"):
        got = reader.get(ids, field)
        for doc_id, value in zip(ids, got):
            want = docs[doc_id][field]
            assert value.shape == want.shape
            if exact:
                assert np.array_equal(value, want), (doc_id, field)
    pooled = reader.get(ids, "pooled")
    for doc_id, value in zip(ids, pooled):
        np.testing.assert_allclose(value, docs[doc_id]["pooled"], rtol=2**-10, atol=1e-6)


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above (test modules cannot import conftest under --import-mode=importlib)."""
    return SimpleNamespace(DIM=DIM, fields=fields, make_docs=make_docs, add_all=add_all,
                           assert_store_equals=assert_store_equals)

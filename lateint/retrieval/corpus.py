"""A dataset's documents as ``(doc_id, text)`` pairs, streamed, with the text a ranker or BM25 sees.

The text is ``ir_datasets``' ``default_text()`` where the record has one (title and body for BEIR
collections), else its ``text`` field, the same text :meth:`DatasetHandle.doc_text` gives.
"""

from __future__ import annotations

from collections.abc import Iterator

from lateint.data.datasets import DatasetHandle


def iter_documents(dataset: DatasetHandle) -> Iterator[tuple[str, str]]:
    """Every document of ``dataset`` in collection order, read lazily."""
    from lateint.data.datasets import _text_of

    dataset._require("docs")
    with dataset._reading("documents"):
        for doc in dataset.dataset.docs_iter():
            yield doc.doc_id, _text_of(doc)

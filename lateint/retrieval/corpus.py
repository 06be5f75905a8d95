"""A dataset's documents as ``(doc_id, text)`` pairs, streamed, with the text a ranker or BM25 sees.

The text is ``ir_datasets``' ``default_text()`` where the record has one (title and body for BEIR
collections), else its ``text`` field, the same text :meth:`DatasetHandle.doc_text` gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lateint.data.datasets import DatasetHandle
from lateint.tokenization import is_blank


def iter_documents(dataset: DatasetHandle) -> Iterator[tuple[str, str]]:
    """Every document of ``dataset`` in collection order, read lazily (:meth:`DatasetHandle.iter_docs`)."""
    return dataset.iter_docs()


def non_empty(docs: Iterable[tuple[str, str]], skipped: list[str]) -> Iterator[tuple[str, str]]:
    """``docs`` without the documents whose text is empty or blank, whose ids are appended to ``skipped``.

    A ranker cannot encode an empty text, and some collections hold a few (Cranfield: 2 of 1,400);
    leaving them out of a cache or a dense index is a choice the caller makes and reports.
    """
    for doc_id, text in docs:
        if is_blank(text):
            skipped.append(doc_id)
        else:
            yield doc_id, text

"""lateint inside PyTerrier pipelines (the optional extra ``lateint[pyterrier]``; PyTerrier 1.x, no Java).

* :class:`SplitReRanker` re-ranks a result frame (``qid, query, docno[, text]``) with a
  :class:`~lateint.SplitRanker`, from document text or, given a :class:`~lateint.DocCache`, by
  ``docno`` alone::

      pipeline = bm25 >> SplitReRanker(ranker, cache=DocCache.open("caches/minilm-L5"))
      pt.Experiment([bm25, pipeline], topics, qrels, eval_metrics=["ndcg_cut_10"])

* :class:`SplitIndexer` builds a :class:`~lateint.DocCache` from ``dataset.get_corpus_iter()``.
* :class:`TwinRetriever` is a first stage: exact dense top-k from an L = T twin cache (the same
  function ``lateint retrieve --method dense`` uses).

Scores, ranks and ordering follow PyTerrier's conventions (``pt.model.add_ranks``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lateint.errors import InputError, MissingResourceError
from lateint.reranking import rerank

try:
    import pandas as pd
    import pyterrier as pt
except ImportError:  # pragma: no cover - exercised only without the extra
    raise MissingResourceError(
        "lateint.pyterrier needs PyTerrier 1.x: pip install 'lateint[pyterrier]'") from None


def _require_columns(frame: pd.DataFrame, needed: Iterable[str], who: str, hint: str = "") -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"{who} needs the column(s) {missing} in its input, which has {list(frame.columns)}"
                         + (f"; {hint}" if hint else ""))


class SplitReRanker(pt.Transformer):
    """Re-rank each query's documents with a split ranker.

    Args:
        ranker: the :class:`~lateint.SplitRanker`.
        cache: a :class:`~lateint.DocCache` built for ``ranker``; documents are then looked up by
            ``docno`` and no ``text`` column is needed.
        batch_size: pairs (or cached documents) per forward pass.
        text_field: the column holding document text, without a cache.
        progress: show a progress bar over the queries.

    Input: ``qid, query, docno`` (and ``text_field`` without a cache); output: the same rows with
    ``score`` (the ranker's) and ``rank``, sorted by query and rank.
    """

    def __init__(self, ranker, cache=None, batch_size: int = 128, *, text_field: str = "text",
                 progress: bool = False):
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}")
        if cache is not None:
            cache.check(ranker)
        self.ranker = ranker
        self.cache = cache
        self.batch_size = batch_size
        self.text_field = text_field
        self.progress = progress

    def __repr__(self) -> str:
        return f"SplitReRanker({self.ranker!r}, cache={None if self.cache is None else str(self.cache.path)!r})"

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        needed = ["qid", "query", "docno"] + ([] if self.cache is not None else [self.text_field])
        _require_columns(inp, needed, "SplitReRanker",
                         "" if self.cache is not None else "add the text (e.g. pt.text.get_text) or pass cache=")
        out = inp.drop(columns=["score", "rank"], errors="ignore").copy()
        if len(out) == 0:
            out["score"] = pd.Series(dtype="float64")
            return pt.model.add_ranks(out)
        scores = pd.Series(0.0, index=out.index, dtype="float64")
        groups = out.groupby("qid", sort=False)
        if self.progress:
            from tqdm.auto import tqdm

            groups = tqdm(groups, desc="SplitReRanker", unit="query")
        for _, group in groups:
            queries = group["query"].unique()
            if len(queries) != 1:
                raise InputError(f"query {group['qid'].iloc[0]!r} has {len(queries)} different query texts")
            docnos = group["docno"].astype(str).tolist()
            if self.cache is not None:
                by_doc = rerank(self.ranker, str(queries[0]), docnos, self.cache, batch_size=self.batch_size)
                values = [by_doc[d] for d in docnos]
            else:
                texts = group[self.text_field].astype(str).tolist()
                values = self.ranker.score([str(queries[0])] * len(texts), texts, batch_size=self.batch_size).tolist()
            scores.loc[group.index] = values
        out["score"] = scores
        return _ranked(out)


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Ranks by score, ties by docno (as lateint's runs break them), sorted by query and rank."""
    frame = frame.sort_values(["qid", "score", "docno"], ascending=[True, False, True], kind="stable")
    return pt.model.add_ranks(frame).sort_values(["qid", "rank"], kind="stable").reset_index(drop=True)


class SplitIndexer(pt.Indexer):
    """Build a :class:`~lateint.DocCache` for ``ranker`` from PyTerrier's document dicts.

    ``SplitIndexer(ranker, "caches/x").index(dataset.get_corpus_iter())`` stores each document's
    representation at the ranker's split and returns the opened cache. An interrupted build
    resumes when run again (see :meth:`DocCache.build`).

    Args:
        ranker: the :class:`~lateint.SplitRanker`.
        path: the cache folder.
        storage: ``fp32``, ``fp16`` or ``int8``.
        batch_size: documents per forward pass.
        text_field: the document dict key holding the text (default ``text``).
        progress: show a progress bar.
        skip_empty: leave out documents whose text is empty or blank (a ranker cannot encode
            them) and list their docnos in :attr:`skipped`; without it such a document stops
            the build with an error naming it.
    """

    def __init__(self, ranker, path: str | Path, storage: str = "fp16", batch_size: int = 64, *,
                 text_field: str = "text", progress: bool = True, skip_empty: bool = False):
        self.ranker = ranker
        self.path = Path(path)
        self.storage = storage
        self.batch_size = batch_size
        self.text_field = text_field
        self.progress = progress
        self.skip_empty = skip_empty
        #: the docnos the last :meth:`index` left out for an empty text (with ``skip_empty``)
        self.skipped: list[str] = []

    def index(self, iter, **kwargs):  # noqa: A002 - PyTerrier's name for the argument
        from lateint.cache.doc_cache import DocCache

        def documents():
            for i, doc in enumerate(iter):
                if "docno" not in doc or self.text_field not in doc:
                    raise InputError(f"document {i} has keys {sorted(doc)}; SplitIndexer needs 'docno' and "
                                     f"{self.text_field!r}")
                yield str(doc["docno"]), str(doc[self.text_field])

        from lateint.retrieval import non_empty

        self.skipped = []
        docs = non_empty(documents(), self.skipped) if self.skip_empty else documents()
        return DocCache.build(self.ranker, docs, self.path, storage=self.storage,
                              batch_size=self.batch_size, progress=self.progress)


class TwinRetriever(pt.Transformer):
    """First-stage retrieval: exact dense top-k from an L = T twin cache.

    Input: ``qid, query``; output: ``qid, query, docno, score, rank`` with ``num_results`` documents
    per query, score descending, ties by ``docno``.

    Raises:
        ConfigError: the ranker is not a cosine or dot twin at L = T, or the cache is not its twin cache.
    """

    def __init__(self, ranker, cache, num_results: int = 100, batch_size: int = 128):
        from lateint.retrieval.dense import check_dense_ranker

        check_dense_ranker(ranker, cache)
        self.ranker = ranker
        self.cache = cache
        self.num_results = num_results
        self.batch_size = batch_size

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        from lateint.retrieval.dense import dense_retrieve

        _require_columns(inp, ["qid", "query"], "TwinRetriever")
        topics = inp[["qid", "query"]].drop_duplicates("qid")
        queries = dict(zip(topics["qid"].astype(str), topics["query"].astype(str)))
        run = dense_retrieve(self.ranker, self.cache, queries, self.num_results, batch_size=self.batch_size)
        rows = [(qid, queries[qid], docno, score) for qid in queries for docno, score in run[qid]]
        return _ranked(pd.DataFrame(rows, columns=["qid", "query", "docno", "score"]))


__all__ = ["SplitIndexer", "SplitReRanker", "TwinRetriever"]

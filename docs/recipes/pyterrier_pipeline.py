"""A PyTerrier pipeline: BM25 candidates, re-ranked by a lateint twin, compared in pt.Experiment.

pip install "lateint[pyterrier]"   (PyTerrier 1.x; no Java needed for this pipeline)
"""

import os

import pandas as pd
import pyterrier as pt

from lateint import SplitRanker
from lateint.data import load_dataset
from lateint.pyterrier import SplitIndexer, SplitReRanker, TwinRetriever

MODEL = os.environ.get("MODEL", "sentence-transformers/all-MiniLM-L6-v2")
DATASET = os.environ.get("DATASET", "msmarco-passage/trec-dl-2019/judged")
SPLIT = int(os.environ.get("SPLIT", "6"))  # T: the twin (bi-encoder) end of the dial
DEPTH = int(os.environ.get("DEPTH", "100"))
OUT = os.environ.get("OUT", "recipes-out/pyterrier")

ds = load_dataset(DATASET)
topics = pd.DataFrame(list(ds.queries().items()), columns=["qid", "query"])
qrels = pd.DataFrame([(q, d, g) for q, judged in ds.qrels().items() for d, g in judged.items()],
                     columns=["qid", "docno", "label"])
# The dataset's BM25 run as a PyTerrier transformer (any PyTerrier retriever works here).
candidates = ds.candidates("bm25", depth=DEPTH)
bm25 = pt.Transformer.from_df(pd.DataFrame(
    [(qid, doc, score) for qid, ranked in candidates.items() for doc, score in ranked],
    columns=["qid", "docno", "score"]))

twin = SplitRanker.from_pretrained(MODEL, split=SPLIT, head="twin", pooling="mean", crossing="cosine")
# Encode the candidates once into a document cache; then no text is needed at query time.
docs = sorted({doc for ranked in candidates.values() for doc, _ in ranked})
corpus = ({"docno": doc, "text": text} for doc, text in ds.doc_text(docs).items())
cache = SplitIndexer(twin, f"{OUT}/twin-cache").index(corpus)

table = pt.Experiment(
    [bm25, bm25 >> SplitReRanker(twin, cache=cache), TwinRetriever(twin, cache, num_results=DEPTH)],
    topics, qrels, eval_metrics=["ndcg_cut_10", "recip_rank"],
    names=["bm25", "bm25 >> twin", "twin over the candidates' cache"])
print(table.to_string(index=False))
os.makedirs(OUT, exist_ok=True)
table.to_csv(f"{OUT}/experiment.csv", index=False)

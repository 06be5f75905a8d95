#!/usr/bin/env bash
# A BEIR folder on disk (corpus.jsonl, queries.jsonl, qrels/test.tsv) as a dataset: BM25 first
# stage, a re-ranker over it, and the evaluation, all with --dataset DIR/SPLIT.
set -euo pipefail
MODEL=${MODEL:-sentence-transformers/all-MiniLM-L6-v2}
BEIR_DIR=${BEIR_DIR:-scifact}         # e.g. unzipped from the BEIR site: scifact/corpus.jsonl ...
SPLIT=${SPLIT:-6}                     # T = 6: the twin
DEPTH=${DEPTH:-100}
OUT=${OUT:-recipes-out/beir-folder}

mkdir -p "$OUT"
lateint retrieve --dataset "$BEIR_DIR/test" --method bm25 --depth "$DEPTH" --out "$OUT/bm25.trec"
lateint rerank --model "$MODEL" --split "$SPLIT" --head twin --pooling mean --crossing cosine \
  --dataset "$BEIR_DIR/test" --first-stage "$OUT/bm25.trec" --depth "$DEPTH" --out "$OUT/twin.trec"
lateint evaluate --dataset "$BEIR_DIR/test" "bm25=$OUT/bm25.trec" "twin=$OUT/twin.trec" --baseline bm25

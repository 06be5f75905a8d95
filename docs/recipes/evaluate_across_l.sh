#!/usr/bin/env bash
# A hub cross-encoder at several splits L, without retraining, re-ranking the BM25 top-100 of
# TREC DL 2019, then one table with significance against BM25.
set -euo pipefail
MODEL=${MODEL:-cross-encoder/ms-marco-MiniLM-L6-v2}
DATASET=${DATASET:-msmarco-passage/trec-dl-2019/judged}
SPLITS=${SPLITS:-"0 2 4 5"}          # the cls head needs L < T (T = 6 here)
DEPTH=${DEPTH:-100}
OUT=${OUT:-recipes-out/evaluate-across-l}

mkdir -p "$OUT"
runs=()
for L in $SPLITS; do
  lateint rerank --model "$MODEL" --split "$L" --head cls --dataset "$DATASET" \
    --first-stage bm25 --depth "$DEPTH" --out "$OUT/L$L.trec"
  runs+=("L$L=$OUT/L$L.trec")
done
lateint evaluate --dataset "$DATASET" bm25 "${runs[@]}" --baseline bm25 --out "$OUT/table.md"
cat "$OUT/table.md"

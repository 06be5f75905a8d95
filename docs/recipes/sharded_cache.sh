#!/usr/bin/env bash
# Cache the layer-L states of a collection in two shares (two machines, or two runs on one),
# merge them, check them, and re-rank from the merged cache.
set -euo pipefail
MODEL=${MODEL:-cross-encoder/ms-marco-MiniLM-L6-v2}
DATASET=${DATASET:-msmarco-passage/trec-dl-2019/judged}
SPLIT=${SPLIT:-5}
DEPTH=${DEPTH:-100}
OUT=${OUT:-recipes-out/sharded-cache}

common=(--model "$MODEL" --split "$SPLIT" --head cls --storage fp16)
# Each share stores the documents whose id hashes to it; run them anywhere, in any order.
# Leave out --first-stage to cache the whole collection.
for I in 0 1; do
  lateint cache build "${common[@]}" --dataset "$DATASET" --first-stage bm25 --depth "$DEPTH" \
    --num-shards 2 --shard-index "$I" --out "$OUT/part$I"
done
lateint cache merge --out "$OUT/cache" "$OUT/part0" "$OUT/part1"
lateint cache verify "$OUT/cache"
lateint cache info "$OUT/cache"

lateint rerank "${common[@]}" --dataset "$DATASET" --first-stage bm25 --depth "$DEPTH" \
  --cache "$OUT/cache" --out "$OUT/L$SPLIT.trec"
lateint evaluate --dataset "$DATASET" bm25 "L$SPLIT=$OUT/L$SPLIT.trec" --baseline bm25

#!/usr/bin/env bash
# Train from a Hugging Face dataset: a file of (query, positive, negative) triplets in
# sentence-transformers' column convention, streamed; then re-rank TREC DL 2019 with the result.
set -euo pipefail
MODEL=${MODEL:-sentence-transformers/all-MiniLM-L6-v2}
# Anything datasets.load_dataset accepts: a local .jsonl/.parquet/.csv file or folder, or a hub id.
# Each line of a JSONL file: {"query": "...", "positive": "...", "negative": "..."}
HF_DATASET=${HF_DATASET:-triplets.jsonl}
SPLIT=${SPLIT:-3}
STEPS=${STEPS:-1000}
DEPTH=${DEPTH:-100}
DOC_LENGTH=${DOC_LENGTH:-224}    # tokens kept per document
OUT=${OUT:-recipes-out/hf-dataset}

mkdir -p "$OUT"
cat > "$OUT/train.toml" <<TOML
model = "$MODEL"
split = $SPLIT
head = "cls"
steps = $STEPS
batch_size = 8
output = "$OUT/model"

[data]
hf_dataset = "$HF_DATASET"
hf_split = "train"
negatives = 1
max_doc_length = $DOC_LENGTH
TOML
lateint train "$OUT/train.toml"

lateint rerank --model "$OUT/model/final" --dataset msmarco-passage/trec-dl-2019/judged \
  --first-stage bm25 --depth "$DEPTH" --out "$OUT/trained.trec"
lateint evaluate --dataset msmarco-passage/trec-dl-2019/judged bm25 "trained=$OUT/trained.trec" --baseline bm25

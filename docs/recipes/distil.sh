#!/usr/bin/env bash
# Distil a cross-encoder into a 3-layer student (every other layer of the teacher) at split 2,
# with Margin-MSE on the teacher's scores beside listwise CE on the labels; k-fold
# cross-validation over the TREC DL 2019 queries, so every query is tested by a model that never
# trained on it.
set -euo pipefail
TEACHER=${TEACHER:-cross-encoder/ms-marco-MiniLM-L6-v2}
SPLIT=${SPLIT:-2}
STEPS=${STEPS:-500}
FOLDS=${FOLDS:-5}
DEPTH=${DEPTH:-100}
DOC_LENGTH=${DOC_LENGTH:-224}    # tokens kept per document
OUT=${OUT:-recipes-out/distil}

mkdir -p "$OUT"
cat > "$OUT/student.toml" <<TOML
model = "$TEACHER"
student_layers = "every_other"   # the student keeps the teacher's layers 0, 2, 4
split = $SPLIT
head = "cls"
steps = $STEPS
batch_size = 8
output = "$OUT/student"

[data]
dataset = "msmarco-passage/trec-dl-2019/judged"
run = "bm25"
depth = $DEPTH
negatives = 7
max_doc_length = $DOC_LENGTH
folds = $FOLDS

[loss]
hard = "listwise_ce"
soft = "margin_mse"

[distill]
teacher = "$TEACHER"
teacher_split = 0                # the teacher runs as the full cross-encoder
TOML
lateint crossval "$OUT/student.toml" --out "$OUT/crossval" --depth "$DEPTH"
cat "$OUT/crossval/evaluation.md"

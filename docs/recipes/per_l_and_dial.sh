#!/usr/bin/env bash
# Fine-tune one model per split L and one dial model (the split drawn per batch, one checkpoint
# for every L) on SciFact's training queries, then test them all on its test queries in one sweep.
set -euo pipefail
MODEL=${MODEL:-sentence-transformers/all-MiniLM-L6-v2}
SPLITS=${SPLITS:-"0 2 4 5 6"}
STEPS=${STEPS:-1000}           # upper bound; early stopping on dev nDCG@10 usually ends sooner
EVERY=${EVERY:-100}            # validate every EVERY steps
MAX_QUERIES=${MAX_QUERIES:-0}  # 0: every training query
DEPTH=${DEPTH:-100}            # candidates re-ranked per dev and test query
TEST_QUERIES=${TEST_QUERIES:-}   # empty: every test query; N: a quick look at the first N
DOC_LENGTH=${DOC_LENGTH:-256}    # tokens kept per document
OUT=${OUT:-recipes-out/per-l-and-dial}

mkdir -p "$OUT"
# SciFact has no first stage of its own: BM25 top-100 for the training and the test queries.
lateint retrieve --dataset beir/scifact/train --method bm25 --depth 100 --out "$OUT/bm25-train.trec"
lateint retrieve --dataset beir/scifact/test --method bm25 --depth "$DEPTH" --out "$OUT/bm25-test.trec"

write_config() {  # NAME SPLIT [EXTRA TOML]
  cat > "$OUT/$1.toml" <<TOML
model = "$MODEL"
split = $2
head = "twin"
head_options = { pooling = "mean", crossing = "cosine" }
steps = $STEPS
batch_size = 4
output = "$OUT/$1"

[optim]
lr = 3e-5
head_lr = 1e-3

[data]
dataset = "beir/scifact/train"
run = "$OUT/bm25-train.trec"
negatives = 7
max_doc_length = $DOC_LENGTH
max_queries = $MAX_QUERIES

[validation]
every = $EVERY
holdout = 0.1
depth = $DEPTH
patience = 2
${3:-}
TOML
}

models=""
for L in $SPLITS; do
  write_config "per-L-$L" "$L"
  lateint train "$OUT/per-L-$L.toml"
  models+="
[[models]]
path = \"$OUT/per-L-$L/best\"
name = \"per-L-$L\"
trained = true
group = \"per-L\"
"
done

# The dial: the split drawn per batch from SPLITS; dev nDCG@10 is the mean over those splits.
splits_list="[$(echo $SPLITS | tr ' ' ',')]"
write_config dial "$(echo $SPLITS | awk '{print $NF}')" "splits = $splits_list

[dial]
enabled = true
splits = $splits_list"
lateint train "$OUT/dial.toml"

cat > "$OUT/sweep.toml" <<TOML
[sweep]
name = "scifact-per-l-and-dial"
$models
[[models]]
path = "$OUT/dial/best"
name = "dial"
trained = true
splits = $splits_list
group = "dial"

[data]
dataset = "beir/scifact/test"
first_stage = "$OUT/bm25-test.trec"
depth = $DEPTH
TOML
lateint sweep "$OUT/sweep.toml" --out "$OUT/sweep" ${TEST_QUERIES:+--max-queries "$TEST_QUERIES"}

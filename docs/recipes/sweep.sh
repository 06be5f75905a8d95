#!/usr/bin/env bash
# A sweep over interaction depth: a hub cross-encoder at several splits, its cache in fp16 and
# int8, re-ranking the BM25 top-100 of TREC DL 2019; then the points on the Pareto front.
set -euo pipefail
MODEL=${MODEL:-cross-encoder/ms-marco-MiniLM-L6-v2}
DATASET=${DATASET:-msmarco-passage/trec-dl-2019/judged}
SPLITS=${SPLITS:-"[0, 2, 4, 5]"}
DEPTH=${DEPTH:-100}
OUT=${OUT:-recipes-out/sweep}

mkdir -p "$OUT"
cat > "$OUT/sweep.toml" <<TOML
[sweep]
name = "minilm-cross-encoder"
seed = 0

[[models]]
path = "$MODEL"
name = "MiniLM-L6-CE"

[points]
splits = $SPLITS
storage = ["fp16", "int8"]

[[points.heads]]
head = "cls"

[data]
dataset = "$DATASET"
first_stage = "bm25"
depth = $DEPTH

[evaluation]
metrics = ["nDCG@10", "MRR@10", "MAP", "R@100"]
correction = "holm"
TOML
# Resumable: rerun the same command after an interruption and finished points are skipped.
lateint sweep "$OUT/sweep.toml" --out "$OUT/result"
# results.json, table.md (printed above) and pareto.png are in $OUT/result.

# The Pareto front in numbers: the points no other point beats on both nDCG@10 and latency.
python - "$OUT/result/results.json" <<'PY'
import json, sys
points = json.load(open(sys.argv[1]))["points"]
cost = lambda p: (p["mean_latency_ms"], -p["metrics"]["nDCG@10"])
front = [p for p in points
         if not any(cost(q)[0] <= cost(p)[0] and cost(q)[1] <= cost(p)[1] and cost(q) != cost(p) for q in points)]
print("Pareto front (nDCG@10 against latency):")
for p in sorted(front, key=lambda p: p["mean_latency_ms"]):
    print(f"  {p['point']}: nDCG@10 {p['metrics']['nDCG@10']:.4f}, {p['mean_latency_ms']:.1f} ms/query, "
          f"{p['cache_bytes_per_doc']:,} bytes/doc")
PY

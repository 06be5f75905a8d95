"""How much of the layer-L states does each token's static embedding already predict?

SDR's premise for the side information of :class:`lateint.cache.compression.StateCompressor`: the
layer-L states are the embedding layer's output plus what the layers added, so the static
embedding (recomputable at query time from the token id) predicts much of them and the code need
carry only the rest. Measured on all-MiniLM-L6-v2 at L = 3 over DL19 passages: the share of the
states' variance a least-squares linear map from the static embedding explains on held-out tokens,
and what the top-k principal components leave unexplained with and without that map.

Writes ``benchmarks/results/side_information.json``.
Usage: ``python benchmarks/side_information_probe.py [--docs 600] [--split 3]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from local_data import REPO as ROOT  # noqa: E402  (sets the data environment first)

from lateint import SplitRanker  # noqa: E402
from lateint.cache.compression import layer_states  # noqa: E402
from lateint.checkpoints import DEFAULT_MODEL, resolve  # noqa: E402
from lateint.data import load_dataset  # noqa: E402

DATASET = "msmarco-passage/trec-dl-2019/judged"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=600)
    p.add_argument("--split", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "side_information.json")
    args = p.parse_args()
    torch.manual_seed(0)
    ds = load_dataset(DATASET)
    ids = sorted(d.doc_id for d in ds.dataset.docs_iter())[: args.docs]
    texts = ds.doc_text(ids)
    ranker = SplitRanker.from_pretrained(resolve(DEFAULT_MODEL), split=args.split, head="twin", max_doc_length=224)
    ranker.eval()
    states, static = layer_states(ranker, ranker.doc_sides([texts[i] for i in ids]), static=True)
    H, E = torch.cat(states).double(), torch.cat(static).double()
    fit = int(0.8 * len(H))  # tokens of the first 80% of the passages fit, the rest is held out
    X = torch.cat([E, torch.ones(len(E), 1, dtype=E.dtype)], dim=1)
    W = torch.linalg.lstsq(X[:fit], H[:fit]).solution
    residual = H - X @ W
    centred = H[fit:] - H[:fit].mean(0)
    explained = 1 - float(residual[fit:].pow(2).sum() / centred.pow(2).sum())
    # Principal components fitted on the fitting tokens, measured on the held-out ones.
    def left_after(Y: torch.Tensor, k: int) -> float:
        mean = Y[:fit].mean(0)
        basis = torch.linalg.svd(Y[:fit] - mean, full_matrices=False).Vh[:k]
        rest = (Y[fit:] - mean) - (Y[fit:] - mean) @ basis.T @ basis
        return float(rest.pow(2).sum() / centred.pow(2).sum())

    result = {"model": DEFAULT_MODEL, "split": args.split, "dataset": DATASET, "passages": len(ids),
              "tokens": len(H), "held_out_tokens": len(H) - fit,
              "linear_map_explained_variance": round(explained, 4),
              "unexplained_with_top_k_components": {
                  str(k): {"states alone": round(left_after(H, k), 4),
                           "after the linear map": round(left_after(residual, k), 4)} for k in (16, 32, 64, 128)}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Measure the maximum score differences behind the three equivalence invariants.

1. efficient split vs reference path, every split, layout and head (all-MiniLM-L6-v2);
2. L = 0 cross-encoder vs ``transformers`` and sentence-transformers' ``CrossEncoder``;
3. L = T twin (mean, cosine) vs sentence-transformers.

Writes ``benchmarks/results/equivalence.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from lateint import SplitRanker
from lateint.checkpoints import DEFAULT_MODEL, resolve
from lateint.config import LAYOUTS
from lateint.examples import example_pairs

HEADS = [("cls", {}), ("twin", {"pooling": "mean", "crossing": "cosine"}), ("twin", {"pooling": "weighted", "crossing": "residual"}),
         ("maxsim", {}), ("dipair", {})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/equivalence.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    queries, docs, _ = example_pairs()
    model = resolve(DEFAULT_MODEL)

    split_rows = []
    for head, options in HEADS:
        for split in range(7):
            if head == "cls" and split == 6:
                continue
            for layout in LAYOUTS:
                r = SplitRanker.from_pretrained(model, split=split, head=head, layout=layout, max_doc_length=128, seed=args.seed, **options)
                fast, ref = r.score(queries, docs), r.score(queries, docs, reference=True)
                split_rows.append({"head": head, **options, "split": split, "layout": layout,
                                   "max_abs_diff": (fast - ref).abs().max().item(), "max_abs_score": ref.abs().max().item()})
    worst = max(split_rows, key=lambda r: r["max_abs_diff"])

    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(1234)
        ce_model = AutoModelForSequenceClassification.from_pretrained(str(model), num_labels=1).eval()
        with torch.no_grad():
            ce_model.classifier.weight.normal_(0, 0.5)
        ce_model.save_pretrained(tmp)
        tok = AutoTokenizer.from_pretrained(str(model))
        tok.save_pretrained(tmp)
        with torch.inference_mode():
            hf = ce_model(**tok(queries, docs, padding=True, return_tensors="pt")).logits[:, 0]
        st_ce = torch.as_tensor(CrossEncoder(tmp, activation_fn=torch.nn.Identity()).predict(list(zip(queries, docs))))
        ours = SplitRanker.from_pretrained(tmp, split=0).score(queries, docs)
        ours.numpy()
        saved = Path(tmp) / "resaved"
        SplitRanker.from_pretrained(tmp, split=0).save_pretrained(saved)
        with torch.inference_mode():
            reloaded = AutoModelForSequenceClassification.from_pretrained(str(saved)).eval()(**tok(queries, docs, padding=True, return_tensors="pt")).logits[:, 0]
    cross = {"vs_transformers": (ours - hf).abs().max().item(), "vs_sentence_transformers_CrossEncoder": (ours - st_ce).abs().max().item(),
             "saved_folder_in_transformers": (ours - reloaded).abs().max().item(), "score_range": [ours.min().item(), ours.max().item()]}

    st = SentenceTransformer(str(model), device="cpu")
    q, d = st.encode(queries, convert_to_tensor=True), st.encode(docs, convert_to_tensor=True)
    twin = SplitRanker.from_pretrained(model, split=6, head="twin", pooling="mean", crossing="cosine")
    ours_t = twin.score(queries, docs)
    with torch.inference_mode():
        tq = twin.represent_queries(twin.query_sides(queries)).values
        td = twin.represent_docs(twin.doc_sides(docs)).values
    twin_res = {"similarity_vs_sentence_transformers": (ours_t - torch.nn.functional.cosine_similarity(q, d)).abs().max().item(),
                "query_embedding_vs_sentence_transformers": (tq - q).abs().max().item(),
                "doc_embedding_vs_sentence_transformers": (td - d).abs().max().item()}

    result = {"model": DEFAULT_MODEL, "pairs": len(queries), "seed": args.seed, "torch": torch.__version__,
              "machine": platform.machine(), "split_vs_reference": {"configurations": len(split_rows), "max_abs_diff": worst["max_abs_diff"],
                                                                      "worst": worst, "rows": split_rows},
              "cross_encoder_l0": cross, "twin_lT": twin_res}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"1. split vs reference: {len(split_rows)} configurations, max |diff| = {worst['max_abs_diff']:.3g} "
          f"(worst: head={worst['head']} split={worst['split']} layout={worst['layout']})")
    print("2. L=0 cross-encoder: " + ", ".join(f"{k} {v:.3g}" for k, v in cross.items() if k != "score_range"))
    print("3. L=T twin: " + ", ".join(f"{k} {v:.3g}" for k, v in twin_res.items()))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

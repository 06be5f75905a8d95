"""Re-ranking latency of the other encoder families: randomly initialised models with the real base
configurations of distilbert-base-uncased, deberta-v3-base and ModernBERT-base, at L = 0, T/2,
T - 1 (with cached keys and values) and T, beside ``transformers``' own forward of the same model
on the same pairs, and the FLOP bound of each row.

The configurations are written out from the published hyper-parameters (nothing is downloaded);
the vocabulary is all-MiniLM-L6-v2's WordPiece one (30,522 entries, DistilBERT's own size), so
all three read the same tokens. Run through ``python benchmarks/rerank_latency.py --families``
(adds these rows to its tables) or on its own: ``python benchmarks/family_latency.py [--tiny]``
(``--tiny``: 2-layer, 32-wide models and one query, to check that the code runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rerank_latency as rl  # noqa: E402  (sets the data environment first)

from lateint import SplitRanker  # noqa: E402

#: The published base configurations (hidden, layers, heads, feed-forward width, positions, family options).
BASE_CONFIGS = {
    "distilbert-base-uncased": ("distilbert", dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                                                   max_position_embeddings=512, activation="gelu")),
    "deberta-v3-base": ("deberta-v2", dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                           intermediate_size=3072, max_position_embeddings=512,
                                           relative_attention=True, position_buckets=256, max_relative_positions=-1,
                                           pos_att_type=["p2c", "c2p"], position_biased_input=False,
                                           type_vocab_size=0, norm_rel_ebd="layer_norm", share_att_key=True,
                                           hidden_act="gelu", layer_norm_eps=1e-7)),
    "ModernBERT-base": ("modernbert", dict(hidden_size=768, num_hidden_layers=22, num_attention_heads=12,
                                           intermediate_size=1152, max_position_embeddings=8192, local_attention=128,
                                           global_attn_every_n_layers=3, global_rope_theta=160000.0,
                                           local_rope_theta=10000.0, norm_eps=1e-5, classifier_pooling="mean")),
}
TINY = {"distilbert": dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64),
        "deberta-v2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
        "modernbert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                           local_attention=16, global_attn_every_n_layers=2)}


def make_family_model(folder: Path, name: str, minilm: Path, seed: int, tiny: bool = False) -> Path:
    """A one-label cross-encoder of ``name``'s configuration with random (seeded) weights."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    model_type, options = BASE_CONFIGS[name]
    options = {**options, **(TINY[model_type] if tiny else {})}
    tok = AutoTokenizer.from_pretrained(str(minilm))
    ids = dict(pad_token_id=tok.pad_token_id)
    if model_type == "modernbert":
        ids.update(cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id, bos_token_id=tok.cls_token_id,
                   eos_token_id=tok.sep_token_id)
    cfg = AutoConfig.for_model(model_type, vocab_size=tok.vocab_size, num_labels=1, **ids, **options)
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def transformers_forward_ms(path: Path, data, qids: Sequence[str], repeats: int, batch_size: int = 128) -> float:
    """Mean per-query time of ``AutoModelForSequenceClassification`` (its default attention) on each
    query's BM25 top-100 pairs, packed by its tokenizer, batches sorted by length as lateint's."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    times = []
    for q in qids:
        query, docs = data.queries[q], [data.texts[d] for d in data.runs["bm25"][q]]
        enc = tok([query] * len(docs), docs, truncation="only_second", max_length=rl.MAX_Q + rl.MAX_D)
        order = sorted(range(len(docs)), key=lambda i: len(enc["input_ids"][i]))
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            with torch.inference_mode():
                for b in range(0, len(order), batch_size):
                    rows = order[b : b + batch_size]
                    batch = tok.pad({k: [enc[k][i] for i in rows] for k in enc}, return_tensors="pt")
                    # None of these families reads token types (DeBERTa-v3 has no type embeddings).
                    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return statistics.mean(times) * 1e3


def family_rows(data, s, tmp: Path, peak: float, minilm: Path, tiny: bool = False) -> tuple[list, dict]:
    """Rows at L = 0, T/2, T - 1 (fp16 states and kv) and T for each family, and the
    ``transformers`` forward time of each model on the same pairs."""
    rows, info = [], {}
    lengths = dict(max_query_length=rl.MAX_Q, max_doc_length=rl.MAX_D)
    qids = rl.pick_queries(data, 1 if tiny else s.bert_queries)
    for name in BASE_CONFIGS:
        path = make_family_model(tmp / name, name, minilm, s.seed, tiny)
        cls_ranker = SplitRanker.from_pretrained(path, split=0, **lengths)
        T = cls_ranker.num_layers
        twin = SplitRanker.from_pretrained(path, split=T, head="twin", pooling="mean", crossing="cosine", **lengths)
        rows += rl.split_sweep(name + "-random", cls_ranker, twin, data, qids, qids, sorted({0, T // 2, T - 1, T}),
                               lambda L: ("fp16",), (T - 1,), tmp, s, peak)
        ms = transformers_forward_ms(path, data, qids, s.repeats)
        l0 = next(r.mean_ms for r in rows if r.model == name + "-random" and r.L == 0)
        info[name] = {"T": T, "transformers_forward_ms": ms, "lateint_L0_ms": l0, "L0_over_transformers": l0 / ms,
                      "config": BASE_CONFIGS[name][1] if not tiny else {**BASE_CONFIGS[name][1], **TINY[BASE_CONFIGS[name][0]]}}
        rl.log(f"{name}: transformers forward {ms:.1f} ms/query, lateint L=0 {l0:.1f} ms/query ({l0 / ms:.2f}x)")
    return rows, info


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="2-layer, 32-wide models and one query (checks the code runs)")
    parser.add_argument("--out", type=Path, default=rl.REPO / "benchmarks" / "results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    s = rl.make_settings(True, args.seed, args.threads) if args.tiny else rl.make_settings(False, args.seed, args.threads)
    if args.tiny:
        s.repeats = 1
    torch.set_num_threads(s.threads)
    rl._TMP_ROOT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="family-latency-", dir=rl._TMP_ROOT))
    peak = max(rl.matmul_peak(repeats=3 if args.tiny else 20), rl.linear_peak(repeats=3 if args.tiny else 20))
    data = rl.load_data()
    rows, info = family_rows(data, s, tmp, peak, rl.resolve(rl.MINILM), tiny=args.tiny)
    result = {"meta": {"seed": s.seed, "tiny": args.tiny, "matmul_peak_gflops": peak / 1e9}, "rows": [r.__dict__ for r in rows],
              "families": info}
    md = rl.row_table(rows)
    if not args.tiny:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "family_latency.json").write_text(json.dumps(result, indent=2, default=str))
        (args.out / "family_latency.md").write_text(md)
    print(md)
    print(json.dumps(info, indent=2, default=str))


if __name__ == "__main__":
    main()

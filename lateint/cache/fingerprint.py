"""The fingerprint of everything that determines a ranker's cached document representations.

Two rankers with the same fingerprint store bit-identical document representations: the hash
covers the tokenizer, the embedding and lower-layer weights (plus the first joint layer's key and
value projections when those are cached, and the head when it makes the representation), the
split, layout, maximum document length, the head settings that shape the representation, the
storage codec and the compressor's weights. Weights that do not touch the cache (upper layers, a
``cls`` head) are left out, so fine-tuning those keeps a cache valid.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 1


def _hash_module(h: "hashlib._Hash", module: nn.Module, prefix: str) -> None:
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{prefix}{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def _hash_tokenizer(h: "hashlib._Hash", tokenizer) -> None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # Truncation and padding are per-call settings that the tokenizer keeps as state.
        state.pop("truncation", None)
        state.pop("padding", None)
        h.update(json.dumps(state, sort_keys=True).encode())
    else:  # pragma: no cover - slow tokenizers are refused earlier
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())


def cache_description(ranker, storage: str, compressor: nn.Module | None, kind: str, precompute: str) -> dict[str, Any]:
    """The human-readable settings that a cache depends on (stored beside the fingerprint)."""
    c = ranker.config
    desc: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "model_type": c.encoder.model_type,
        "split": c.split.split,
        "layout": c.split.layout,
        "max_doc_length": c.split.max_doc_length,
        "storage": storage,
        "compression_dim": getattr(compressor, "dim", None),
        "precompute": precompute,
    }
    if ranker.twin_end:
        desc["head"] = {k: v for k, v in vars(c.head).items()}
    return desc


def ranker_fingerprint(ranker, storage: str, compressor: nn.Module | None, kind: str, precompute: str) -> str:
    """Hex SHA-256 of everything that determines what a cache built with these options stores."""
    h = hashlib.sha256()
    h.update(json.dumps(cache_description(ranker, storage, compressor, kind, precompute), sort_keys=True).encode())
    _hash_tokenizer(h, ranker.tokenizer)
    backbone = ranker.encoder.backbone
    _hash_module(h, backbone.embeddings, "embeddings.")
    project = getattr(backbone, "embeddings_project", None)
    if project is not None:
        _hash_module(h, project, "embeddings_project.")
    for i in range(ranker.split):
        _hash_module(h, ranker.encoder.layers[i], f"layer{i}.")
    if precompute == "kv":
        attn = ranker.encoder.layers[ranker.split].attention.self
        _hash_module(h, attn.key, "joint.key.")
        _hash_module(h, attn.value, "joint.value.")
    if ranker.twin_end:
        _hash_module(h, ranker.head, "head.")
    if compressor is not None:
        _hash_module(h, compressor, "compressor.")
    return h.hexdigest()

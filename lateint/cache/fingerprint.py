"""The fingerprint of everything that determines a cache's stored values.

Two rankers with the same fingerprint store bit-identical document representations: the hash
covers the tokenizer, the weights of every module the representation depends on (embeddings and
lower layers; the first joint layer's key and value projections when those are cached; the head
when it makes the representation; the compressor), and the settings the values depend on (split,
layout, maximum document length, head settings at L = T, storage codec, compressor width).
Weights that do not touch the cache (upper layers, a ``cls`` head) are left out, so fine-tuning
those keeps a cache valid.

Hashing weights costs a pass over them; :func:`weights_state` is the cheap key under which a
verified fingerprint is remembered: the settings plus each tensor's storage address and in-place
version counter, which every optimizer step, ``load_state_dict`` or ``copy_`` advances.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 2


def _tensors(modules: dict[str, nn.Module]):
    for prefix, module in sorted(modules.items()):
        for name, tensor in sorted(module.state_dict(keep_vars=True).items()):
            yield f"{prefix}.{name}", tensor


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


def cache_description(representation) -> dict[str, Any]:
    """The human-readable settings a cache depends on (stored beside the fingerprint)."""
    return {"format": FORMAT_VERSION, **representation.settings()}


def representation_fingerprint(representation) -> str:
    """Hex SHA-256 of everything that determines what ``representation`` stores."""
    h = hashlib.sha256()
    h.update(json.dumps(cache_description(representation), sort_keys=True).encode())
    _hash_tokenizer(h, representation.ranker.tokenizer)
    for name, tensor in _tensors(representation.dependencies()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_state(representation) -> tuple:
    """A cheap key that changes whenever anything :func:`representation_fingerprint` hashes may
    have changed: the settings, the tokenizer's size, and every dependency tensor's storage
    address, shape, dtype and in-place version counter."""
    tokenizer = representation.ranker.tokenizer
    state = [json.dumps(cache_description(representation), sort_keys=True), len(tokenizer)]
    for name, tensor in _tensors(representation.dependencies()):
        state.append((name, tensor.data_ptr(), tensor._version, tuple(tensor.shape), str(tensor.dtype), str(tensor.device)))
    return tuple(state)

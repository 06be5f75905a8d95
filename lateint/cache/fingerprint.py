"""The fingerprint of everything that determines a cache's stored values.

Two rankers with the same fingerprint store bit-identical document representations: the hash
covers the tokenizer, the weights of every module the representation depends on (embeddings and
lower layers; the first joint layer's key and value projections when those are cached; the head
when it makes the representation; the compressor), and the settings the values depend on (split,
layout, maximum document length, head settings at L = T, storage codec, compressor width).
Weights that do not touch the cache (upper layers, a ``cls`` head) are left out, so fine-tuning
those keeps a cache valid.

Hashing weights costs a pass over them, so a verified fingerprint is remembered as a
:class:`WeightsState`: a record of the settings, of every module and tensor the hash covered and of
each tensor's storage address and in-place version counter (which every optimizer step,
``load_state_dict`` or ``copy_`` advances). Re-checking it reads those counters directly, without
building state dicts, because the check runs once per query.
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


# Counts every module, parameter and buffer assignment in this process (torch calls the hooks from
# ``Module.__setattr__`` and ``register_*``): while it stands still no module tree changed shape, so
# :meth:`WeightsState.holds` can skip walking the trees' containers, which is most of its cost.
_assignments = [0]


def _count_assignment(*_args):
    _assignments[0] += 1


_hooks_installed = False


def _install_assignment_hooks() -> None:
    global _hooks_installed
    if not _hooks_installed:
        from torch.nn.modules import module as torch_module

        torch_module.register_module_module_registration_hook(_count_assignment)
        torch_module.register_module_parameter_registration_hook(_count_assignment)
        torch_module.register_module_buffer_registration_hook(_count_assignment)
        _hooks_installed = True


class WeightsState:
    """What :func:`representation_fingerprint` covered for one representation, in a form that is
    cheap to re-check: ``holds`` is False as soon as anything the hash depends on may have changed
    (settings, tokenizer size, which modules are dependencies, any submodule, parameter or buffer
    replaced, added or removed, any tensor modified in place, moved or re-pointed with ``.data``)."""

    def __init__(self, representation):
        _install_assignment_hooks()
        self.assignments = _assignments[0]
        self.settings = json.dumps(cache_description(representation), sort_keys=True)
        self.vocabulary = len(representation.ranker.tokenizer)
        dependencies = representation.dependencies()
        self.modules = [(name, dependencies[name]) for name in sorted(dependencies)]
        # (a module's child/parameter/buffer dict, the objects it held): any replacement shows here.
        self.containers: list[tuple[dict, tuple]] = []
        # (dict, key, tensor, storage address, version): also catches a tensor put in its dict directly.
        self.tensors: list[tuple[dict, str, torch.Tensor, int, int]] = []
        for _, top in self.modules:
            for module in top.modules():
                for container in (module._modules, module._parameters, module._buffers):
                    self.containers.append((container, tuple(container.values())))
                for container in (module._parameters, module._buffers):
                    for key, tensor in container.items():
                        if tensor is not None:
                            self.tensors.append((container, key, tensor, tensor.data_ptr(), tensor._version))

    def holds(self, representation) -> bool:
        if len(representation.ranker.tokenizer) != self.vocabulary:
            return False
        if json.dumps(cache_description(representation), sort_keys=True) != self.settings:
            return False
        dependencies = representation.dependencies()
        if len(dependencies) != len(self.modules) or any(dependencies.get(n) is not m for n, m in self.modules):
            return False
        if _assignments[0] != self.assignments:
            for container, held in self.containers:
                if len(container) != len(held) or any(a is not b for a, b in zip(container.values(), held)):
                    return False
            self.assignments = _assignments[0]
        return all(container.get(key) is t and t._version == version and t.data_ptr() == pointer
                   for container, key, t, pointer, version in self.tensors)


def ranker_fingerprint(ranker) -> str:
    """Hex SHA-256 of everything that determines a ranker's scores: its config (split, layout,
    head, lengths, quantization ...), its tokenizer and every weight. A result written by a ranker
    (a re-ranked run) records it, so that a job resuming the result with another ranker is refused."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "config": ranker.config.to_dict()}, sort_keys=True).encode())
    _hash_tokenizer(h, ranker.tokenizer)
    for name, tensor in sorted(ranker.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()

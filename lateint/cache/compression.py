"""PreTTR's learned compression of cached layer-L states, optionally with SDR's side information.

``compress``: ``Linear(H -> e)`` (what is stored, ``e`` numbers per token, optionally in fp16 or
int8 on top); ``decompress``: ``GELU -> Linear(e -> H) -> LayerNorm`` at query time.

With ``side_info`` (SDR, Cohen et al., "Succinct Document Representation"), both sides also take
each token's static embedding: the embedding layer's output, which query time recomputes from the
stored token id for almost nothing. Layer-L states are the embeddings plus what the layers added,
so the static embedding alone predicts much of them (a linear map explains 64% of the variance
of all-MiniLM-L6-v2's layer-3 states on DL19 passages: ``benchmarks/side_information_probe.py``)
and the code need only carry the context:
``compress``: ``Linear(2H -> e)`` of ``[state; static]``; ``decompress``:
``LayerNorm(Linear(e -> H)(GELU(code)) + MLP(static))``. The cache then also stores the token
ids and types (3 bytes per token for vocabularies of up to 65,536 ids).

Two ways to fit one. :func:`train_compressor` trains it on its own, as an auto-encoder of the
ranker's real layer-L document states (mean squared reconstruction error), which needs no labels
and leaves the ranker untouched, but spends its capacity on reconstruction rather than on what the
ranking depends on. PreTTR trains it with the ranker instead:
:func:`lateint.training.compressor.train_compressor_through_ranker` fits it together with the
joint layers and head to the uncompressed model's scores (a new ranker comes out with it).
``benchmarks/compression_fidelity.py`` measures both in score fidelity and nDCG@10.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lateint.errors import ConfigError, CorruptionError


class StateCompressor(nn.Module):
    """``Linear(H -> e)`` to store, ``GELU -> Linear(e -> H) -> LayerNorm`` to restore; with
    ``side_info``, both also read each token's static embedding (see the module's docstring)."""

    def __init__(self, hidden_size: int, dim: int, layer_norm_eps: float = 1e-12, side_info: bool = False):
        super().__init__()
        if not 0 < dim <= hidden_size:
            raise ConfigError(f"compression dim={dim} must be between 1 and the hidden size {hidden_size}.")
        self.hidden_size, self.dim, self.side_info = hidden_size, dim, bool(side_info)
        self.down = nn.Linear(2 * hidden_size if side_info else hidden_size, dim)
        self.up = nn.Linear(dim, hidden_size)
        if side_info:
            self.side = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def _static(self, static: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        if not self.side_info:
            return None
        if static is None or static.shape[:-1] != like.shape[:-1] or static.shape[-1] != self.hidden_size:
            got = "none" if static is None else tuple(static.shape)
            raise ConfigError(f"this compressor takes side information: each token's static embedding "
                              f"[..., {self.hidden_size}] aligned with the {tuple(like.shape[:-1])} tokens; got {got}.")
        return static

    def compress(self, states: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """``[..., H]`` (and with side information the tokens' static embeddings ``[..., H]``) -> ``[..., e]``."""
        side = self._static(static, states)
        return self.down(states if side is None else torch.cat([states, side], dim=-1))

    def decompress(self, codes: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """``[..., e]`` (and with side information ``[..., H]`` static embeddings) -> ``[..., H]``."""
        side = self._static(static, codes)
        restored = self.up(nn.functional.gelu(codes))
        return self.norm(restored if side is None else restored + self.side(side))

    def forward(self, states: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        return self.decompress(self.compress(states, static), static)

    def save(self, folder: str | Path) -> None:
        """Write ``compressor.safetensors`` and ``compressor.json`` into ``folder``.

        Each file is written under a temporary name and renamed, the JSON last: a folder whose
        ``compressor.json`` exists holds a whole compressor, even after a kill.
        """
        from lateint.cache.files import atomic_write_bytes, remove_tree

        folder = Path(folder)
        if folder.is_symlink():
            raise CorruptionError(f"{folder} is a symbolic link; a compressor is saved into a folder, never through a "
                                  "link. Delete the link and rerun")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".compressor.safetensors.{os.getpid()}.tmp"
        remove_tree(tmp)  # a link left there is removed, not written through
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        os.replace(tmp, folder / "compressor.safetensors")
        meta = {"hidden_size": self.hidden_size, "dim": self.dim}
        if self.side_info:  # absent otherwise, so compressors saved before the option load as they were
            meta["side_info"] = True
        atomic_write_bytes(folder / "compressor.json", json.dumps(meta).encode("utf-8"))

    @staticmethod
    def saved_in(folder: str | Path) -> bool:
        """Whether ``folder`` holds a whole saved compressor."""
        return (Path(folder) / "compressor.json").is_file()

    @classmethod
    def load(cls, folder: str | Path) -> "StateCompressor":
        folder = Path(folder)
        meta = json.loads((folder / "compressor.json").read_text())
        comp = cls(meta["hidden_size"], meta["dim"], side_info=bool(meta.get("side_info", False)))
        comp.load_state_dict(load_file(str(folder / "compressor.safetensors")))
        return comp.eval()


@dataclass
class CompressorTraining:
    """What :func:`train_compressor` did, recorded with the compressor."""

    dim: int
    steps: int
    seed: int
    documents: int
    tokens: int
    initial_mse: float
    final_mse: float
    seconds: float


def layer_states(ranker, sides, side: str = "doc", *, static: bool = False, chunk: int = 64):
    """Unpadded layer-L states ``[len_i, H]`` of each of ``sides`` (float32, on the CPU, in input
    order), and with ``static`` also each side's static embeddings (the embedding layer's output,
    the side information of :class:`StateCompressor`), else None."""
    states: list[torch.Tensor] = [None] * len(sides)  # type: ignore[list-item]
    statics: list[torch.Tensor] | None = [None] * len(sides) if static else None  # type: ignore[list-item]
    order = sorted(range(len(sides)), key=lambda i: len(sides[i]))
    make = ranker.query_batch if side == "query" else ranker.doc_batch
    with torch.inference_mode():
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            batch = make([sides[i] for i in idx])
            h = ranker.lower_states(batch).float().cpu()
            e = ranker.encoder.embed(batch).float().cpu() if static else None
            for row, i in enumerate(idx):
                n = len(sides[i])
                states[i] = h[row, :n].clone()  # clones leave inference mode behind, for autograd
                if statics is not None:
                    statics[i] = e[row, :n].clone()
    return states, statics


def reconstruction_mse(comp: StateCompressor, states: torch.Tensor, static: torch.Tensor | None, rows) -> torch.Tensor:
    """Mean squared error of ``comp`` restoring the token states ``states[rows]`` (given their
    static embeddings ``static[rows]`` when it takes side information)."""
    x = states[rows]
    return nn.functional.mse_loss(comp(x, None if static is None else static[rows]), x)


def fit_reconstruction(comp: StateCompressor, states: torch.Tensor, static: torch.Tensor | None, steps: int, *,
                       batch_tokens: int = 4096, lr: float = 3e-3, generator: torch.Generator | None = None,
                       progress: str | None = None) -> None:
    """``steps`` AdamW steps (cosine schedule) of :func:`reconstruction_mse` on random batches of
    ``batch_tokens`` token states, drawn with ``generator`` (torch's global one if None);
    ``progress``: a bar with this label."""
    opt = torch.optim.AdamW(comp.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    n = min(batch_tokens, len(states))
    bar = range(steps)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=progress, unit="step")
    for _ in bar:
        loss = reconstruction_mse(comp, states, static, torch.randint(len(states), (n,), generator=generator))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def train_compressor(
    ranker,
    texts: Sequence[str],
    dim: int = 128,
    *,
    steps: int = 400,
    batch_tokens: int = 4096,
    lr: float = 3e-3,
    seed: int = 0,
    side_info: bool = False,
    progress: bool = False,
) -> tuple[StateCompressor, CompressorTraining]:
    """Fit a compressor to ``ranker``'s layer-L states of the documents ``texts``.

    The states are computed once, then ``steps`` AdamW steps on random batches of
    ``batch_tokens`` token states minimise the reconstruction MSE. ``side_info``: the compressor
    also reads each token's static embedding (SDR; see :class:`StateCompressor`).
    """
    if not 0 < ranker.split < ranker.num_layers:
        raise ConfigError("a state compressor is for cached layer-L states, that is 0 < split < T.")
    torch.manual_seed(seed)
    start = time.perf_counter()
    sides = ranker.doc_sides(list(texts))
    per_doc, per_doc_static = layer_states(ranker, sides, static=side_info)
    states = torch.cat(per_doc)
    static = torch.cat(per_doc_static) if side_info else None
    comp = StateCompressor(ranker.encoder.hidden_size, dim, side_info=side_info)
    with torch.no_grad():
        probe = torch.randperm(len(states))[: min(len(states), 8192)]
        initial = reconstruction_mse(comp, states, static, probe).item()
    fit_reconstruction(comp, states, static, steps, batch_tokens=batch_tokens, lr=lr,
                       progress=f"compressor e={dim}" if progress else None)
    comp.eval()
    with torch.no_grad():
        final = reconstruction_mse(comp, states, static, probe).item()
    info = CompressorTraining(dim, steps, seed, len(sides), len(states), initial, final, time.perf_counter() - start)
    return comp, info


def training_record(info: CompressorTraining) -> dict:
    """A JSON-serialisable record of a compressor's training."""
    return asdict(info)

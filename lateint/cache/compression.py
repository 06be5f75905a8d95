"""PreTTR's learned compression of cached layer-L states.

``compress``: ``Linear(H -> e)`` (what is stored, ``e`` numbers per token, optionally in fp16 or
int8 on top); ``decompress``: ``GELU -> Linear(e -> H) -> LayerNorm`` at query time.

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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lateint.errors import ConfigError


class StateCompressor(nn.Module):
    """``Linear(H -> e)`` to store, ``GELU -> Linear(e -> H) -> LayerNorm`` to restore."""

    def __init__(self, hidden_size: int, dim: int, layer_norm_eps: float = 1e-12):
        super().__init__()
        if not 0 < dim <= hidden_size:
            raise ConfigError(f"compression dim={dim} must be between 1 and the hidden size {hidden_size}.")
        self.hidden_size, self.dim = hidden_size, dim
        self.down = nn.Linear(hidden_size, dim)
        self.up = nn.Linear(dim, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def compress(self, states: torch.Tensor) -> torch.Tensor:
        """``[..., H]`` -> ``[..., e]``."""
        return self.down(states)

    def decompress(self, codes: torch.Tensor) -> torch.Tensor:
        """``[..., e]`` -> ``[..., H]``."""
        return self.norm(self.up(nn.functional.gelu(codes)))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.decompress(self.compress(states))

    def save(self, folder: str | Path) -> None:
        """Write ``compressor.safetensors`` and ``compressor.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(folder / "compressor.safetensors"))
        (folder / "compressor.json").write_text(json.dumps({"hidden_size": self.hidden_size, "dim": self.dim}))

    @classmethod
    def load(cls, folder: str | Path) -> "StateCompressor":
        folder = Path(folder)
        meta = json.loads((folder / "compressor.json").read_text())
        comp = cls(meta["hidden_size"], meta["dim"])
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


def train_compressor(
    ranker,
    texts: Sequence[str],
    dim: int = 128,
    *,
    steps: int = 400,
    batch_tokens: int = 4096,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = False,
) -> tuple[StateCompressor, CompressorTraining]:
    """Fit a compressor to ``ranker``'s layer-L states of the documents ``texts``.

    The states are computed once, then ``steps`` AdamW steps on random batches of
    ``batch_tokens`` token states minimise the reconstruction MSE.
    """
    if not 0 < ranker.split < ranker.num_layers:
        raise ConfigError("a state compressor is for cached layer-L states, that is 0 < split < T.")
    torch.manual_seed(seed)
    start = time.perf_counter()
    sides = ranker.doc_sides(list(texts))
    with torch.inference_mode():
        parts = []
        for i in range(0, len(sides), 64):
            batch = ranker.doc_batch(sides[i : i + 64])
            states = ranker.lower_states(batch)
            parts.extend(states[row, :n] for row, n in enumerate(batch.lengths.tolist()))
        states = torch.cat(parts).float().cpu()
    states = states.clone()  # leave inference mode's tensors behind for autograd
    comp = StateCompressor(ranker.encoder.hidden_size, dim)
    opt = torch.optim.AdamW(comp.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    def mse(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(comp(x), x)

    with torch.no_grad():
        probe = states[torch.randperm(len(states))[: min(len(states), 8192)]]
        initial = mse(probe).item()
    bar = range(steps)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=f"compressor e={dim}", unit="step")
    for _ in bar:
        batch = states[torch.randint(len(states), (min(batch_tokens, len(states)),))]
        loss = mse(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    comp.eval()
    with torch.no_grad():
        final = mse(probe).item()
    info = CompressorTraining(dim, steps, seed, len(sides), len(states), initial, final, time.perf_counter() - start)
    return comp, info


def training_record(info: CompressorTraining) -> dict:
    """A JSON-serialisable record of a compressor's training."""
    return asdict(info)

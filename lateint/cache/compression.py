"""PreTTR's learned compression of cached layer-L states.

``compress``: ``Linear(H -> e)`` (what is stored, ``e`` numbers per token, optionally in fp16 or
int8 on top); ``decompress``: ``GELU -> Linear(e -> H) -> LayerNorm`` at query time.

PreTTR trains the compressor with the ranker. Here the ranker is left untouched and the compressor
is fitted in two stages:

1. :func:`train_compressor`: an auto-encoder of the ranker's real layer-L document states (mean
   squared reconstruction error); it needs only documents.
2. :func:`tune_compressor`: through the frozen joint layers and head, so that the scores of
   decompressed states match the scores of the original states (a margin-MSE over each query's
   candidates). Low reconstruction error alone does not keep rankings: the joint layers amplify
   the directions the auto-encoder neglects, so this stage is what keeps the ranking
   (``benchmarks/compressor_fidelity.py`` measures both).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
import random
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
    sides = ranker.pair_tokenizer.doc_sides(list(texts))
    with torch.inference_mode():
        states = torch.cat(
            [torch.cat(ranker.encode_docs_lower(sides[i : i + 64])) for i in range(0, len(sides), 64)]
        ).float().cpu()
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


@dataclass
class CompressorTuning:
    """What :func:`tune_compressor` did, recorded with the compressor."""

    dim: int
    steps: int
    seed: int
    lists: int
    group: int
    initial_loss: float
    final_loss: float
    seconds: float


def tune_compressor(
    ranker,
    compressor: StateCompressor,
    lists: Sequence[tuple[str, Sequence[str]]],
    *,
    steps: int = 200,
    group: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
) -> tuple[StateCompressor, CompressorTuning]:
    """Fine-tune ``compressor`` so that ``ranker`` scores decompressed states as it scores the originals.

    Args:
        ranker: the ranker whose cache the compressor serves (0 < split < T); it is not changed.
        compressor: a compressor of the ranker's layer-L states, e.g. from :func:`train_compressor`.
        lists: ``(query text, candidate document texts)`` pairs, e.g. training queries with their
            first-stage candidates; lists with fewer than two candidates are ignored.
        steps: optimizer steps, one list per step.
        group: candidates drawn per step from the list.
        lr: AdamW learning rate.
        seed: seeds the draws of lists and candidates.
        progress: show a progress bar.

    The loss is the margin-MSE between the two sets of scores, each centred on its list's mean:
    re-ranking depends only on score differences within a query, so their absolute level is free.
    It is measured before and after on up to 8 fixed lists.
    """
    if not 0 < ranker.split < ranker.num_layers:
        raise ConfigError("a state compressor is for cached layer-L states, that is 0 < split < T.")
    if compressor.hidden_size != ranker.encoder.hidden_size:
        raise ConfigError(
            f"the compressor restores {compressor.hidden_size}-dim states but the ranker's hidden size is "
            f"{ranker.encoder.hidden_size}; train a compressor for this ranker with train_compressor()."
        )
    if ranker.pair_tokenizer.doc_positions_depend_on_query:
        raise ConfigError("layout='packed' has no query-independent document states to compress; use 'offset' or 'restart'.")
    usable = [(q, list(docs)) for q, docs in lists if len(docs) >= 2]
    if not usable:
        raise ConfigError("tune_compressor needs at least one (query, candidates) list with two or more candidates.")
    if steps < 1 or group < 2:
        raise ConfigError(f"steps={steps} must be >= 1 and group={group} >= 2.")
    start = time.perf_counter()
    rng = random.Random(seed)
    torch.manual_seed(seed)
    tok, device = ranker.pair_tokenizer, ranker.device
    compressor = compressor.to(device=device, dtype=torch.float32).train()
    frozen = [(p, p.requires_grad) for p in ranker.parameters()]
    was_training = ranker.training
    ranker.eval()
    for p, _ in frozen:
        p.requires_grad_(False)

    def lists_loss(items: list[tuple[str, list[str]]]) -> torch.Tensor:
        losses = []
        for query, docs in items:
            q_batch = tok.query_batch(tok.query_sides([query])).to(device)
            d_batch = tok.doc_batch(tok.doc_sides(docs)).to(device)
            with torch.no_grad():
                q = ranker.encoder.encode_side(q_batch)
                d = ranker.encoder.encode_side(d_batch)
                n = len(docs)
                q, qm = q.expand(n, -1, -1), q_batch.mask.expand(n, -1)
                target = ranker.score_states(q, qm, d, d_batch.mask).float()
            # the compressor learns in fp32 whatever the ranker's dtype
            restored = compressor(d.float()).to(d.dtype)
            scores = ranker.score_states(q, qm, restored, d_batch.mask).float()
            diff = (scores - scores.mean()) - (target - target.mean())
            losses.append(diff.pow(2).mean())
        return torch.stack(losses).mean()

    def draw() -> tuple[str, list[str]]:
        query, docs = usable[rng.randrange(len(usable))]
        return query, rng.sample(docs, min(group, len(docs)))

    probe = [(q, docs[:group]) for q, docs in usable[:8]]
    opt = torch.optim.AdamW(compressor.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    try:
        with torch.no_grad():
            initial = lists_loss(probe).item()
        bar = range(steps)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(bar, desc=f"compressor e={compressor.dim} (scores)", unit="step")
        for _ in bar:
            loss = lists_loss([draw()])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        compressor.eval()
        with torch.no_grad():
            final = lists_loss(probe).item()
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        ranker.train(was_training)
    info = CompressorTuning(compressor.dim, steps, seed, len(usable), group, initial, final, time.perf_counter() - start)
    return compressor, info

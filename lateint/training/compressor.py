"""PreTTR's compressor of cached layer-L states, trained through the ranker.

A compressor fitted on its own (:func:`lateint.cache.compression.train_compressor`) minimises the
reconstruction error of the states, which is not what a ranking needs: small errors in directions
the joint layers are sensitive to cost more than large ones elsewhere. Here the compressor is
trained together with the joint layers (``T - L`` upper layers) and the head, so that the student
``score_states(q, decompress(compress(d)))`` reproduces the scores of the frozen, uncompressed
teacher (the ranker as given) on pairs of candidates of the same query (Margin-MSE: only score
differences within a query matter for a ranking, so the student may shift its scale and offset).

The student's embeddings and lower L layers stay frozen, so a cache of compressed codes built with
the teacher's lower layers is valid for the student, and the lower-layer states of every training
text are computed once. The storage codec of the cache can be simulated while training (codes
rounded to fp16, or quantised to per-token int8 as :mod:`lateint.cache.codecs` does, with a
straight-through gradient), so that the stored form costs no more than training saw.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from torch import nn

from lateint.batching import pad_rows
from lateint.cache.compression import StateCompressor, fit_reconstruction, layer_states, reconstruction_mse
from lateint.errors import ConfigError, InputError
from lateint.modes import evaluating

#: Storage codecs that can be simulated on the codes while training.
SIMULATED_STORAGES = ("fp32", "fp16", "int8")


@dataclass
class ThroughRankerTraining:
    """What :func:`train_compressor_through_ranker` did (JSON-able with :meth:`record`)."""

    dim: int
    split: int
    storage: str
    steps: int
    reconstruction_steps: int
    seed: int
    lr: float
    compressor_lr: float
    queries_per_step: int
    docs_per_query: int
    training_queries: int
    held_out_queries: int
    documents: int
    doc_tokens: int
    initial_loss: float
    final_loss: float
    held_out_initial_loss: float | None
    held_out_final_loss: float | None
    reconstruction_mse: float | None
    seconds: float
    losses: list[float] = field(default_factory=list, repr=False)

    def record(self) -> dict:
        """A JSON-serialisable record (the per-step losses thinned to at most 50 points)."""
        out = asdict(self)
        stride = max(1, len(self.losses) // 50)
        out["losses"] = [round(x, 8) for x in self.losses[::stride]]
        return out


def pairwise_margin_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Margin-MSE over every pair of candidates of a query: ``[B, n]`` scores ->
    ``mean_{b, i<j} [(s_bi - s_bj) - (t_bi - t_bj)]^2``.

    Without labels there is no positive column to anchor the margins on, so every pair counts.
    """
    d = student - teacher.detach()
    diff = d.unsqueeze(2) - d.unsqueeze(1)
    n = d.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=d.device), diagonal=1)
    return diff[:, upper].square().mean()


def simulate_storage(codes: torch.Tensor, storage: str) -> torch.Tensor:
    """``codes`` as the cache would give them back, with the gradient of the identity."""
    if storage == "fp32":
        return codes
    if storage == "fp16":
        stored = codes.half().to(codes.dtype)
    else:
        # Symmetric per-token int8, as the cache's codec stores it (a float32 scale per row).
        x = codes.detach().float()
        amax = x.abs().amax(dim=-1, keepdim=True)
        inv = torch.where(amax > 0, 127.0 / amax.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(amax))
        stored = (torch.round(x * inv).clamp(-127, 127) * (amax / 127.0)).to(codes.dtype)
    return codes + (stored - codes).detach()


def _check_groups(groups) -> list[tuple[str, list[str]]]:
    out = []
    for item in groups:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise InputError("training groups must be (query text, [candidate doc texts]) pairs.")
        query, docs = item[0], list(item[1])
        if not query.strip() or any(not isinstance(d, str) or not d.strip() for d in docs):
            raise InputError("training queries and candidate docs must be non-empty strings.")
        if len(docs) >= 2:  # a single candidate has no pair to learn a margin from
            out.append((query, docs))
    if not out:
        raise InputError("no training group with at least 2 candidate docs: Margin-MSE needs pairs of candidates.")
    return out


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def train_compressor_through_ranker(
    ranker,
    groups: Sequence[tuple[str, Sequence[str]]],
    dim: int = 128,
    *,
    steps: int = 200,
    queries_per_step: int = 4,
    docs_per_query: int = 8,
    lr: float = 3e-5,
    compressor_lr: float = 1e-3,
    warmup: float = 0.1,
    reconstruction_steps: int = 100,
    storage: str = "fp32",
    held_out: int = 0,
    seed: int = 0,
    init: StateCompressor | None = None,
    side_info: bool = False,
    progress: bool = False,
):
    """Train a PreTTR compressor of ``ranker``'s layer-L document states with its joint layers.

    Args:
        ranker: a :class:`~lateint.SplitRanker` at ``0 < L < T`` whose document states do not
            depend on the query (a cacheable layout). It is the teacher and is left unchanged.
        groups: ``(query text, [candidate doc texts])``; no labels are needed. Groups with fewer
            than 2 candidates are skipped. Every text's layer-L states are held in memory.
        dim: e, numbers stored per token.
        steps: optimizer steps through the ranker, each on ``queries_per_step`` queries with
            ``docs_per_query`` of their candidates drawn at random (all when a group has fewer).
        lr, compressor_lr: peak learning rates of the joint layers and head, and of the
            compressor (linear warm-up over ``warmup`` of the steps, then linear decay).
        reconstruction_steps: auto-encoder steps (reconstruction MSE on the training documents'
            states) that start the compressor near the identity before the ranker steps; 0 for
            none, and ignored when ``init`` is given.
        storage: cache codec simulated on the codes (``fp32`` for none, ``fp16``, ``int8``).
        held_out: groups kept out of training to measure the loss on before and after.
        seed: seeds initialisation, sampling and the held-out choice.
        init: a compressor to start from (copied, not changed).
        side_info: the compressor also reads each document token's static embedding (SDR; see
            :class:`~lateint.cache.compression.StateCompressor`); ``init`` must then have it too.

    Returns:
        ``(compressor, student, info)``: the trained :class:`StateCompressor` (eval mode), the
        fine-tuned ranker (a separate model: same embeddings and lower layers, new joint layers
        and head), and a :class:`ThroughRankerTraining`.

    Raises:
        ConfigError: split not in ``0 < L < T``, a query-dependent document layout, dim out of
            range, an unknown storage, non-positive step or batch settings.
        InputError: malformed or empty training data.
    """
    T, L = ranker.num_layers, ranker.split
    if not 0 < L < T:
        raise ConfigError(f"a state compressor trains through joint layers on cached layer-L states: "
                          f"needs 0 < split < T, got split={L} of T={T}.")
    if ranker.doc_states_depend_on_query:
        raise ConfigError(f"layout {ranker.config.sides.layout!r} places documents after the query, so their "
                          "states cannot be cached or compressed; use a layout such as 'separate' or 'offset'.")
    hidden = ranker.encoder.hidden_size
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= hidden:
        raise ConfigError(f"compression dim={dim!r} must be an integer between 1 and the hidden size {hidden}.")
    if storage not in SIMULATED_STORAGES:
        raise ConfigError(f"storage must be one of {', '.join(SIMULATED_STORAGES)}, got {storage!r}.")
    _positive_int(steps, "steps")
    _positive_int(queries_per_step, "queries_per_step")
    _positive_int(docs_per_query, "docs_per_query", 2)
    _positive_int(reconstruction_steps, "reconstruction_steps", 0)
    _positive_int(held_out, "held_out", 0)
    if not (0.0 <= warmup < 1.0):
        raise ConfigError(f"warmup must be a fraction in [0, 1), got {warmup!r}.")
    if init is not None and (init.hidden_size != hidden or init.dim != dim or init.side_info != side_info):
        raise ConfigError(f"init compressor is {init.hidden_size}->{init.dim} (side information: {init.side_info}), "
                          f"training asks for {hidden}->{dim} (side information: {side_info}).")
    groups = _check_groups(groups)
    if held_out >= len(groups):
        raise InputError(f"held_out={held_out} leaves no training group of the {len(groups)} usable ones.")

    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(groups), generator=gen).tolist()
    probe_groups = [groups[i] for i in order[:held_out]]
    train_groups = [groups[i] for i in order[held_out:]]

    # Lower layers are frozen, so every side's layer-L states are computed once, for both models.
    teacher = ranker
    # The teacher scores without dropout; exactly the submodules that were training get their mode back.
    with evaluating(teacher):
        queries = list(dict.fromkeys(q for q, _ in groups))
        docs = list(dict.fromkeys(d for _, ds in groups for d in ds))
        q_index = {q: i for i, q in enumerate(queries)}
        d_index = {d: i for i, d in enumerate(docs)}
        q_states, _ = layer_states(teacher, teacher.query_sides(queries), "query", chunk=32)
        d_states, d_static = layer_states(teacher, teacher.doc_sides(docs), "doc", static=side_info, chunk=32)
        train = [(q_index[q], [d_index[d] for d in ds]) for q, ds in train_groups]
        probe = [(q_index[q], [d_index[d] for d in ds]) for q, ds in probe_groups]

        student = copy.deepcopy(teacher)
        for p in student.parameters():
            p.requires_grad_(False)
        upper = [p for layer in student.encoder.layers[L:] for p in layer.parameters()] + list(student.head.parameters())
        for p in upper:
            p.requires_grad_(True)
        # Dropout off: the student imitates a deterministic teacher, and runs stay reproducible.
        student.eval()

        comp = copy.deepcopy(init) if init is not None else StateCompressor(hidden, dim, side_info=side_info)
        comp.train()
        recon = None
        if init is None and reconstruction_steps:
            flat = torch.cat(d_states)
            flat_static = torch.cat(d_static) if side_info else None
            fit_reconstruction(comp, flat, flat_static, reconstruction_steps, generator=gen)
            with torch.no_grad():
                recon = float(reconstruction_mse(comp, flat, flat_static, slice(0, min(len(flat), 8192))))

        device = student.device
        comp.to(device)

        def batch_scores(items) -> tuple[torch.Tensor, torch.Tensor]:
            """Student and teacher scores ``[len(items), n]`` of the (query, [docs]) items."""
            n = min(len(ds) for _, ds in items)
            q_list = [q_states[q] for q, ds in items for _ in range(n)]
            d_list = [d_states[d] for _, ds in items for d in ds[:n]]
            q, q_mask = pad_rows(q_list, device)
            d, d_mask = pad_rows(d_list, device)
            static = pad_rows([d_static[d] for _, ds in items for d in ds[:n]], device)[0] if side_info else None
            with torch.no_grad():
                t = teacher.score_states(q, q_mask, d, d_mask).float()
            codes = simulate_storage(comp.compress(d, static), storage)
            # Padding rows of the codes are decompressed too; the mask keeps them out of attention.
            s = student.score_states(q, q_mask, comp.decompress(codes, static), d_mask).float()
            return s.view(len(items), n), t.view(len(items), n)

        def sample(pool) -> list[tuple[int, list[int]]]:
            picks = torch.randint(len(pool), (min(queries_per_step, len(pool)),), generator=gen).tolist()
            out = []
            for i in picks:
                qi, ds = pool[i]
                k = min(docs_per_query, len(ds))
                chosen = torch.randperm(len(ds), generator=gen)[:k].tolist()
                out.append((qi, [ds[j] for j in chosen]))
            return out

        def probe_loss() -> float | None:
            if not probe:
                return None
            comp.eval()
            with torch.no_grad():
                losses = [pairwise_margin_mse(*batch_scores([item])).item() for item in probe]
            comp.train()
            return float(sum(losses) / len(losses))

        held_initial = probe_loss()
        opt = torch.optim.AdamW([{"params": upper, "lr": lr}, {"params": list(comp.parameters()), "lr": compressor_lr}],
                                weight_decay=0.0)
        warm = max(1, int(round(warmup * steps)))

        def factor(step: int) -> float:
            return (step + 1) / warm if step < warm else max(0.0, (steps - step) / max(1, steps - warm))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        bar = range(steps)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(bar, desc=f"compressor e={dim} through L={L}..{T}", unit="step")
        losses: list[float] = []
        for _ in bar:
            s, t = batch_scores(sample(train))
            loss = pairwise_margin_mse(s, t)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(upper + list(comp.parameters()), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        held_final = probe_loss()
        comp.eval()
        for p in student.parameters():
            p.requires_grad_(False)

    window = max(1, min(20, len(losses) // 5))
    info = ThroughRankerTraining(
        dim=dim, split=L, storage=storage, steps=steps, reconstruction_steps=0 if init is not None else reconstruction_steps,
        seed=seed, lr=lr, compressor_lr=compressor_lr, queries_per_step=queries_per_step, docs_per_query=docs_per_query,
        training_queries=len(train), held_out_queries=len(probe), documents=len(docs),
        doc_tokens=sum(s.shape[0] for s in d_states),
        initial_loss=float(sum(losses[:window]) / window), final_loss=float(sum(losses[-window:]) / window),
        held_out_initial_loss=held_initial, held_out_final_loss=held_final, reconstruction_mse=recon,
        seconds=time.perf_counter() - start, losses=losses,
    )
    return comp, student, info


__all__ = ["SIMULATED_STORAGES", "ThroughRankerTraining", "pairwise_margin_mse", "simulate_storage",
           "train_compressor_through_ranker"]

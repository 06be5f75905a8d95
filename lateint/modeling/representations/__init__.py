"""Document representations: what a ranker stores of a document at its split, and how it scores
a query against what was stored (one class per kind)."""

from __future__ import annotations

from torch import nn

from lateint.errors import ConfigError
from lateint.modeling.representations.base import PRECOMPUTE, STORAGES, Field, Gathered, Representation
from lateint.modeling.representations.kv import KeyValueRepresentation
from lateint.modeling.representations.states import StatesRepresentation
from lateint.modeling.representations.token_vectors import TokenVectorsRepresentation
from lateint.modeling.representations.tokens import TokensRepresentation
from lateint.modeling.representations.vector import VectorRepresentation

REPRESENTATIONS: dict[str, type[Representation]] = {
    cls.name: cls
    for cls in (TokensRepresentation, StatesRepresentation, KeyValueRepresentation, VectorRepresentation,
                TokenVectorsRepresentation)
}

__all__ = ["PRECOMPUTE", "REPRESENTATIONS", "STORAGES", "Field", "Gathered", "Representation", "representation_for"]


def representation_for(ranker, storage: str = "fp16", compressor: nn.Module | None = None, precompute: str = "none") -> Representation:
    """The representation ``ranker`` stores at its split with these options.

    L = 0: ``tokens``; 0 < L < T: ``states`` (``kv`` with ``precompute="kv"``); L = T: ``vector``
    (twin) or ``token_vectors`` (maxsim, dipair).

    Raises:
        ConfigError: an unknown storage or precompute option, or one that does not apply at this split.
    """
    if storage not in STORAGES:
        raise ConfigError(f"storage={storage!r} is unknown; use one of {', '.join(STORAGES)}.")
    if precompute not in PRECOMPUTE:
        raise ConfigError(f"precompute={precompute!r} is unknown; use one of {', '.join(PRECOMPUTE)}.")
    L, T, H = ranker.split, ranker.num_layers, ranker.encoder.hidden_size
    if compressor is not None and not 0 < L < T:
        raise ConfigError("a state compressor applies to layer-L states, that is 0 < split < T.")
    if precompute == "kv" and not 0 < L < T:
        raise ConfigError("precompute='kv' caches the first joint layer's keys and values, so it needs 0 < split < T.")
    if compressor is not None and compressor.hidden_size != H:
        raise ConfigError(f"the compressor restores {compressor.hidden_size} dims but the ranker's hidden size is {H}.")
    if ranker.doc_states_depend_on_query and L > 0:
        raise ConfigError(
            "layout='packed' places document positions after the query, so at split > 0 document states depend "
            "on the query and cannot be cached. Use layout='offset' (PreTTR) or 'restart' (DeFormer)."
        )
    if L == 0:
        kind = "tokens"
    elif L < T:
        kind = "kv" if precompute == "kv" else "states"
    else:
        kind = "vector" if ranker.config.head.name == "twin" else "token_vectors"
    return REPRESENTATIONS[kind](ranker, storage, compressor, precompute)

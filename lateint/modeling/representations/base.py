"""What every document representation shares.

A representation is what a ranker keeps of a document so that re-ranking can skip work: it
declares its stored fields, encodes documents into them, and scores a query against fields
gathered from storage. Storage itself (files, checksums, shards) knows nothing of models: it
stores the fields a representation declares and gives them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from lateint.tokenization import SideTokens

#: Codecs a representation's float fields can be stored in.
STORAGES = ("fp32", "fp16", "int8")
#: What may be precomputed beyond the lower-layer states: nothing, or the first joint layer's keys and values.
PRECOMPUTE = ("none", "kv")

#: ``(values [B, S, ...], mask [B, S])`` of one field for a batch of documents, padded; for a
#: :attr:`Representation.packed` one ``(values [N, ...], lengths [B])``, the rows back to back.
Gathered = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Field:
    """A stored per-document field: ``length`` rows (any number if None) of ``dim`` values
    (one scalar per row if None), in ``codec``."""

    name: str
    codec: str
    dim: int | None = None
    length: int | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.dim is None else (self.dim,)


class Representation:
    """A ranker's stored form of documents at its split.

    Args:
        ranker: the :class:`~lateint.SplitRanker` (at the split the representation is for).
        storage: codec of the float fields (:data:`STORAGES`).
        compressor: PreTTR compressor of layer-L states (``states`` and ``kv`` only).
        precompute: :data:`PRECOMPUTE`.
    """

    name: ClassVar[str]
    #: Every document has the same number of rows, so candidates need no length sorting.
    fixed_length: ClassVar[bool] = False
    #: How much longer than a batch's shortest document its longest may be (see
    #: :func:`lateint.batching.length_batches`): padding against the fixed cost of each batch.
    padding_growth: float = 1.2
    #: At most this many padded rows per batch (None: no limit besides the batch size).
    batch_rows: int | None = None
    #: Scores documents gathered back to back (``(values [N, ...], lengths [B])``) instead of padded.
    packed: bool = False

    def __init__(self, ranker, storage: str = "fp16", compressor: nn.Module | None = None, precompute: str = "none"):
        self.ranker = ranker
        self.storage = storage
        self.compressor = compressor
        self.precompute = precompute

    # -- what is stored --------------------------------------------------------------------------
    @property
    def fields(self) -> list[Field]:
        raise NotImplementedError

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def settings(self) -> dict[str, Any]:
        """The settings the stored values depend on, in readable form (kept beside a cache)."""
        c = self.ranker.config
        settings = {
            "representation": self.name,
            "model_type": c.encoder.model_type,
            "split": c.split,
            "layout": c.sides.layout,
            "max_doc_length": c.sides.max_doc_length,
            "storage": self.storage,
            "compression_dim": getattr(self.compressor, "dim", None),
            "precompute": self.precompute,
        }
        if self.ranker.bi_encoder:
            settings["head"] = dict(vars(c.head))
        if c.quantization != "none":  # absent for fp32, so caches built before the option stay valid
            settings["quantization"] = c.quantization
        if c.dtype != "fp32":  # likewise: the precision the stored values were computed in
            settings["dtype"] = c.dtype
        return settings

    def dependencies(self) -> dict[str, nn.Module]:
        """The modules whose weights determine the stored values (named, for hashing)."""
        encoder = self.ranker.encoder
        modules = dict(encoder.embedding_modules())
        for i in range(self.ranker.split):
            modules[f"layer{i}"] = encoder.layers[i]
        if self.compressor is not None:
            modules["compressor"] = self.compressor
        return modules

    # -- documents -------------------------------------------------------------------------------
    def encode(self, sides: Sequence[SideTokens]) -> dict[str, list[torch.Tensor]]:
        """Each document's value of each field, unpadded (``[rows, dim]`` per document)."""
        raise NotImplementedError

    # -- queries ---------------------------------------------------------------------------------
    def encode_query(self, side: SideTokens) -> Any:
        """What scoring needs of one query, computed once for all its candidates."""
        raise NotImplementedError

    def score(self, query: Any, gathered: dict[str, Gathered]) -> torch.Tensor:
        """Scores ``[B]`` of the query against a batch of documents' gathered fields."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------
    def _to_ranker(self, gathered: Gathered) -> Gathered:
        values, mask = gathered
        return values.to(self.ranker.device, self.ranker.dtype), mask.to(self.ranker.device)


def unpad(values: torch.Tensor, lengths: Sequence[int]) -> list[torch.Tensor]:
    """Rows ``[:n]`` of each item of a padded batch, as float32 (what storage encodes from)."""
    return [values[i, :n].float() for i, n in enumerate(lengths)]

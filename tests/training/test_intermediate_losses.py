"""TinyBERT intermediate-layer losses: layer map, hidden/embedding MSE, attention-score MSE and the
module that combines them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lateint.errors import ConfigError, InputError
from lateint.training.losses import (
    IntermediateDistillation,
    attention_score_mse,
    embedding_mse,
    hidden_mse,
    uniform_layer_map,
)

NEG = torch.finfo(torch.float32).min


def close(value: torch.Tensor, expected: float, tol: float = 1e-5) -> bool:
    return abs(value.item() - expected) < tol


# ---------------------------------------------------------------- layer map
def test_uniform_layer_map():
    # g(m) = m * N / M with the embedding layer 0 -> 0
    assert uniform_layer_map(4, 12) == [0, 3, 6, 9, 12]
    assert uniform_layer_map(2, 4) == [0, 2, 4]
    assert uniform_layer_map(3, 3) == [0, 1, 2, 3]
    # 6 / 4 = 1.5 per layer, rounded down; the last student layer still meets the last teacher layer
    assert uniform_layer_map(4, 6) == [0, 1, 3, 4, 6]


@pytest.mark.parametrize("m, n", [(5, 4), (0, 4), (2, 0)])
def test_uniform_layer_map_rejects_bad_counts(m, n):
    with pytest.raises(ConfigError):
        uniform_layer_map(m, n)


# ---------------------------------------------------------------- hidden / embedding
def test_hidden_mse_by_hand():
    student = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    # token 0: (0^2 + 2^2) / 2 = 2; token 1: (3^2 + 4^2) / 2 = 12.5
    assert close(hidden_mse(student, teacher), (2 + 12.5) / 2)
    # the padded token 1 leaves token 0 only
    assert close(hidden_mse(student, teacher, torch.tensor([[1, 0]])), 2.0)
    assert close(embedding_mse(student, teacher, torch.tensor([[1, 0]])), 2.0)


def test_hidden_mse_projects_student_width():
    proj = nn.Linear(1, 2)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        proj.bias.copy_(torch.tensor([0.0, 1.0]))
    student = torch.tensor([[[1.0], [3.0]]])  # projects to (2, 0) and (6, -2)
    teacher = torch.tensor([[[2.0, 1.0], [6.0, 0.0]]])
    # token 0: (0 + 1) / 2 = 0.5; token 1: (0 + 4) / 2 = 2 -> mean 1.25
    assert close(hidden_mse(student, teacher, projection=proj), 1.25)


def test_hidden_mse_matches_mse_loss_when_unmasked():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    assert torch.allclose(hidden_mse(s, t), nn.functional.mse_loss(s, t))


def test_hidden_mse_shape_errors():
    with pytest.raises(InputError, match=r"\(2, 5, 3\).*\(2, 5, 4\).*projection"):
        hidden_mse(torch.zeros(2, 5, 3), torch.zeros(2, 5, 4))
    with pytest.raises(InputError, match=r"\(2, 5, 4\).*\(2, 6, 4\)"):
        hidden_mse(torch.zeros(2, 5, 4), torch.zeros(2, 6, 4))
    with pytest.raises(InputError, match=r"\(2, 6\)"):
        hidden_mse(torch.zeros(2, 5, 4), torch.zeros(2, 5, 4), torch.ones(2, 6))


def test_projection_learns():
    torch.manual_seed(1)
    student = torch.randn(4, 6, 3)
    true_map = torch.randn(3, 5)
    teacher = student @ true_map + 0.01 * torch.randn(4, 6, 5)
    mask = torch.ones(4, 6)
    mask[:, 4:] = 0
    proj = nn.Linear(3, 5)
    opt = torch.optim.Adam(proj.parameters(), lr=0.05)
    start = hidden_mse(student, teacher, mask, proj).item()
    for _ in range(60):
        opt.zero_grad()
        loss = hidden_mse(student, teacher, mask, proj)
        loss.backward()
        opt.step()
    end = hidden_mse(student, teacher, mask, proj).item()
    assert end < 0.2 * start


# ---------------------------------------------------------------- attention scores
def test_attention_mse_by_hand_skips_masked_scores():
    student = torch.tensor([[[[1.0, 2.0], [3.0, NEG]]]], requires_grad=True)
    teacher = torch.tensor([[[[0.0, 2.0], [3.0, float("-inf")]]]])
    # valid entries (0,0), (0,1), (1,0): (1 - 0)^2, 0, 0 -> 1/3; (1,1) is masked on both sides
    loss = attention_score_mse(student, teacher)
    assert close(loss, 1 / 3)
    loss.backward()
    assert torch.isfinite(student.grad).all() and student.grad[0, 0, 1, 1] == 0


def test_attention_mse_key_padding_mask_removes_queries_and_keys():
    student = torch.tensor([[[[1.0, 5.0], [7.0, 9.0]]]])
    teacher = torch.zeros(1, 1, 2, 2)
    # token 1 padded: only (0,0) remains -> 1^2 = 1
    assert close(attention_score_mse(student, teacher, torch.tensor([[1, 0]])), 1.0)
    # a pair mask keeps exactly the marked entries: (0,1) and (1,0) -> (25 + 49) / 2 = 37
    pair = torch.tensor([[[0, 1], [1, 0]]])
    assert close(attention_score_mse(student, teacher, pair), 37.0)


def test_attention_mse_block_masked_student_ignores_teacher_there():
    # a split student's lower layer cannot attend across segments; the teacher can
    student = torch.tensor([[[[1.0, NEG], [NEG, 1.0]]]])
    teacher = torch.tensor([[[[1.0, 8.0], [8.0, 3.0]]]])
    # only the diagonal compares: (0 + 4) / 2 = 2
    assert close(attention_score_mse(student, teacher), 2.0)


def test_attention_mse_heads():
    student = torch.tensor([[[[1.0]], [[3.0]]]])  # two heads, average 2
    teacher = torch.tensor([[[[5.0]]]])  # one head
    with pytest.raises(InputError, match="average_heads"):
        attention_score_mse(student, teacher)
    # (2 - 5)^2 = 9
    assert close(attention_score_mse(student, teacher, average_heads=True), 9.0)
    # head by head with equal counts: ((1-5)^2 + (3-5)^2) / 2 = 10
    assert close(attention_score_mse(student, torch.full((1, 2, 1, 1), 5.0)), 10.0)


def test_attention_mse_matches_mse_loss_when_unmasked():
    torch.manual_seed(2)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.allclose(attention_score_mse(s, t), nn.functional.mse_loss(s, t))


def test_attention_mse_shape_errors():
    with pytest.raises(InputError, match=r"\(1, 2, 3, 3\).*\(1, 2, 4, 4\)"):
        attention_score_mse(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4, 4))
    with pytest.raises(InputError, match=r"\[B, heads"):
        attention_score_mse(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3))
    with pytest.raises(InputError, match=r"mask has shape \(1, 5\)"):
        attention_score_mse(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3), torch.ones(1, 5))


# ---------------------------------------------------------------- module
def _states(seed: int, batch: int, seq: int, width: int, layers: int, heads: int):
    g = torch.Generator().manual_seed(seed)
    hidden = [torch.randn(batch, seq, width, generator=g) for _ in range(layers + 1)]
    scores = [torch.randn(batch, heads, seq, seq, generator=g) for _ in range(layers)]
    return hidden, scores


def test_module_uses_the_layer_map_and_its_projections():
    torch.manual_seed(3)
    module = IntermediateDistillation(4, 6, n_student_layers=2, n_teacher_layers=4)
    assert module.layer_map == [0, 2, 4]
    s_hidden, s_att = _states(10, 2, 5, 4, 2, 3)
    t_hidden, t_att = _states(11, 2, 5, 6, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    s_att = [a.masked_fill(mask[:, None, None, :] == 0, NEG) for a in s_att]
    terms = module(s_hidden, t_hidden, s_att, t_att, mask)
    assert set(terms) == {"embedding", "hidden", "attention"}
    emb = hidden_mse(s_hidden[0], t_hidden[0], mask, module.embedding_projection)
    hid = sum(hidden_mse(s_hidden[m], t_hidden[2 * m], mask, module.hidden_projection) for m in (1, 2))
    # attentions are 0-based: student layer m -> teacher layer 2m -> t_att[2m - 1]
    att = sum(attention_score_mse(s_att[m - 1], t_att[2 * m - 1], mask) for m in (1, 2))
    assert torch.allclose(terms["embedding"], emb)
    assert torch.allclose(terms["hidden"], hid)
    assert torch.allclose(terms["attention"], att)
    assert all(torch.isfinite(v) for v in terms.values())


def test_module_gradients_reach_student_and_projections_not_teacher():
    module = IntermediateDistillation(4, 6, 2, 4)
    s_hidden, s_att = _states(12, 2, 5, 4, 2, 3)
    t_hidden, t_att = _states(13, 2, 5, 6, 4, 3)
    s_hidden = [h.requires_grad_() for h in s_hidden]
    s_att = [a.requires_grad_() for a in s_att]
    t_hidden = [h.requires_grad_() for h in t_hidden]
    t_att = [a.requires_grad_() for a in t_att]
    sum(module(s_hidden, t_hidden, s_att, t_att).values()).backward()
    assert all(h.grad is not None for h in s_hidden + s_att)
    assert module.hidden_projection.weight.grad is not None
    assert module.embedding_projection.weight.grad is not None
    assert all(t.grad is None for t in t_hidden + t_att)


def test_module_input_and_config_errors():
    module = IntermediateDistillation(4, 6, 2, 4)
    s_hidden, s_att = _states(14, 1, 3, 4, 2, 2)
    t_hidden, t_att = _states(15, 1, 3, 6, 4, 2)
    with pytest.raises(InputError, match="expected 3 student and 5 teacher hidden states"):
        module(s_hidden[:2], t_hidden, s_att, t_att)
    with pytest.raises(InputError, match="attention"):
        module(s_hidden, t_hidden)
    with pytest.raises(InputError, match="expected 2 student and 4 teacher attention"):
        module(s_hidden, t_hidden, s_att, t_att[:3])
    no_att = IntermediateDistillation(4, 6, 2, 4, attention=False)
    assert set(no_att(s_hidden, t_hidden)) == {"embedding", "hidden"}
    with pytest.raises(ConfigError, match="layer_map"):
        IntermediateDistillation(4, 6, 2, 4, layer_map=[0, 2])
    with pytest.raises(ConfigError, match="layer_map"):
        IntermediateDistillation(4, 6, 2, 4, layer_map=[0, 2, 5])

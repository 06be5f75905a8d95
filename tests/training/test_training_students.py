"""Students made of a subset of the teacher's layers."""

from __future__ import annotations

import pytest
import torch

from lateint.errors import ConfigError
from lateint.ranker import SplitRanker
from lateint.training.students import kept_layer_map, select_layers, student_from_teacher


def test_select_layers():
    assert select_layers(6, "every_other") == [1, 3, 5]
    assert select_layers(5, "every_other") == [0, 2, 4]
    assert select_layers(6, "first_k", k=2) == [0, 1]
    assert select_layers(6, [0, 4]) == [0, 4]
    assert kept_layer_map([1, 3, 5]) == [0, 2, 4, 6]
    for bad in ([], [3, 1], [6]):
        with pytest.raises(ConfigError):
            select_layers(6, bad)
    with pytest.raises(ConfigError):
        select_layers(6, "first_k")


@pytest.mark.parametrize("selection", ["every_other", [0, 3]])
def test_kept_layers_equal_the_teachers_layers(teacher_model, selection):
    teacher = SplitRanker.from_pretrained(teacher_model, max_query_length=12, max_doc_length=24)
    student = student_from_teacher(teacher, selection, split=1)
    kept = select_layers(4, selection)
    assert student.num_layers == len(kept) == student.config.encoder.num_layers
    assert student.encoder.backbone.config.num_hidden_layers == len(kept)
    assert teacher.num_layers == 4  # the teacher is untouched
    for s_layer, t_index in zip(student.encoder.layers, kept):
        t_state = teacher.encoder.layers[t_index].state_dict()
        for name, value in s_layer.state_dict().items():
            assert torch.equal(value, t_state[name]), name
        assert s_layer is not teacher.encoder.layers[t_index]
    for name, value in student.head.state_dict().items():
        assert torch.equal(value, teacher.head.state_dict()[name])
    scores = student.score(["what is a lobster roll"] * 2, ["a sandwich", "a crustacean"])
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_saved_student_loads_with_its_depth(teacher_model, tmp_path):
    teacher = SplitRanker.from_pretrained(teacher_model, max_query_length=12, max_doc_length=24)
    student = student_from_teacher(teacher, "first_k", k=3, split=2)
    student.save_pretrained(tmp_path / "s")
    loaded = SplitRanker.from_pretrained(tmp_path / "s")
    assert loaded.num_layers == 3 and loaded.split == 2
    texts = (["what causes rain"] * 2, ["rain falls from clouds", "a lobster"])
    assert torch.allclose(loaded.score(*texts), student.score(*texts), atol=1e-6)

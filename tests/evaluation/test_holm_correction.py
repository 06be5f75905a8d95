"""Holm-Bonferroni and Bonferroni adjustments, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest

from lateint.errors import InputError
from lateint.evaluation import adjust_p_values


def test_holm_by_hand():
    # Sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06).
    assert adjust_p_values([0.01, 0.04, 0.03, 0.005], "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_counts_undefined_tests():
    assert adjust_p_values([0.6, float("nan")], "holm") == pytest.approx([1.0, 1.0])
    assert adjust_p_values([0.02, float("nan")], "holm") == pytest.approx([0.04, 1.0])


def test_bonferroni_and_none():
    assert adjust_p_values([0.01, 0.3], "bonferroni") == pytest.approx([0.02, 0.6])
    assert adjust_p_values([0.01, 0.3], "none") == [0.01, 0.3]
    assert adjust_p_values([], "holm") == []


def test_holm_is_never_below_the_raw_p_value_nor_above_bonferroni():
    p_values = [0.001, 0.2, 0.013, 0.04, 0.5, 0.0004]
    holm = adjust_p_values(p_values, "holm")
    bonferroni = adjust_p_values(p_values, "bonferroni")
    assert all(p <= h <= b or math.isclose(h, b) for p, h, b in zip(p_values, holm, bonferroni))


def test_bad_input():
    with pytest.raises(InputError, match="correction"):
        adjust_p_values([0.1], "fdr")
    with pytest.raises(InputError, match="\\[0, 1\\]"):
        adjust_p_values([1.5], "holm")

"""Hand-checked length batching."""

from lateint.batching import length_batches


def test_batches_close_on_size_or_length_growth():
    lengths = [10, 11, 12, 13, 30, 31, 100]
    order = list(range(7))
    # 10..12 fit under 10 * 1.2 = 12; 13 opens a batch; 30 > 13 * 1.2; 100 > 30 * 1.2.
    assert length_batches(order, lengths, max_items=8) == [[0, 1, 2], [3], [4, 5], [6]]
    assert length_batches(order, lengths, max_items=2, max_growth=100) == [[0, 1], [2, 3], [4, 5], [6]]
    assert length_batches([], [], max_items=4) == []

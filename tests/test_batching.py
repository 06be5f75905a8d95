"""Hand-checked length batching."""

from lateint.batching import length_batches


def test_batches_close_on_size_or_length_growth():
    lengths = [10, 11, 12, 13, 30, 31, 100]
    order = list(range(7))
    # 10..12 fit under 10 * 1.2 = 12; 13 opens a batch; 30 > 13 * 1.2; 100 > 30 * 1.2.
    assert length_batches(order, lengths, max_items=8) == [[0, 1, 2], [3], [4, 5], [6]]
    assert length_batches(order, lengths, max_items=2, max_growth=100) == [[0, 1], [2, 3], [4, 5], [6]]
    assert length_batches([], [], max_items=4) == []


def test_batches_close_on_padded_rows():
    lengths = [10, 20, 30, 40]
    # max_tokens=60: [10, 20] pads to 2 * 20 = 40; adding 30 would pad to 90 > 60; [30] then 2 * 40 = 80 > 60.
    assert length_batches(list(range(4)), lengths, max_items=8, max_growth=100, max_tokens=60) == [[0, 1], [2], [3]]
    # A single item longer than the budget still forms its own batch instead of being dropped.
    assert length_batches([0], [500], max_items=8, max_tokens=60) == [[0]]


def test_packed_batches_close_on_summed_rows():
    lengths = [10, 20, 30, 40]
    # Packed rows are summed, not padded: 10 + 20 + 30 = 60 fits a budget of 60, adding 40 would not.
    assert length_batches(list(range(4)), lengths, max_items=8, max_growth=100, max_tokens=60, packed=True) == [[0, 1, 2], [3]]
    # The same budget padded: [10, 20] pads to 40, 3 * 30 = 90 > 60.
    assert length_batches(list(range(4)), lengths, max_items=8, max_growth=100, max_tokens=60) == [[0, 1], [2], [3]]

"""Loss curves from loss logs, and clear errors for logs that are not."""

from __future__ import annotations

import json

import pytest

from lateint.errors import InputError
from lateint.training.curves import plot_loss_curve, read_loss_log


def test_a_dial_log_is_drawn(tmp_path):
    log = tmp_path / "loss_log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 2.0 / i, "hard": 1.5 / i, "lr": 1e-4, "split": i % 3,
                                       "seconds": 0.1 * i}) + "\n" for i in range(1, 31)))
    out = plot_loss_curve(log, tmp_path / "curve.png")
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5000
    assert [r["step"] for r in read_loss_log(log)] == list(range(1, 31))
    with pytest.raises(InputError, match="window=0"):
        plot_loss_curve(log, tmp_path / "curve.png", window=0)


@pytest.mark.parametrize("text,match", [("", "no records"), ('{"loss": 1.0}\n', ":1 is not a loss-log record"),
                                        ("not json\n", ":1 is not a loss-log record")])
def test_bad_logs_are_named(tmp_path, text, match):
    log = tmp_path / "loss_log.jsonl"
    log.write_text(text)
    with pytest.raises(InputError, match=match):
        read_loss_log(log)
    with pytest.raises(InputError, match="no loss log"):
        read_loss_log(tmp_path / "missing.jsonl")

"""Every recipe of the documentation runs, on tiny models and the local test collections.

The scripts under ``docs/recipes`` are the code the recipe pages show (included, not copied);
here their variables point them at tiny models and small depths, and their outputs are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

DL19_QUERIES = 43


def _run_lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


def test_evaluate_a_cross_encoder_across_l(run_recipe, tiny_model, tmp_path):
    out = run_recipe("evaluate_across_l.sh", MODEL=tiny_model("bert", 2, seq_cls=True), SPLITS="0 1", DEPTH=3)
    for split in (0, 1):
        lines = _run_lines(tmp_path / "out" / f"L{split}.trec")
        assert len({line[0] for line in lines}) == DL19_QUERIES and len(lines) == 3 * DL19_QUERIES
    table = (tmp_path / "out" / "table.md").read_text()
    assert "L0" in table and "L1" in table and "nDCG@10" in table and table in out


def test_train_per_l_models_and_a_dial(run_recipe, tiny_model, tmp_path):
    run_recipe("per_l_and_dial.sh", MODEL=tiny_model("bert", 2), SPLITS="0 1 2", STEPS=2, EVERY=1,
               MAX_QUERIES=20, DEPTH=3)
    out = tmp_path / "out"
    for name in ("per-L-0", "per-L-1", "per-L-2", "dial"):
        assert (out / name / "best" / "config.json").is_file(), name
        assert json.loads((out / name / "best.json").read_text())["step"] in (1, 2)
    results = json.loads((out / "sweep" / "results.json").read_text())
    text = json.dumps(results)
    assert "per-L L=1" in text and "dial" in text
    assert (out / "sweep" / "pareto.png").is_file() and "nDCG@10" in (out / "sweep" / "table.md").read_text()

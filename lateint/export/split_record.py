"""The split a model was saved at, recorded in ``config.json`` where other libraries' users read it.

``transformers`` and sentence-transformers ignore the record and run every layer jointly (L = 0):
a ``cls`` model trained at L > 0 is then a different model. The record lets people (and lateint)
tell: ``config.json`` gains ``"lateint": {"split": L, "num_layers": T, "head": ..., "layout": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The key of the record in ``config.json``.
CONFIG_KEY = "lateint"


def split_summary(ranker) -> dict:
    """What the record holds: split, number of layers, head and layout."""
    c = ranker.config
    summary = {"split": ranker.split, "num_layers": ranker.num_layers, "head": c.head.name, "layout": c.sides.layout}
    if c.head.name == "twin":
        summary.update(pooling=c.head.pooling, crossing=c.head.crossing)
    return summary


def record_split(ranker, folder: str | Path) -> None:
    """Add the ranker's split to ``folder/config.json`` (written by ``transformers`` just before)."""
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config[CONFIG_KEY] = split_summary(ranker)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

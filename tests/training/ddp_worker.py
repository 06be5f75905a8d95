"""One process of a data-parallel training run, started by ``torchrun`` from
``test_data_parallel.py``: ``ddp_worker.py CONFIG.toml GROUPS.json``.

Trains as the config says on the groups in the JSON file; the main process writes
``world.json`` (how many processes took part, and which backend joined them) into the output
folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lateint.training.config import TrainConfig
from lateint.training.groups import TrainingGroup
from lateint.training.trainer import Trainer


def main(config_path: str, groups_path: str) -> int:
    config = TrainConfig.load(config_path)
    groups = [TrainingGroup(**{k: tuple(v) if isinstance(v, list) else v for k, v in g.items()})
              for g in json.loads(Path(groups_path).read_text())]
    trainer = Trainer(config, groups)
    trainer.train()
    state = trainer.accelerator.state
    if trainer.accelerator.is_main_process:
        world = {"processes": state.num_processes, "distributed_type": str(state.distributed_type),
                 "backend": state.backend}
        (Path(config.output) / "world.json").write_text(json.dumps(world))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

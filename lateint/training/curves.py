"""Loss curves of a training run, drawn from its JSONL loss log: :func:`plot_loss_curve`."""

from __future__ import annotations

import json
from pathlib import Path

from lateint.errors import InputError
from lateint.training.validation import DEV_BY_SPLIT_KEY, DEV_LOG_KEY as DEV_KEY

#: Fields of a loss-log record that are not loss terms.
NOT_LOSSES = {"step", "lr", "split", "seconds", DEV_KEY, DEV_BY_SPLIT_KEY}


def read_loss_log(path: str | Path) -> list[dict]:
    """The records of a loss log (one JSON object per line, as the trainer writes them).

    Raises:
        InputError: the file is missing, empty, or has a line that is not a JSON record with a step.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no loss log at {path}: train first, or name the run's loss_log.jsonl.")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            int(row["step"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number} is not a loss-log record ({exc}).") from None
        rows.append(row)
    if not rows:
        raise InputError(f"the loss log {path} has no records.")
    return rows


def plot_loss_curve(loss_log: str | Path, path: str | Path, *, window: int = 10) -> Path:
    """Draw every loss term of ``loss_log`` against the step into the PNG ``path``.

    Each term is drawn raw (faint) and as a moving average over ``window`` steps; the learning
    rate goes on a second panel, and in dial mode the split of each step is marked on it. Dev
    nDCG@10, where the run validated, is drawn against its own axis on the loss panel (with
    several validation splits, their mean solid and each split dashed).
    Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if window < 1:
        raise InputError(f"window={window} must be at least 1 step.")
    rows = read_loss_log(loss_log)
    steps = [r["step"] for r in rows]
    terms = [k for k in rows[0] if k not in NOT_LOSSES and isinstance(rows[0][k], (int, float))]
    if len(terms) == 2 and "loss" in terms:  # one term: the total is that term, drawn once
        terms = ["loss"]
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for term in terms:
        values = [r.get(term, float("nan")) for r in rows]
        line, = ax.plot(steps, values, alpha=0.25, linewidth=1)
        recent = [values[max(0, i - window + 1): i + 1] for i in range(len(values))]
        smooth = [sum(v) / len(v) for v in recent]
        ax.plot(steps, smooth, color=line.get_color(), label=term, linewidth=1.8)
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    dev = [(r["step"], r[DEV_KEY]) for r in rows if isinstance(r.get(DEV_KEY), (int, float))]
    if dev:
        ax_dev = ax.twinx()
        dev_line, = ax_dev.plot([s for s, _ in dev], [v for _, v in dev], color="black", marker="o",
                                markersize=3, linewidth=1.4)
        ax_dev.set_ylabel("dev nDCG@10")
        by_split = [(r["step"], r[DEV_BY_SPLIT_KEY]) for r in rows if isinstance(r.get(DEV_BY_SPLIT_KEY), dict)]
        handles.append(dev_line)
        labels.append("dev nDCG@10" + (" (mean over splits)" if by_split else ""))
        for split in sorted({L for _, values in by_split for L in values}, key=int):
            points = [(s, values[split]) for s, values in by_split if split in values]
            split_line, = ax_dev.plot([s for s, _ in points], [v for _, v in points], linestyle="--",
                                      marker=".", markersize=3, linewidth=0.9)
            handles.append(split_line)
            labels.append(f"dev nDCG@10, L={split}")
    ax.legend(handles, labels, fontsize=8)
    ax_lr.plot(steps, [r.get("lr", float("nan")) for r in rows], color="grey")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("optimizer step")
    splits = {r.get("split") for r in rows}
    if len(splits) > 1:  # dial mode: which split each step trained
        twin = ax_lr.twinx()
        twin.scatter(steps, [r.get("split") for r in rows], s=6, color="tab:red")
        twin.set_ylabel("split L", color="tab:red")
    fig.suptitle(f"{Path(loss_log).parent.name}: {len(rows)} steps")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

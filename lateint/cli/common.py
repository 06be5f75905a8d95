"""Arguments that several commands share: which model, at which split, with which head."""

from __future__ import annotations

import argparse

from lateint.checkpoints import DEFAULT_MODEL
from lateint.config import CROSSINGS, HEADS, LAYOUTS, POOLINGS
from lateint.modeling.linear_kernels import QUANTIZATIONS
from lateint.modeling.representations import STORAGES
from lateint.precision import DTYPES

#: The document cache precision every command uses unless told otherwise.
DEFAULT_STORAGE = "fp16"


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (argparse's error names the option)."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _int_at_least(text, 0, "a non-negative integer")


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model --split --head --pooling --crossing --layout --num-layers --max-*-length --device``."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", default=DEFAULT_MODEL, help="hub id or folder (default: %(default)s, packaged)")
    g.add_argument("--split", type=int, default=None, help="L, lower layers run separately (default: the checkpoint's)")
    g.add_argument("--head", default=None, choices=HEADS)
    g.add_argument("--pooling", default=None, choices=POOLINGS)
    g.add_argument("--crossing", default=None, choices=CROSSINGS)
    g.add_argument("--layout", default=None, choices=LAYOUTS)
    g.add_argument("--num-layers", type=int, default=None, help="use only the first T layers")
    g.add_argument("--max-query-length", type=int, default=None)
    g.add_argument("--max-doc-length", type=int, default=None)
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    add_dtype_argument(g)
    g.add_argument("--seed", type=int, default=0, help="seed for weights not in the checkpoint (default 0)")
    g.add_argument("--quantization", default=None, choices=QUANTIZATIONS,
                   help="int8: dynamic int8 Linear layers at CPU inference (faster; scores change slightly); "
                        "int8-except-ffn-output: the same with each feed-forward output projection in fp32 "
                        "(closer to fp32); default: the checkpoint's setting, else none")


def add_dtype_argument(parser, default: str | None = None, what: str = "the checkpoint's setting, else fp32") -> None:
    """``--dtype``, which every command that runs a model takes."""
    parser.add_argument("--dtype", default=default, choices=DTYPES,
                        help="precision the model runs in: fp32 (exact), bf16, fp16, or auto (bf16 on CUDA and on "
                             f"CPUs with AMX or AVX512-BF16, else fp32); default: {what}")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable), which every config-driven command takes."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config setting, typed and checked as in the file (repeatable), e.g. "
                             "--set data.shuffle_buffer=1000 --set optim.lr=1e-5; a bare key names the one table "
                             "that has it (lr = optim.lr)")


def add_run_arguments(parser: argparse.ArgumentParser, batch_size: int = 128) -> None:
    """``--batch-size`` and ``--no-progress``, which every command that runs a model takes."""
    g = parser.add_argument_group("running")
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="items per forward pass (default %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_skip_empty_argument(parser: argparse.ArgumentParser) -> None:
    """``--skip-empty``, for commands that encode a whole collection."""
    parser.add_argument("--skip-empty", action="store_true",
                        help="leave out documents whose text is empty (they cannot be encoded) and say which; "
                             "without it, such a document stops the command")


def print_skipped(skipped: list[str]) -> None:
    """One line naming the documents ``--skip-empty`` left out (the first ten of them)."""
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"left out {len(skipped)} document(s) with an empty text (--skip-empty): {shown}")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` alone, for commands whose model comes from a config file."""
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def load_ranker(args: argparse.Namespace):
    """The :class:`~lateint.SplitRanker` the model arguments describe."""
    import torch

    from lateint import SplitRanker

    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    return SplitRanker.from_pretrained(
        args.model, split=args.split, head=args.head, pooling=args.pooling, crossing=args.crossing,
        layout=args.layout, num_layers=args.num_layers, max_query_length=args.max_query_length,
        max_doc_length=args.max_doc_length, device=device, seed=args.seed,
        quantization=getattr(args, "quantization", None), dtype=getattr(args, "dtype", None),
    )


def model_label(name_or_path: str) -> str:
    """A short label for a model: the last path component or hub name."""
    return str(name_or_path).rstrip("/").split("/")[-1]

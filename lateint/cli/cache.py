"""``lateint cache build | merge | info | verify``."""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lateint.cli.common import (DEFAULT_STORAGE, STORAGES, add_model_arguments, add_run_arguments,
                                add_skip_empty_argument, load_ranker, positive_int, print_skipped)
from lateint.errors import ConfigError

if TYPE_CHECKING:
    from lateint.cache.compression import StateCompressor


def add_cache_command(subparsers) -> None:
    p = subparsers.add_parser("cache", help="build, inspect and verify document caches")
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="encode a collection's documents once and store them",
                       description="Compute the ranker's document representations at its split and store them. "
                                   "Rerunning the same command resumes an interrupted build.")
    add_model_arguments(b)
    b.add_argument("--dataset", required=True, help="ir_datasets id whose documents are cached")
    b.add_argument("--first-stage", default=None,
                   help="cache only the candidates of this run (a run name or TREC file); default: every document")
    b.add_argument("--depth", type=positive_int, default=100, help="candidates per query with --first-stage (default 100)")
    b.add_argument("--out", required=True, type=Path, metavar="DIR", help="cache folder")
    b.add_argument("--storage", default=DEFAULT_STORAGE, choices=STORAGES, help="precision (default %(default)s)")
    b.add_argument("--precompute", default="none", choices=("none", "kv"),
                   help="also store the first joint layer's document keys/values (0 < L < T)")
    b.add_argument("--compress-dim", type=positive_int, default=None,
                   help="train a PreTTR compressor to this many dims on the first documents and store compressed states")
    b.add_argument("--compress-docs", type=positive_int, default=2000, help="documents the compressor is trained on")
    b.add_argument("--compress-steps", type=positive_int, default=400)
    b.add_argument("--compressor", type=Path, default=None, metavar="DIR",
                   help="store states compressed by the compressor saved in DIR (e.g. another build's "
                        "CACHE/compressor) instead of training one: builds that must be merged share it")
    b.add_argument("--compress-side-info", action="store_true",
                   help="the compressor also reads each token's static embedding (SDR); the cache then stores the "
                        "token ids and types too (3 bytes per token)")
    add_skip_empty_argument(b)
    add_run_arguments(b, batch_size=64)
    b.add_argument("--num-shards", type=int, default=None,
                   help="build only one of N disjoint shares of the documents (by a hash of the doc id), as a part "
                        "for `lateint cache merge`; under torchrun/accelerate each rank takes its share by itself")
    b.add_argument("--shard-index", type=int, default=None, help="which share, 0..N-1 (with --num-shards)")
    b.set_defaults(func=run_build)

    m = sub.add_parser("merge", help="join the parts of a sharded build into one cache",
                       description="Check that the parts were built with the same ranker and settings and cover "
                                   "every document exactly once, then join them into one cache (the shard files "
                                   "are hard-linked, not copied, where the file system allows).")
    m.add_argument("--out", required=True, type=Path, help="the merged cache folder (new or empty)")
    m.add_argument("parts", nargs="+", type=Path, help="the part folders (one per --shard-index)")
    m.set_defaults(func=run_merge)

    i = sub.add_parser("info", help="sizes and settings of a cache")
    i.add_argument("path", type=Path)
    i.add_argument("--json", action="store_true", help="print the full JSON")
    i.set_defaults(func=run_info)

    v = sub.add_parser("verify", help="check every checksum and every manifest field")
    v.add_argument("path", type=Path)
    v.set_defaults(func=run_verify)


def _documents(args, skipped: list[str]):
    """The documents to cache and how many there are (for progress); ``--skip-empty`` leaves the empty ones out
    (their ids are added to ``skipped``)."""
    from lateint.data import load_dataset
    from lateint.pipeline.rerank_run import candidate_docs
    from lateint.retrieval import non_empty

    ds = load_dataset(args.dataset)
    if args.first_stage is None:
        docs, total = ds.iter_docs(), ds.doc_count()
    else:
        ids = candidate_docs(ds.candidates(args.first_stage, args.depth))
        texts = ds.doc_text(ids)
        docs, total = ((d, texts[d]) for d in ids), len(ids)
    return (non_empty(docs, skipped) if args.skip_empty else docs), total


def run_build(args: argparse.Namespace) -> int:
    from lateint.cache.shards import check_share, launcher_world, rank_part_path

    if (args.num_shards is None) != (args.shard_index is None):
        raise ConfigError("give --num-shards and --shard-index together (or neither)")
    _check_compressor_options(args)
    rank, world = launcher_world()
    if args.num_shards is not None:
        check_share(args.num_shards, args.shard_index)
        if args.compress_dim:
            print(f"note: this share trains its own compressor; build the other shares with --compressor "
                  f"{args.out / 'compressor'} so that the parts can be merged")
        return _build(args, args.out, args.num_shards, args.shard_index)
    if world == 1:
        return _build(args, args.out, 1, 0)
    # Launched as `world` ranks: each builds its share beside --out, the main rank merges them.
    import torch

    if args.device is None and torch.cuda.is_available():
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()}"
    ranker = None
    if args.compress_dim:
        from lateint.cache.doc_cache import COMPRESSOR_FOLDER

        # one compressor for every share (trained once, by the main rank), or the parts could not be merged
        shared = rank_part_path(args.out, 0, world).parent / COMPRESSOR_FOLDER
        if rank == 0 and _started_compressor(shared, args) is None:
            ranker = load_ranker(args)
            docs, _ = _documents(args, skipped=[])  # each share's build reports what --skip-empty leaves out
            _trained_compressor(args, ranker, [text for _, text in _head(docs, args)]).save(shared)
        _barrier()
        args = argparse.Namespace(**{**vars(args), "compressor": shared, "compress_dim": None,
                                     "compress_side_info": False})
    part = rank_part_path(args.out, rank, world)
    _build(args, part, world, rank, ranker)
    parts = [rank_part_path(args.out, r, world) for r in range(world)]
    _barrier()
    if rank == 0:
        _merge(args.out, parts)
    _barrier()
    import torch.distributed as dist

    dist.destroy_process_group()
    return 0


def _barrier() -> None:
    """Wait for every rank (gloo; a share may take hours, so the timeout is generous)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    dist.barrier()


def _merge(out: Path, parts: list[Path]) -> None:
    from lateint.cache.merge import merge_parts, merged_from_same_parts

    if merged_from_same_parts(out, parts):
        print(f"{out}: already merged from these parts")
        return
    report = merge_parts(out, parts)
    print(f"{out}: merged {report.parts} parts, {report.documents} documents in {report.shards} shards "
          f"({report.linked} files linked, {report.copied} copied)")


def run_merge(args: argparse.Namespace) -> int:
    _merge(args.out, list(args.parts))
    return 0


def _check_compressor_options(args: argparse.Namespace) -> None:
    from lateint.cache.compression import StateCompressor

    if args.compressor is not None and (args.compress_dim or args.compress_side_info):
        raise ConfigError("--compressor uses a saved compressor and --compress-dim/--compress-side-info train a new "
                          "one: give one or the other.")
    if args.compress_side_info and not args.compress_dim:
        raise ConfigError("--compress-side-info is an option of the compressor: give --compress-dim E as well.")
    if args.compressor is not None and not StateCompressor.saved_in(args.compressor):
        raise ConfigError(f"--compressor {args.compressor} holds no saved compressor (compressor.json); give a "
                          "compressed cache's compressor folder.")


def _head(docs, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The first ``--compress-docs`` documents of ``docs``: the sample a compressor is fitted to."""
    return list(itertools.islice(docs, args.compress_docs))


def _trained_compressor(args: argparse.Namespace, ranker, sample: list[str]) -> StateCompressor:
    """A compressor of ``--compress-dim`` dims fitted to the texts ``sample`` (seeded)."""
    from lateint.cache.compression import train_compressor

    compressor, info = train_compressor(ranker, sample, args.compress_dim, steps=args.compress_steps, seed=args.seed,
                                        side_info=args.compress_side_info, progress=not args.no_progress)
    print(f"compressor e={info.dim}: reconstruction MSE {info.initial_mse:.4f} -> {info.final_mse:.4f} "
          f"on {info.tokens} token states of {info.documents} documents")
    return compressor


def _started_compressor(folder: Path, args: argparse.Namespace) -> StateCompressor | None:
    """The compressor an interrupted build saved in ``folder`` (None if none), if it has the asked-for settings."""
    from lateint.cache.compression import StateCompressor

    if not StateCompressor.saved_in(folder):
        return None
    compressor = StateCompressor.load(folder)
    if (compressor.dim, compressor.side_info) != (args.compress_dim, bool(args.compress_side_info)):
        side = " with side information" if compressor.side_info else ""
        raise ConfigError(f"this build was started with a compressor of {compressor.dim} dims{side} ({folder}); "
                          "rerun it with those settings or build into a new --out.")
    print(f"compressor e={compressor.dim}: the one this build was started with ({folder})")
    return compressor


def _compressor(args: argparse.Namespace, out: Path, ranker, sample: list[str]) -> StateCompressor | None:
    """The compressor a build stores its states with: ``--compressor``'s, the one an interrupted build
    of ``out`` started with, or one newly trained on ``sample``."""
    from lateint.cache.compression import StateCompressor
    from lateint.cache.doc_cache import COMPRESSOR_FOLDER

    if args.compressor is not None:
        return StateCompressor.load(args.compressor)
    if not args.compress_dim:
        return None
    return _started_compressor(out / COMPRESSOR_FOLDER, args) or _trained_compressor(args, ranker, sample)


def _build(args: argparse.Namespace, out: Path, num_shards: int, shard_index: int, ranker=None) -> int:
    from lateint.cache.doc_cache import DocCache
    from lateint.data.datasets import DOC_TEXT

    ranker = ranker if ranker is not None else load_ranker(args)
    skipped: list[str] = []
    docs, total = _documents(args, skipped)
    # the compressor's sample is the stream's head, put back in front: the collection is read once
    head = _head(docs, args) if args.compress_dim else []
    compressor = _compressor(args, out, ranker, [text for _, text in head])
    docs = itertools.chain(head, docs)
    cache = DocCache.build(ranker, docs, out, storage=args.storage, compressor=compressor,
                           precompute=args.precompute, batch_size=args.batch_size, total=total,
                           num_shards=num_shards, shard_index=shard_index, text=DOC_TEXT, progress=not args.no_progress)
    s = cache.last_build
    share = f" (share {shard_index} of {num_shards})" if num_shards > 1 else ""
    print(f"{out}{share}: {len(cache)} documents ({s.documents_added} added, {s.documents_skipped} already there) "
          f"in {s.seconds:.1f} s, {s.docs_per_second:.1f} docs/s, {s.tokens_per_second:.0f} tokens/s")
    if num_shards > 1:  # the empties of the other shares are theirs to report
        from lateint.cache.shards import share_of

        skipped = [doc_id for doc_id in skipped if share_of(doc_id, num_shards) == shard_index]
    print_skipped(skipped)
    _print_info(cache.info())
    return 0


def _print_info(info: dict) -> None:
    print(f"documents: {info['docs']}  shards: {info['shards']}  bytes: {info['bytes']:,}")
    settings = info.get("settings", {})
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "head")
          + (f", computed in {info['dtype']}" if "dtype" in info else ""))
    for name, f in info["fields"].items():
        dims = f["shape"][0] if f["shape"] else 1
        print(f"  {name}: {f['codec']} x {f['shape']}, {f['tokens']:,} tokens, {f['bytes_per_token']:.1f} B/token "
              f"({f['bytes_per_token'] / dims:.3f} B per dim), {f['bytes_per_doc']:.0f} B/doc")


def run_info(args: argparse.Namespace) -> int:
    from lateint.cache.doc_cache import DocCache

    info = DocCache.open(args.path).info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        _print_info(info)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from lateint.cache.doc_cache import DocCache

    result = DocCache.open(args.path).verify()
    print(f"{args.path}: every checksum matches ({', '.join(f'{k} {v}' for k, v in result.items())})")
    return 0

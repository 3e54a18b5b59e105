"""`fastfl data leaf` (also `python -m fastfl.datasets leaf`): build LEAF caches, print per-client statistics."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fastfl.utils.dataset.leaf import (
    NAMES,
    LeafDataMissingError,
    LeafFormatError,
    LeafSplit,
    cache_path,
    open_leaf,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``leaf`` subcommand to `sub`."""
    leaf = sub.add_parser("leaf", help="build the cache of a LEAF data set and print per-client statistics")
    leaf.add_argument("--name", required=True, choices=NAMES, help="the LEAF data set")
    leaf.add_argument(
        "--root", required=True, type=Path, help="folder holding <name>/data/{train,test}/*.json"
    )
    leaf.add_argument("--split", nargs="+", default=["train", "test"], choices=["train", "test"])
    leaf.add_argument(
        "--cache-dir", type=Path, default=None, help="cache folder (default <root>/<name>/data)"
    )
    leaf.add_argument("--rebuild", action="store_true", help="rebuild the cache even if it looks valid")
    leaf.add_argument("--verify", action="store_true", help="read every client, checking its checksum")
    leaf.add_argument("--image-dir", type=Path, default=None, help="CelebA's img_align_celeba folder")
    leaf.add_argument("--image-size", type=int, default=84, help="CelebA image side after resizing")
    leaf.add_argument("--show", type=int, default=20, help="clients to list (0: all)")
    leaf.set_defaults(func=run)
    return leaf


def _summary(split: LeafSplit, seconds: float, built: bool) -> str:
    counts = np.asarray(split.num_samples)
    labels = split.labels()
    classes = np.unique(labels[labels >= 0]).size
    spread = f"min {counts.min()} / mean {counts.mean():.1f} / max {counts.max()}" if counts.size else "none"
    action = "built" if built else "opened"
    return (
        f"{split.name} {split.split}: {len(split)} clients, {int(counts.sum())} samples "
        f"(per client {spread}), {classes} classes"
        + (f", vocabulary {len(split.vocab)}" if split.vocab is not None else "")
        + f"\n  cache {split.path} ({action} in {seconds * 1e3:.1f} ms)"
    )


def _clients(split: LeafSplit, show: int) -> list[str]:
    lines = [f"  {'client':>7}  {'user':<24} {'samples':>8} {'classes':>8}"]
    counts = split.num_samples
    shown = len(split) if show == 0 else min(show, len(split))
    for cid in range(shown):
        y = split.labels(cid)
        lines.append(f"  {cid:>7}  {split.users[cid]:<24} {counts[cid]:>8} {np.unique(y[y >= 0]).size:>8}")
    if shown < len(split):
        lines.append(f"  ... {len(split) - shown} more (--show 0 lists all)")
    return lines


def _leaf(args: argparse.Namespace) -> int:
    for split_name in args.split:
        path = cache_path(args.root, args.name, split_name, args.cache_dir)
        before = path.stat().st_mtime_ns if path.exists() else None
        start = time.perf_counter()
        split = open_leaf(
            args.name,
            args.root,
            split_name,
            cache_dir=args.cache_dir,
            rebuild=args.rebuild,
            image_dir=args.image_dir,
            image_size=args.image_size,
        )
        seconds = time.perf_counter() - start
        built = before is None or path.stat().st_mtime_ns != before
        print(_summary(split, seconds, built))
        if args.verify:
            total = sum(len(split.client(cid)) for cid in range(len(split)))
            print(f"  verified {len(split)} clients, {total} samples: checksums match")
        print("\n".join(_clients(split, args.show)))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``leaf``; return the exit status (2 when the data is missing or malformed)."""
    if args.show < 0:
        print("error: --show must be >= 0", file=sys.stderr)
        return 2
    try:
        return _leaf(args)
    except (LeafDataMissingError, LeafFormatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

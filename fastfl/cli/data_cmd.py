"""`fastfl data`: `leaf` builds LEAF caches; `partition` splits a data set and reports the split."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastfl.errors import ConfigError

__all__ = ["add_parser", "main"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``data`` subcommand (with ``leaf`` and ``partition``) to `sub`."""
    from fastfl.cli import data_leaf

    data = sub.add_parser("data", help="data sets: LEAF caches, partitions", description=__doc__)
    _add_subcommands(data, data_leaf)
    return data


def _add_subcommands(data: argparse.ArgumentParser, data_leaf: Any) -> None:
    inner = data.add_subparsers(dest="data_command", required=True)
    data_leaf.add_parser(inner)
    p = inner.add_parser("partition", help="partition a data set; write the split, its report and plot")
    p.add_argument("--data", default="digits", help="data source, as data.name in a run config")
    p.add_argument("--path", default="", help="data.path (file, LEAF root, torchvision root)")
    p.add_argument(
        "--scheme", default="iid", help="iid, noniid-#label, noniid-labeldir, unbalance, noniid-exdir"
    )
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--dir-alpha", type=float, default=0.5)
    p.add_argument("--major-classes", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="folder for partition.json, .csv, .txt and .png")
    p.set_defaults(func=partition)


def partition(args: argparse.Namespace) -> int:
    """Partition the training set; write ``partition.json`` ({client: indices}) and its report/plot."""
    from fastfl.cli.config import load_config
    from fastfl.cli.experiment import SCHEMES, partition_indices
    from fastfl.cli.sources import check_source, load_data

    pairs = [
        ("data.name", args.data),
        ("data.path", args.path),
        ("partition.scheme", args.scheme),
        ("partition.clients", args.clients),
        ("partition.dir_alpha", args.dir_alpha),
        ("partition.major_classes", args.major_classes),
        ("run.seed", args.seed),
    ]
    cfg = load_config(None, pairs)
    if args.scheme not in SCHEMES[1:]:
        raise ConfigError(f"--scheme: unknown scheme {args.scheme!r}; accepted: {', '.join(SCHEMES[1:])}")
    check_source(cfg["data"])
    data = load_data(cfg["data"], args.seed, args.clients)
    targets = data.train.tensors[1]
    if args.scheme == "natural":
        if data.slices is None:
            raise ConfigError(f"--scheme natural: data {args.data!r} has no per-client split of its own")
        slices = data.slices
    else:
        slices = partition_indices(targets, cfg["partition"], args.seed, data.num_classes)
    stats, written = write_partition(args.out, targets, slices, data.num_classes)
    print(stats)
    print(f"wrote {', '.join(str(w) for w in written)}")
    return 0


def write_partition(
    folder: Path, targets: Any, slices: list[list[int]], classes: int
) -> tuple[Any, list[Path]]:
    """Write ``partition.json`` ({client: indices}), its report (``.txt``, ``.csv``) and plot (``.png``).

    Returns:
        The `PartitionStats` and the files written (no plot without matplotlib).
    """
    from fastfl.utils.dataset import partition_stats, plot_partition

    labels = np.asarray(targets)
    split = {i: np.asarray(s, dtype=np.int64) for i, s in enumerate(slices)}
    stats = partition_stats(split, labels, classes)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "partition.json", folder / "partition.csv", folder / "partition.txt"]
    written[0].write_text(json.dumps({str(i): list(map(int, s)) for i, s in enumerate(slices)}))
    written[1].write_text(stats.to_csv())
    written[2].write_text(str(stats) + "\n")
    try:
        plot_partition(labels, split, folder / "partition.png", num_classes=classes)
        written.append(folder / "partition.png")
    except ImportError:
        pass
    return stats, written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastfl.datasets``: the `fastfl data` subcommands on their own."""
    from fastfl.cli import data_leaf
    from fastfl.cli.run_cmd import ERRORS, report_error

    parser = argparse.ArgumentParser(prog="python -m fastfl.datasets", description=__doc__)
    _add_subcommands(parser, data_leaf)
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        return int(args.func(args))
    except ERRORS as err:
        return report_error(err)


if __name__ == "__main__":
    sys.exit(main())

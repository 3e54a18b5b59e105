"""Hierarchical FedAvg: a top server, 2 schedulers, each with an ordinary and a serial client.

    python examples/hierarchical.py

Seven processes (each scheduler starts two more, its connectors) over three gloo groups: the
upper one (top server + 2 schedulers) and one lower group per scheduler (scheduler + ordinary
client + serial client simulating 10 clients): 22 clients in total, all sampled every round.
`--qsgd 127` has the clients send QSGD-coded deltas; each scheduler decodes them and passes them
up with their delta mark, and the top server adds its model back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _common import (
    common_args,
    dist_args,
    features,
    iid_slices,
    launch_all,
    load_data,
    make_model,
    round_recorder,
    save_flat,
    seed_all,
)
from torch.utils.data import DataLoader, Subset

from fastfl.contrib.compressor import QSGDCompressor
from fastfl.core.client import PassiveClientManager, SGDClientTrainer, SubsetSerialTrainer
from fastfl.core.network import DistNetwork
from fastfl.core.server import SynchronousServerManager, SyncParameterServerHandler
from fastfl.core.server.hierarchical import Scheduler
from fastfl.launch import free_port
from fastfl.utils.progress import RoundReporter

GROUPS, SERIAL = 2, 10


def roles() -> list[list[str]]:
    ports = ",".join(str(free_port()) for _ in range(GROUPS + 1))
    out = [["--role", "top", "--ports", ports]]
    for g in range(1, GROUPS + 1):
        out.append(["--role", "scheduler", "--group", str(g), "--ports", ports])
        out += [["--role", "client", "--group", str(g), "--rank", str(r), "--ports", ports] for r in (1, 2)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = dist_args(common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), rounds=3), 3)
    parser.add_argument("--role", choices=["top", "scheduler", "client"], default=None)
    parser.add_argument("--group", type=int, default=1)
    parser.add_argument("--ports", default=None)
    parser.add_argument(
        "--qsgd",
        type=int,
        default=0,
        metavar="S",
        help="clients send QSGD-coded deltas with S levels (0: raw)",
    )
    args = parser.parse_args(argv)
    if args.role is None:
        return launch_all(argv, __file__, roles(), args.timeout)
    ports = [int(p) for p in args.ports.split(",")]
    seed_all(args.seed, args.threads)
    train, test = load_data(args.data, seed=args.seed)
    model = make_model(features(train))
    t = args.timeout
    if args.role == "top":
        reporter = RoundReporter(
            args.rounds, out=args.out or "runs/hierarchical", title="hierarchical FedAvg"
        )
        hook = round_recorder(test, reporter)
        handler = SyncParameterServerHandler(
            model, args.rounds, 1.0, weighted=args.weighted, seed=args.seed, on_round_end=hook
        )
        SynchronousServerManager(
            DistNetwork(("127.0.0.1", ports[0]), GROUPS + 1, 0, timeout=t), handler
        ).run()
        reporter.close()
        save_flat(model, args.save)
        return 0
    lower = ("127.0.0.1", ports[args.group])
    if args.role == "scheduler":
        upper = DistNetwork(("127.0.0.1", ports[0]), GROUPS + 1, args.group, timeout=t)
        Scheduler(upper, DistNetwork(lower, 3, 0, timeout=t)).run()
        return 0
    slices = iid_slices(len(train), GROUPS * (SERIAL + 1), seed=args.seed)
    first = (args.group - 1) * (SERIAL + 1)
    network = DistNetwork(lower, 3, args.rank, timeout=t)
    if args.rank == 1:
        loader = DataLoader(Subset(train, slices[first]), batch_size=args.batch_size, shuffle=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        trainer = SGDClientTrainer(model, loader, args.epochs, optimizer, torch.nn.CrossEntropyLoss())
    else:
        hyper = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
        trainer = SubsetSerialTrainer(model, train, slices[first + 1 : first + 1 + SERIAL], args=hyper)
    compressor = QSGDCompressor(s=args.qsgd, seed=args.seed + args.group) if args.qsgd else None
    PassiveClientManager(network, trainer, compressor=compressor).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

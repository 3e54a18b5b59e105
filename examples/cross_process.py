"""Cross-process FedAvg: a server and 2 client processes over torch.distributed (gloo, 127.0.0.1).

    python examples/cross_process.py                  # starts all 3 processes itself
    python -m fastfl.launch --nprocs 3 examples/cross_process.py

Each client trains one SGDClientTrainer on its half of the digits; the server samples both each
round, weights FedAvg by their sample counts and prints one line per round.
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
    iid_slices,
    launch_ranks,
    rank_setup,
    round_recorder,
    save_flat,
)
from torch.utils.data import DataLoader, Subset

from fastfl.core.client import PassiveClientManager, SGDClientTrainer
from fastfl.core.server import SynchronousServerManager, SyncParameterServerHandler
from fastfl.utils.progress import RoundReporter


def main(argv: list[str] | None = None) -> int:
    parser = dist_args(common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), rounds=3), 3)
    parser.add_argument("--round-timeout", type=float, default=None, help="server: seconds per round")
    args = parser.parse_args(argv)
    if args.rank is None:
        return launch_ranks(argv, __file__, args)
    train, test, model, network = rank_setup(args)
    if args.rank == 0:
        reporter = RoundReporter(
            args.rounds, out=args.out or "runs/cross_process", title="cross-process FedAvg"
        )
        handler = SyncParameterServerHandler(
            model,
            args.rounds,
            1.0,
            weighted=args.weighted,
            seed=args.seed,
            on_round_end=round_recorder(test, reporter),
        )
        SynchronousServerManager(network, handler, round_timeout=args.round_timeout).run()
        reporter.close()
        save_flat(model, args.save)
        return 0
    shard = iid_slices(len(train), args.world_size - 1, seed=args.seed)[args.rank - 1]
    loader = DataLoader(Subset(train, shard), batch_size=args.batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    trainer = SGDClientTrainer(model, loader, args.epochs, optimizer, torch.nn.CrossEntropyLoss())
    PassiveClientManager(network, trainer).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

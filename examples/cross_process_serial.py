"""Cross-process FedAvg with serial trainers: a server and 2 processes simulating 15 clients each.

    python examples/cross_process_serial.py
    python -m fastfl.launch --nprocs 3 examples/cross_process_serial.py

The 30 clients, their data and the sampling seed are those of ``standalone_fedavg.py --clients
30 --sample-ratio 0.34``, so both runs end with the same global model (up to float rounding).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    common_args,
    dist_args,
    iid_slices,
    launch_ranks,
    rank_setup,
    round_recorder,
    save_flat,
)

from fastfl.core.client import PassiveClientManager, SubsetSerialTrainer
from fastfl.core.server import SynchronousServerManager, SyncParameterServerHandler
from fastfl.utils.progress import RoundReporter


def main(argv: list[str] | None = None) -> int:
    parser = dist_args(common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), rounds=3), 3)
    parser.add_argument("--clients-per-process", type=int, default=15)
    parser.add_argument("--sample-ratio", type=float, default=0.34)
    parser.add_argument("--aggregate", action="store_true", help="clients: average locally, upload one model")
    args = parser.parse_args(argv)
    if args.rank is None:
        return launch_ranks(argv, __file__, args)
    train, test, model, network = rank_setup(args)
    if args.rank == 0:
        reporter = RoundReporter(
            args.rounds, out=args.out or "runs/cross_process_serial", title="serial clients"
        )
        hook = round_recorder(test, reporter)
        handler = SyncParameterServerHandler(
            model, args.rounds, args.sample_ratio, weighted=args.weighted, seed=args.seed, on_round_end=hook
        )
        SynchronousServerManager(network, handler).run()
        reporter.close()
        save_flat(model, args.save)
        return 0
    per = args.clients_per_process
    slices = iid_slices(len(train), per * (args.world_size - 1), seed=args.seed)
    first = per * (args.rank - 1)
    trainer = SubsetSerialTrainer(
        model,
        train,
        slices[first : first + per],
        args={"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr},
        seed=args.seed,
        id_offset=first,
        aggregate=args.aggregate,
    )
    PassiveClientManager(network, trainer).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

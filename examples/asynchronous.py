"""Asynchronous FedAvg (FedAsync): a server and 2 active clients that pull, train and push at will.

    python examples/asynchronous.py
    python -m fastfl.launch --nprocs 3 examples/asynchronous.py

Each client asks for the model, trains on its half of the digits and uploads ``[params, model
time]``; the server mixes each upload in with a staleness-adapted weight and stops after
``--updates`` of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _common import (
    common_args,
    dist_args,
    evaluate,
    iid_slices,
    launch_ranks,
    rank_setup,
    save_flat,
)
from torch.utils.data import DataLoader, Subset

from fastfl.core.client import ActiveClientManager, SGDClientTrainer
from fastfl.core.server import AsynchronousServerManager, AsyncParameterServerHandler
from fastfl.utils.progress import RoundReporter


class AsyncClientTrainer(SGDClientTrainer):
    """Remember the model time the server sent; upload it with the trained parameters."""

    def local_process(self, payload):
        self.time = float(payload[1].item())
        self.train(payload[0])

    @property
    def uplink_package(self):
        return [self.model_parameters, torch.tensor([self.time])]


class ReportingHandler(AsyncParameterServerHandler):
    """Evaluate the global model after every update."""

    def __init__(self, *args, test=None, reporter=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.test, self.reporter, self.start = test, reporter, time.perf_counter()

    def _update_global_model(self, payload):
        super()._update_global_model(payload)
        loss, acc = evaluate(self.model, self.test)
        now = time.perf_counter()
        self.reporter.record(self.time - 1, 1, loss, acc, now - self.start, alpha=self.last_alpha)
        self.start = now


def main(argv: list[str] | None = None) -> int:
    parser = dist_args(common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), rounds=4), 3)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--strategy", default="hinge", choices=["constant", "hinge", "polynomial"])
    args = parser.parse_args(argv)
    if args.rank is None:
        return launch_ranks(argv, __file__, args)
    train, test, model, network = rank_setup(args)
    if args.rank == 0:
        reporter = RoundReporter(
            args.rounds, out=args.out or "runs/asynchronous", title="asynchronous FedAvg"
        )
        handler = ReportingHandler(
            model, args.alpha, args.rounds + 1, args.strategy, a=2, b=1, test=test, reporter=reporter
        )
        AsynchronousServerManager(network, handler).run()
        reporter.close()
        save_flat(model, args.save)
        return 0
    shard = iid_slices(len(train), args.world_size - 1, seed=args.seed)[args.rank - 1]
    loader = DataLoader(Subset(train, shard), batch_size=args.batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    trainer = AsyncClientTrainer(model, loader, args.epochs, optimizer, torch.nn.CrossEntropyLoss())
    ActiveClientManager(network, trainer).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

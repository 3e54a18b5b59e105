"""Issue 12's simulation workloads on FedLab 1.3, run inside `.peers/fedlab13` (see `make peers`).

FedLab 1.3's standalone simulation as its tutorials write it: `SGDSerialClientTrainer` with
`setup_dataset` / `setup_optim`, `SyncServerHandler` (FedAvg of the sampled clients' serialized
parameters) and `StandalonePipeline.main()` driving the rounds. The data set is a `FedDataset`
like FedLab's partitioned MNIST, holding each client's generated samples in memory (FedLab's own
data sets `torch.load` each client's file from disk per round; that cost is left out here).
`evaluate()`, which the pipeline calls after every round, records the time instead of printing.

    .peers/fedlab13/bin/python bench/peers/fedlab13_round.py gemm --rounds 5
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from importlib.metadata import version
from pathlib import Path

import torch
from fedlab.contrib.algorithm.basic_client import SGDSerialClientTrainer
from fedlab.contrib.algorithm.basic_server import SyncServerHandler
from fedlab.contrib.dataset.basic_dataset import BaseDataset, FedDataset
from fedlab.core.standalone import StandalonePipeline
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
from _workload import Runner, Workload, main, mlp


class GeneratedFedDataset(FedDataset):
    """Each client's slice of the generated data, in memory, served as FedLab's data sets serve it."""

    def __init__(self, w: Workload) -> None:
        super().__init__()
        self.num = w.clients
        self.datasets = [BaseDataset(w.x[a:b], w.y[a:b]) for a, b in w.slices]

    def get_dataset(self, id, type="train"):
        return self.datasets[id]

    def get_dataloader(self, id, batch_size=None, type="train"):
        dataset = self.get_dataset(id, type)
        batch_size = len(dataset) if batch_size is None else batch_size
        return DataLoader(dataset, batch_size=batch_size)


class TimedPipeline(StandalonePipeline):
    """FedLab's pipeline; `evaluate` (called after each round) stamps the time."""

    def __init__(self, handler, trainer) -> None:
        super().__init__(handler, trainer)
        self.stamps: list[float] = []

    def evaluate(self) -> None:
        self.stamps.append(time.perf_counter())

    def rounds(self, n: int) -> list[float]:
        """Run n more rounds through `main()`; each round's seconds."""
        self.handler.global_round = self.handler.round + n
        self.stamps = [time.perf_counter()]
        self.main()
        return [b - a for a, b in itertools.pairwise(self.stamps)]


def build(w: Workload) -> tuple[Runner, torch.nn.Module]:
    """FedLab 1.3's handler, serial trainer and pipeline over the workload."""
    torch.manual_seed(0)
    random.seed(0)  # SyncServerHandler.sample_clients draws from `random`
    model = mlp(w.hidden)
    handler = SyncServerHandler(model=model, global_round=0, sample_ratio=w.per_round / w.clients)
    trainer = SGDSerialClientTrainer(model, w.clients, cuda=False)
    trainer.setup_dataset(GeneratedFedDataset(w))
    trainer.setup_optim(w.epochs, w.batch, w.lr)
    pipeline = TimedPipeline(handler, trainer)
    return pipeline.rounds, handler.model


if __name__ == "__main__":
    main("fedlab-1.3", {"fedlab": version("fedlab")}, build)
